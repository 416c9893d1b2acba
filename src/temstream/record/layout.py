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
    "frame": "<u8", "series": "<u8", "particle": "<i8", "label": "<i4", "x": "<f8", "y": "<f8",
    "area": "<f8", "area_err": "<f8", "angle": "<f8", "layer": "<i2", "score": "<f4",
    # registered (drift-corrected) coordinates, x - shift_x of the frame (NaN: not registered)
    "x_reg": "<f8", "y_reg": "<f8",
}
NM_COLUMNS = {"x_nm": "<f8", "y_nm": "<f8", "area_nm2": "<f8", "area_nm2_err": "<f8"}
#: the per-layer labels of two-layer models (``/data/layer_labels``)
LAYER_LABELS = "layer_labels"
#: the name and units of the second EMD dim of a per-frame ``(K, H, W)`` extra array
EXTRA_INDEX_DIM = {LAYER_LABELS: ("layer", "[]", 1)}
_STR = h5py.string_dtype()
INFO_COLUMNS = {
    "frame": "<u8", "series": "<u8", "status": _STR, "reason": _STR, "timestamp": "<f8",
    "receive_time": "<f8", "n_particles": "<i4",
    # the waits in the compute and link queues, then each stage's own time (ms)
    "queue_ms": "<f4", "link_queue_ms": "<f4",
    **{f"{stage}_ms": "<f4" for stage in STAGES}, "latency_ms": "<f4",
    # registration (temstream.tracking.registration): the field's shift since the series'
    # first frame (px), a stage jump (1), the frame's quality ("" good, else "blank",
    # "blurred", "saturated", comma-separated), the search range the linker used (px)
    "shift_x": "<f4", "shift_y": "<f4", "jump": "<i1", "quality": _STR,
    "search_range": "<f4",
    "count": "<u8",  # consecutive indices the row stands for: 1, or the length of a gap
}


def _emd_dims(group: h5py.Group, shape: tuple[int, int], pixel_size_nm: float | None,
              time_units: str = "s") -> None:
    time_dim = group.create_dataset("dim1", shape=(0,), maxshape=(None,), chunks=(1024,),
                                    dtype="<f8")
    time_dim.attrs["name"], time_dim.attrs["units"] = "time", f"[{time_units}]"
    step = pixel_size_nm if pixel_size_nm else 1.0
    units = "[n_m]" if pixel_size_nm else "[px]"
    for key, name, n in (("dim2", "y", shape[0]), ("dim3", "x", shape[1])):
        d = group.create_dataset(key, data=np.arange(n, dtype="<f8") * step)
        d.attrs["name"], d.attrs["units"] = name, units


#: HyperSpy's own HDF5 layout (``.hspy``), written beside the EMD one: the same datasets,
#: soft-linked (no copy), under ``/Experiments/<name>`` with their axes, so that
#: ``hyperspy.api.load("x.hspy")`` gives each stack as a movie (time the navigation axis, y
#: and x the signal axes), calibrated, with no extra import
HSPY_VERSION = "3.3"


def hspy_view(f: h5py.File, name: str, ds: h5py.Dataset, pixel_size_nm: float | None,
              frame_time_s: float | None, time_units: str = "s") -> None:
    """Add ``/Experiments/<name>``: HyperSpy's view of the ``(N, H, W)`` stack ``ds``."""
    f.attrs["file_format"] = "HyperSpy"
    f.attrs["file_format_version"] = HSPY_VERSION
    g = f.require_group("Experiments").create_group(name)
    # a soft link: one dataset, two names; readers that walk the file (rosettasciio's EMD
    # reader) still meet it once, under its EMD name
    g["data"] = h5py.SoftLink(ds.name)
    g.attrs["package"], g.attrs["package_version"] = "", ""
    g.create_group("metadata/General").attrs["title"] = name
    g.create_group("metadata/Signal").attrs["signal_type"] = ""
    g.create_group("original_metadata")
    length = ("nm", float(pixel_size_nm)) if pixel_size_nm else ("px", 1.0)
    for i, (axis, units, scale, navigate) in enumerate((
            ("time", time_units, frame_time_s or 1.0, True),
            ("y", *length, False), ("x", *length, False))):
        a = g.create_group(f"axis-{i}")
        a.attrs.update({"name": axis, "units": units, "scale": scale, "offset": 0.0,
                        "size": ds.shape[i], "navigate": navigate, "_type": "UniformDataAxis"})


def hspy_update(f: h5py.File, frame_time_s: float | None,
                times: np.ndarray | None = None) -> None:
    """Bring the axis sizes (and the frame time, once known) up to date. Where ``times`` (the
    frames' times, dim1) are not evenly spaced (dropped frames, gaps), HyperSpy's time axis
    lists them (a non-uniform ``DataAxis``) instead of claiming a constant step."""
    for g in f.get("Experiments", {}).values():
        for i in range(3):
            a = g.get(f"axis-{i}")
            if a is not None:
                a.attrs["size"] = g["data"].shape[i]
        a = g.get("axis-0")
        if a is None:
            continue
        if frame_time_s:
            a.attrs["scale"] = float(frame_time_s)
        if times is not None and len(times) == g["data"].shape[0] and len(times) > 2:
            steps = np.diff(times)
            if steps.size and np.ptp(steps) > 0.01 * max(abs(float(np.median(steps))), 1e-12):
                a.attrs["_type"] = "DataAxis"
                a.attrs["axis"] = np.asarray(times, dtype="<f8")
                for key in ("scale", "offset"):
                    if key in a.attrs:
                        del a.attrs[key]
