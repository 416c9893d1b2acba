"""A recording opened lazily: its stacks as Dask arrays, its tables as DataFrames.

:class:`Recording` (``temstream.open_recording(path)``) reads nothing but the file's metadata
when it opens. ``frames``, ``labels`` and ``layer_labels`` are Dask arrays with one chunk per
frame; a chunk opens the file by its path when it is computed, so the arrays pickle and compute
on Dask workers (a cluster, napari's slicer, HyperSpy) as well as in the process that opened
them. The tables (``particles``, ``frames_info``) are read on first use and kept.

Unlike :func:`temstream.record.open_recording`, which returns the ``h5py.File`` itself, this is
the view for analysis and display; both read recordings that are still being written (SWMR) and
cut back a file whose writer was killed (the first open repairs it).
"""

from __future__ import annotations

import json
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

_HANDLES: dict[tuple[int, str], Any] = {}  # (pid, path) -> (open h5py.File, inode)
_HANDLES_LOCK = threading.Lock()


def _handle(path: str):
    """This process's read-only handle on ``path`` (opened once and kept open; opened again
    when the file was replaced, e.g. by a batch run that processed it again)."""
    key = (os.getpid(), path)
    inode = os.stat(path).st_ino
    with _HANDLES_LOCK:
        f, seen = _HANDLES.get(key, (None, None))
        if f is None or not f.id.valid or seen != inode:
            import hdf5plugin  # noqa: F401 - registers the Blosc2/bitshuffle filters

            from temstream.record.repair import open_recording

            if f is not None and f.id.valid:
                f.close()
            f = open_recording(path)
            _HANDLES[key] = (f, inode)
        return f


def close_handles(path: str | Path | None = None) -> None:
    """Close the handles this process keeps on ``path`` (every recording when None), e.g.
    before the file is overwritten."""
    with _HANDLES_LOCK:
        for key in list(_HANDLES):
            if path is None or key[1] == str(Path(path).resolve()):
                f, _ = _HANDLES.pop(key)
                if f.id.valid:
                    f.close()


class H5Stack:
    """A picklable array-like over one HDF5 dataset, read through :func:`_handle`.

    What :func:`dask.array.from_array` wraps: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__``; the file is opened by path in whichever process reads.
    """

    def __init__(self, path: str | Path, name: str, shape: tuple, dtype: Any):
        self.path, self.name = str(Path(path).resolve()), name
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)

    def __getitem__(self, key) -> np.ndarray:
        return _handle(self.path)[self.name][key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[()]
        return a if dtype is None else a.astype(dtype)

    def plane(self, k: int) -> H5Plane:
        """The ``(N, H, W)`` stack of index ``k`` along axis 1 of an ``(N, L, H, W)`` stack."""
        return H5Plane(self, k)


class H5Plane:
    """Axis-1 index ``k`` of an :class:`H5Stack` ``(N, L, H, W)``, as an ``(N, H, W)`` array-like
    (a two-layer recording's labels of one layer)."""

    def __init__(self, stack: H5Stack, k: int):
        self.stack, self.k = stack, int(k)
        n, _, h, w = stack.shape
        self.shape, self.dtype, self.ndim = (n, h, w), stack.dtype, 3

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        return self.stack[(key[0], self.k) + tuple(key[1:])]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[()]
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"H5Stack({self.path!r}, {self.name!r}, shape={self.shape}, dtype={self.dtype})"


def _dask_stack(path: str, ds) -> Any:
    import dask.array as da

    stack = H5Stack(path, ds.name, ds.shape, ds.dtype)
    chunks = (1,) + tuple(ds.shape[1:])
    st = os.stat(path)  # a replaced or grown file gets other keys (never a stale result)
    name = f"temstream-{ds.name}-{abs(hash((path, st.st_ino, st.st_mtime_ns)))}"
    return da.from_array(stack, chunks=chunks, name=name,
                         asarray=True, fancy=False, meta=np.empty((0,) * ds.ndim, ds.dtype))


class Recording:
    """A recording opened lazily (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A temstream recording (``.h5``).

    Attributes
    ----------
    path : Path
    attrs : dict
        The root attributes (``config`` TOML text, ``summary`` JSON, ``model``, ...).
    pixel_size_nm : float or None
    frames : dask.array.Array or None
        Raw frames ``(N, H, W)``; None when the recording has none (``record.raw_frames``).
    labels : dask.array.Array
        Instance labels ``(N, H, W)``, 0 = background.
    layer_labels : dask.array.Array or None
        Per-layer labels ``(N, L, H, W)`` of two-layer models (``/data/layer_labels``).
    times : ndarray
        Seconds of each recorded frame from the first (``dim1``).

    Examples
    --------
    >>> rec = temstream.open_recording("demo.h5")          # doctest: +SKIP
    >>> rec.frames[100].compute().mean()                    # reads one frame
    >>> rec.particles.groupby("frame").size()               # pandas
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(2, "no such recording", str(path))
        f = _handle(str(self.path.resolve()))
        if "data" not in f or "labels" not in f["data"]:
            raise ValueError(f"{path} is not a temstream recording (no /data/labels); open "
                             "movies with temstream.stream.files.open_movie")
        self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        px = f["microscope"].attrs.get("pixel_size_nm") if "microscope" in f else None
        self.pixel_size_nm = float(px) if px else None
        data = f["data"]
        self.stacks = sorted(data)
        self.shape = tuple(data["labels"]["data"].shape)  # (N, H, W)
        dim1 = data["labels"].get("dim1")
        self.times = np.asarray(dim1[()] if dim1 is not None else np.arange(self.shape[0]),
                                dtype=float)

    # the stacks: Dask arrays made on first use (dask.array is imported only then)
    @cached_property
    def frames(self):
        return self.stack("frames") if "frames" in self.stacks else None

    @cached_property
    def labels(self):
        return self.stack("labels")

    @cached_property
    def layer_labels(self):
        return self.stack("layer_labels") if "layer_labels" in self.stacks else None

    def h5stack(self, name: str) -> H5Stack:
        """``/data/<name>/data`` as an :class:`H5Stack`: lazy like the Dask arrays, without
        Dask (what the napari reader hands to napari; ``[i]`` reads frame ``i``)."""
        ds = _handle(str(self.path.resolve()))["data"][name]["data"]
        return H5Stack(self.path, ds.name, ds.shape, ds.dtype)

    def stack(self, name: str):
        """Any ``/data/<name>/data`` stack as a Dask array (e.g. ``denoised``, truth masks)."""
        return _dask_stack(str(self.path.resolve()), _handle(str(self.path.resolve()))
                           ["data"][name]["data"])

    @property
    def n_frames(self) -> int:
        return int(self.shape[0])

    @cached_property
    def particles(self):
        """The particle table (pandas DataFrame, trackpy column names)."""
        from temstream.record.read import read_particles

        return read_particles(self.path)

    @cached_property
    def frames_info(self):
        """One row per frame index seen (pandas DataFrame, sorted by series and frame)."""
        from temstream.record.read import read_frames_info

        return read_frames_info(self.path)

    @property
    def config_toml(self) -> str:
        return str(self.attrs.get("config", ""))

    @property
    def summary(self) -> dict:
        """The run's summary (received, processed, dropped, fps, ...), {} when absent."""
        try:
            return dict(json.loads(self.attrs.get("summary", "{}")))
        except (TypeError, ValueError):
            return {}

    @property
    def frame_indices(self) -> np.ndarray:
        """The detector frame index of each recorded frame (``/frames_info`` rows processed and
        recorded, in recording order)."""
        info = self.frames_info
        rec = info[(info["status"] == "processed") & (info["reason"] != "not recorded")]
        idx = rec["frame"].to_numpy()
        return idx if len(idx) == self.n_frames else np.arange(self.n_frames)

    def close(self) -> None:
        close_handles(self.path)

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.shape[1:]
        return (f"Recording({str(self.path)!r}: {self.n_frames} frames {h}x{w}, stacks "
                f"{self.stacks})")
