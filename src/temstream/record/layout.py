"""HDF5 recordings in the EMD v0.2 layout (readable by ncempy and rosettasciio).

Layout (see ``docs/recording.md``)::

    /                 attrs: version_major=0, version_minor=2, temstream_version, config (TOML),
                             format="temstream-recording", closed_cleanly, summary (JSON)
    /data/frames      emd_group_type=1: data (N, H, W) raw frames (optional),
                      dim1 time [s], dim2 y [nm or px], dim3 x [nm or px]
    /data/labels      emd_group_type=1: data (N, H, W) uint32 instance labels, 0 = background
    /data/layer_labels  two-layer models: data (N, L, H, W) uint32, plane k = layer k + 1's
                      instance labels (overlapping particles of different layers both kept),
                      dim1 time, dim2 layer (1..L), dim3 y, dim4 x
    /particles        compound table, one row per particle per frame (trackpy column names)
    /frames_info      compound table, one row per frame index seen (processed or dropped)
    /microscope /sample /user /comments   metadata groups (attrs), as EMD readers expect

Arrays are stored C-order ``(N, H, W)``: ncempy reads them as they are, rosettasciio returns
the transpose ``(W, H, N)`` with correctly calibrated axes (``axis_order`` attr documents it).

This module holds the format name and version, the table columns and the EMD dims of a
stack, which the writer creates and the readers expect.
"""

from __future__ import annotations

import h5py
import numpy as np

from temstream.stream.events import STAGES

FORMAT = "temstream-recording"
FORMAT_VERSION = 1

#: columns every particle table has, in order (docs/recording.md)
PARTICLE_COLUMNS = {
    "frame": "<i8", "series": "<i8", "particle": "<i8", "label": "<i4", "x": "<f8", "y": "<f8", "area": "<f8",
    "angle": "<f8", "layer": "<i2", "score": "<f4",
}
NM_COLUMNS = {"x_nm": "<f8", "y_nm": "<f8", "area_nm2": "<f8"}
#: the per-layer labels of two-layer models (``/data/layer_labels``)
LAYER_LABELS = "layer_labels"
#: the name and units of the second EMD dim of a per-frame ``(K, H, W)`` extra array
EXTRA_INDEX_DIM = {LAYER_LABELS: ("layer", "[]", 1)}
_STR = h5py.string_dtype()
INFO_COLUMNS = {
    "frame": "<i8", "series": "<i8", "status": _STR, "reason": _STR, "timestamp": "<f8",
    "receive_time": "<f8", "n_particles": "<i4", "queue_ms": "<f4",
    **{f"{stage}_ms": "<f4" for stage in STAGES}, "latency_ms": "<f4",
}


def _emd_dims(group: h5py.Group, shape: tuple[int, int], pixel_size_nm: float | None) -> None:
    time_dim = group.create_dataset("dim1", shape=(0,), maxshape=(None,), chunks=(1024,),
                                    dtype="<f8")
    time_dim.attrs["name"], time_dim.attrs["units"] = "time", "[s]"
    step = pixel_size_nm if pixel_size_nm else 1.0
    units = "[n_m]" if pixel_size_nm else "[px]"
    for key, name, n in (("dim2", "y", shape[0]), ("dim3", "x", shape[1])):
        d = group.create_dataset(key, data=np.arange(n, dtype="<f8") * step)
        d.attrs["name"], d.attrs["units"] = name, units
