"""Opening a recording in napari: Image, Labels (per layer), Tracks and Points layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from temstream.record.layout import FORMAT

#: names the layers of a two-layer model's planes get
PLANE_NAMES = ("layer A", "layer B", "layer C", "layer D")


def _is_recording(path: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT or ("data" in f and "labels" in f["data"]
                                                       and "particles" in f)
    except OSError:
        try:  # a recording still being written (SWMR)
            with h5py.File(path, "r", swmr=True, libver="latest") as f:
                return f.attrs.get("format") == FORMAT
        except OSError:
            return False


def get_reader(path):
    """npe2 reader hook: :func:`read_recording` for a temstream recording, else None (napari
    then asks other readers)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = str(path)
    if not path.lower().endswith((".h5", ".hdf5", ".emd")) or not _is_recording(path):
        return None
    return read_recording


def _contrast(frame: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(frame, (0.5, 99.5)) if frame.size else (0.0, 1.0)
    return float(lo), float(hi if hi > lo else lo + 1)


def read_recording(path, *, points: bool = True, tracks: bool = True) -> list[tuple]:
    """A recording as napari layer data: ``[(data, kwargs, layer_type), ...]``.

    Nothing but the tables and one frame (for the contrast limits) is read here: the stacks
    are :class:`temstream.record.lazy.H5Stack` array-likes (``Recording.h5stack``) that read
    the frame napari shows, and nothing else (no Dask: opening stays light). Times are the position in the recording (napari's slider), lengths in nm
    where the pixel size is known (``scale``), else px. Track and point coordinates are the
    particle table's ``y``, ``x`` (pixel index coordinates, as napari's).

    Returns
    -------
    list of (data, dict, str)
        Image (raw frames, when recorded), Labels, a Labels layer per plane of
        ``/data/layer_labels``, Tracks (``particle`` >= 0), Points (every particle, with the
        table's columns as features).
    """
    from temstream.record.lazy import Recording

    if isinstance(path, (list, tuple)):
        path = path[0]
    rec = Recording(path)
    name = Path(path).stem
    px = rec.pixel_size_nm or 1.0
    scale = (1.0, px, px)
    meta = {"temstream_path": str(path), "pixel_size_nm": rec.pixel_size_nm,
            "units": "nm" if rec.pixel_size_nm else "px"}
    layers: list[tuple] = []
    has_planes = "layer_labels" in rec.stacks
    if "frames" in rec.stacks:
        frames = rec.h5stack("frames")
        first = frames[0] if rec.n_frames else np.zeros((1, 1))
        layers.append((frames, {"name": f"{name} frames", "scale": scale,
                                "contrast_limits": _contrast(first), "metadata": meta,
                                "multiscale": False}, "image"))
    layers.append((rec.h5stack("labels"), {"name": f"{name} labels", "scale": scale,
                                           "opacity": 0.4, "metadata": meta,
                                           "visible": not has_planes}, "labels"))
    if has_planes:
        planes = rec.h5stack("layer_labels")
        for k in range(planes.shape[1]):
            layers.append((planes.plane(k), {
                "name": f"{name} {PLANE_NAMES[k] if k < len(PLANE_NAMES) else f'layer {k+1}'}",
                "scale": scale, "opacity": 0.45, "metadata": meta}, "labels"))
    df = rec.particles
    if len(df):
        df = _with_position(df, rec)
    layers += particle_layers(df, name, scale, meta, tracks=tracks, points=points)
    return layers


def particle_layers(df, name: str, scale: tuple, meta: dict, *, tracks: bool = True,
                    points: bool = True) -> list[tuple]:
    """Tracks (rows with ``particle`` >= 0) and Points (every row, the table's numeric
    columns as features) of a particle table with a ``t`` column (napari's time axis)."""
    layers: list[tuple] = []
    if tracks and len(df):
        t = df[df["particle"] >= 0].sort_values(["particle", "t"], kind="stable")
        if len(t):
            data = t[["particle", "t", "y", "x"]].to_numpy(float)
            features = {c: t[c].to_numpy() for c in ("frame", "area", "angle", "layer")
                        if c in t}
            layers.append((data, {"name": f"{name} tracks", "scale": scale,
                                  "features": features, "tail_length": 30, "tail_width": 2,
                                  "metadata": meta}, "tracks"))
    if points and len(df):
        data = df[["t", "y", "x"]].to_numpy(float)
        features = {c: df[c].to_numpy() for c in df.columns if df[c].dtype.kind in "fiub"}
        size = np.clip(2 * np.sqrt(df["area"].to_numpy(float).clip(0) / np.pi), 2, None)
        layers.append((data, {"name": f"{name} particles", "scale": scale,
                              "features": features, "size": size, "symbol": "ring",
                              "face_color": "#ffd400", "border_width": 0, "opacity": 0.8,
                              "visible": False, "metadata": meta}, "points"))
    return layers


def _with_position(df, rec):
    """The particle table with ``t``: each row's position in the recording (napari's time
    axis), from its (series, frame) -> the recorded frames' order."""
    import pandas as pd

    info = rec.frames_info
    recorded = info[(info["status"] == "processed") & (info["reason"] != "not recorded")]
    if len(recorded) == rec.n_frames:
        pos = pd.Series(np.arange(len(recorded)),
                        index=pd.MultiIndex.from_arrays([recorded["series"], recorded["frame"]]))
        keys = pd.MultiIndex.from_arrays([df["series"] if "series" in df else
                                          np.zeros(len(df), int), df["frame"]])
        t = pos.reindex(keys).to_numpy()
    else:  # a recording made outside the pipeline: frame k is at position k
        t = df["frame"].to_numpy(float)
    out = df.assign(t=t)
    return out[np.isfinite(out["t"].to_numpy(float))]
