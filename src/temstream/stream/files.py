"""Readers of movie files for replay and offline processing.

:func:`open_movie` returns a :class:`MovieFile`: a lazy ``(N, H, W)`` frame stack (frames are
read one at a time) plus the metadata that matters downstream (pixel size, frame period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


@dataclass
class MovieFile:
    """A movie opened for reading.

    Attributes
    ----------
    path : Path
    n_frames : int
    shape : (int, int)
        (H, W) of a frame.
    dtype : numpy dtype
    pixel_size_nm : float or None
    frame_time_s : float or None
    meta : dict
        Any other metadata the reader found.
    """

    path: Path
    n_frames: int
    shape: tuple[int, int]
    dtype: np.dtype
    pixel_size_nm: float | None = None
    frame_time_s: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _get: Callable[[int], np.ndarray] | None = field(default=None, repr=False)
    _close: Callable[[], None] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.n_frames

    def __getitem__(self, i: int) -> np.ndarray:
        if not -self.n_frames <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range for {self.n_frames} frames")
        return self._get(i % self.n_frames)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            yield self._get(i)

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def __enter__(self) -> MovieFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stack(path: Path, array, pixel_size_nm=None, frame_time_s=None, close=None, **meta):
    if array.ndim == 2:
        array = array[None] if isinstance(array, np.ndarray) else _Single(array)
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a (N, H, W) stack, got shape {array.shape}")
    return MovieFile(path=path, n_frames=array.shape[0], shape=tuple(array.shape[1:]),
                     dtype=array.dtype, pixel_size_nm=pixel_size_nm, frame_time_s=frame_time_s,
                     meta=meta, _get=lambda i: np.asarray(array[i]), _close=close)


class _Single:
    """A lazily read single image presented as a one-frame stack."""

    def __init__(self, image):
        self.image, self.ndim = image, 3
        self.shape, self.dtype = (1,) + tuple(image.shape), image.dtype

    def __getitem__(self, i):
        if i != 0:
            raise IndexError(f"frame {i} out of range for 1 frame")
        return np.asarray(self.image[...])


def _open_npy(path: Path) -> MovieFile:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an object array: would need unpickling, never done
            raise ValueError(f"{path}: holds Python objects (pickle), not pixels; "
                             "temstream never unpickles") from None
        raise ValueError(f"{path}: not a readable .npy stack ({exc}; cut short?)") from None
    return _stack(path, array)


def _open_tiff(path: Path) -> MovieFile:
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
        array = series.asarray(out="memmap") if series.dataoffset else series.asarray()
    except (ValueError, OSError, IndexError, tifffile.TiffFileError) as exc:
        raise ValueError(f"{path}: not a readable TIFF stack ({exc}; cut short?)") from None
    pixel_size = None
    meta: dict[str, Any] = {}
    ij = tif.imagej_metadata or {}
    if ij:
        meta["imagej"] = {k: v for k, v in ij.items() if isinstance(v, (int, float, str))}
        if ij.get("finterval"):
            meta["frame_time_s"] = float(ij["finterval"])
    try:
        tags = tif.pages[0].tags
        xres = tags["XResolution"].value
        unit = ij.get("unit", "")
        if xres and xres[0]:
            pixel_size = length_nm(xres[1] / xres[0], unit)
    except (KeyError, ZeroDivisionError, TypeError):
        pass
    if tif.is_ome and tif.ome_metadata:  # OME-XML: PhysicalSizeX and TimeIncrement
        import re

        xml = tif.ome_metadata

        def attr(key):
            m = re.search(rf'\b{key}="([^"]*)"', xml)
            return m.group(1) if m else None
        try:
            size = attr("PhysicalSizeX")
            if size is not None:
                pixel_size = length_nm(float(size), attr("PhysicalSizeXUnit") or "um")
            step = attr("TimeIncrement")
            if step is not None:
                meta["frame_time_s"] = time_s(float(step), attr("TimeIncrementUnit") or "s")
        except ValueError:
            pass
    return _stack(path, array, pixel_size_nm=pixel_size,
                  frame_time_s=meta.pop("frame_time_s", None), close=tif.close, **meta)


_LENGTH_NM = {"nm": 1.0, "n_m": 1.0, "nanometer": 1.0, "nanometre": 1.0, "um": 1e3,
              "µm": 1e3, "μm": 1e3, "u_m": 1e3, "micron": 1e3, "\\u00b5m": 1e3, "a": 0.1,
              "å": 0.1, "angstrom": 0.1, "pm": 1e-3, "p_m": 1e-3, "m": 1e9, "mm": 1e6}
_TIME_S = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "m_s": 1e-3, "us": 1e-6, "µs": 1e-6, "u_s": 1e-6}


def _unit(units) -> str:
    if isinstance(units, bytes):
        units = units.decode("utf-8", "replace")
    return str(units or "").strip().strip("[]").lower()


def length_nm(scale, units) -> float | None:
    """A pixel size in nm from a calibration ``scale`` in ``units`` (None when not a length)."""
    factor = _LENGTH_NM.get(_unit(units))
    if factor is None or not scale or not np.isfinite(scale) or scale <= 0:
        return None
    return float(scale) * factor


def time_s(scale, units) -> float | None:
    """A frame period in seconds from an axis ``scale`` in ``units`` (None when not a time)."""
    factor = _TIME_S.get(_unit(units))
    if factor is None or not scale or not np.isfinite(scale) or scale <= 0:
        return None
    return float(scale) * factor


def _open_h5(path: Path):
    """Open an HDF5 file read-only; a SWMR recording whose writer died needs ``swmr=True``."""
    import h5py
    import hdf5plugin  # noqa: F401 - registers the compression filters

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        if "already open for write" not in str(exc):
            if not h5py.is_hdf5(path):
                raise ValueError(f"{path}: not an HDF5 file (an .h5/.emd/.hspy movie is HDF5)"
                                 ) from None
            raise ValueError(f"{path}: cannot read this HDF5 file ({exc})") from None
        return h5py.File(path, "r", swmr=True, libver="latest")


def _emd_group_stack(path: Path, f, group) -> MovieFile:
    """A Berkeley EMD data group (``data`` + ``dim1..dimN``), read frame by frame.

    The axes are read by their roles, not their position: the time (navigation) axis is the
    dim whose units are a time (or whose name is ``time``/``t``), the others are y and x.
    HyperSpy/rosettasciio write the array transposed, ``(x, y, time)``; ncempy and temstream
    ``(time, y, x)``.
    """
    ds = group["data"]
    if ds.ndim not in (2, 3):
        f.close()
        raise ValueError(f"{path}: EMD group {group.name} holds {ds.ndim}-D data; a movie "
                         "is (N, H, W)")
    dims = []
    for k in range(ds.ndim):
        d = group.get(f"dim{k + 1}")
        vec = d[()] if d is not None and d.shape and d.shape[0] > 1 else None
        step = float(vec[1] - vec[0]) if vec is not None else None
        dims.append((step, d.attrs.get("units", "") if d is not None else "",
                     _unit(d.attrs.get("name", "")) if d is not None else "", vec))
    is_time = [time_s(1.0, units) is not None or name in ("time", "t")
               for _, units, name, _ in dims]
    if ds.ndim == 3:
        if any(is_time):
            t_axis = is_time.index(True)
        elif dims[0][2] == "x" and dims[-1][2] != "x":
            t_axis = 2  # an unlabelled transposed stack
        else:
            t_axis = 0
    else:
        t_axis = None
        if dims[0][2] == "x" and dims[-1][2] != "x":
            ds = _Transposed(ds)
    frame_time = None
    if t_axis is not None:
        step, units, _, vec = dims[t_axis]
        factor = time_s(1.0, units) or None
        if factor and vec is not None and vec.size > 2:
            diffs = np.diff(vec)
            frame_time = float(np.median(diffs)) * factor if np.median(diffs) > 0 else None
        elif factor and step and step > 0:
            frame_time = step * factor
        if t_axis == 2:
            ds = _Transposed(ds)  # (x, y, time) -> (time, y, x)
        elif t_axis == 1:
            ds = _TimeInMiddle(ds)
    space = [d for k, d in enumerate(dims) if k != t_axis]
    pixel = next((length_nm(step, units) for step, units, _, _ in space
                  if length_nm(step, units)), None)
    return _stack(path, ds, pixel_size_nm=pixel, frame_time_s=frame_time, close=f.close,
                  emd_group=group.name)


class _TimeInMiddle:
    """An HDF5 dataset stored ``(H, N, W)`` read as ``(N, H, W)`` frame by frame."""

    def __init__(self, ds):
        self.ds, self.ndim, self.dtype = ds, 3, ds.dtype
        self.shape = (ds.shape[1], ds.shape[0], ds.shape[2])

    def __getitem__(self, i):
        return np.asarray(self.ds[:, i, :])


class _Transposed:
    """An HDF5 dataset stored transposed (``(W, H[, N])``, MATLAB/HyperSpy order) read as
    ``(N, H, W)`` frame by frame."""

    def __init__(self, ds):
        self.ds, self.ndim, self.dtype = ds, ds.ndim, ds.dtype
        self.shape = tuple(ds.shape[::-1])

    def __getitem__(self, i):
        if self.ndim == 2:
            return np.asarray(self.ds[...]).T[i]
        return np.ascontiguousarray(self.ds[:, :, i].T)


def _open_recording(path: Path) -> MovieFile:
    """Our recordings, Berkeley EMD files (EMD v0.2, e.g. ncempy's), and Velox EMD files."""
    f = _open_h5(path)
    if "Version" in f and "data/frames/data" not in f:  # Thermo Fisher Velox
        f.close()
        return _open_rsciio(path, "emd")
    if f.attrs.get("format") in ("temstream-recording", b"temstream-recording"):
        if "data/frames/data" not in f:
            f.close()
            raise ValueError(f"{path}: this recording holds no raw frames (recorded with "
                             "record.raw_frames=false)")
        ds = f["data/frames/data"]
        pixel = f["microscope"].attrs.get("pixel_size_nm") if "microscope" in f else None
        dim1 = f["data/frames/dim1"][()] if "data/frames/dim1" in f else np.array([])
        frame_time = float(np.median(np.diff(dim1))) if dim1.size > 1 else None
        return _stack(path, ds, pixel_size_nm=float(pixel) if pixel else None,
                      frame_time_s=frame_time, close=f.close)
    groups = []
    f.visititems(lambda name, obj: groups.append(obj) if (
        hasattr(obj, "keys") and obj.attrs.get("emd_group_type") == 1 and "data" in obj)
        else None)
    movies = [g for g in groups if g["data"].ndim == 3] or groups
    if not movies:
        f.close()
        raise ValueError(f"{path}: no EMD data group (emd_group_type=1 with a 'data' dataset) "
                         "and not a temstream recording")
    return _emd_group_stack(path, f, movies[0])


def _open_mrc(path: Path) -> MovieFile:
    import mrcfile

    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=True)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable MRC file ({exc})") from None
    if mrc.data is None:
        mrc.close()
        raise ValueError(f"{path}: MRC file without data")
    voxel = float(mrc.voxel_size.x)  # Angstrom
    pixel = voxel / 10.0 if voxel > 0 and np.isfinite(voxel) else None
    return _stack(path, mrc.data, pixel_size_nm=pixel, close=mrc.close)


def _open_rsciio(path: Path, plugin: str) -> MovieFile:
    """DM3/DM4, SER/EMI, Velox EMD through rosettasciio (lazy: one frame computed at a time)."""
    import importlib

    reader = importlib.import_module(f"rsciio.{plugin}").file_reader
    signals = reader(str(path), lazy=True)
    signals = [s for s in signals if s["data"].ndim in (2, 3)]
    if not signals:
        raise ValueError(f"{path}: no image or image stack found")
    sig = max(signals, key=lambda s: (s["data"].ndim, s["data"].size))
    data, axes = sig["data"], sorted(sig["axes"], key=lambda a: a.get("index_in_array", 0))
    frame_time = None
    if data.ndim == 3:
        nav = next((i for i, a in enumerate(axes) if a.get("navigate")), 0)
        frame_time = time_s(axes[nav].get("scale"), axes[nav].get("units"))
        rest = [i for i in range(3) if i != nav]
        order = [nav] + (rest[::-1] if axes[rest[0]].get("name") == "x" else rest)
        if order != [0, 1, 2]:
            data = data.transpose(order)
        axes = [axes[i] for i in order]
    pixel = length_nm(axes[-1].get("scale"), axes[-1].get("units"))
    meta = {"title": sig.get("metadata", {}).get("General", {}).get("title", "")}
    return _stack(path, data, pixel_size_nm=pixel, frame_time_s=frame_time, **meta)


READERS: dict[str, Callable[[Path], MovieFile]] = {
    ".npy": _open_npy,
    ".tif": _open_tiff,
    ".tiff": _open_tiff,
    ".h5": _open_recording,
    ".hdf5": _open_recording,
    ".emd": _open_recording,
    ".hspy": _open_recording,
    ".mrc": _open_mrc,
    ".mrcs": _open_mrc,
    ".dm3": lambda p: _open_rsciio(p, "digitalmicrograph"),
    ".dm4": lambda p: _open_rsciio(p, "digitalmicrograph"),
    ".ser": lambda p: _open_rsciio(p, "tia"),
    ".emi": lambda p: _open_rsciio(p, "tia"),
}


def open_movie(path: str | Path) -> MovieFile:
    """Open a movie file for frame-by-frame reading.

    Parameters
    ----------
    path : str or Path
        A temstream recording (``.h5``), a Berkeley (EMD v0.2) or Velox ``.emd``, an MRC
        stack (``.mrc``/``.mrcs``), a multi-page TIFF, a Gatan ``.dm3``/``.dm4``, a TIA
        ``.ser``/``.emi``, or a ``.npy`` stack.

    Returns
    -------
    MovieFile
        Frames are read lazily one at a time (memory-mapped or chunked where the format
        allows); ``pixel_size_nm`` and ``frame_time_s`` come from the file's calibration
        (None when the file has none).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the format is not supported or the file holds no movie.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unsupported format {path.suffix!r}; supported: "
                         f"{', '.join(sorted(READERS))}")
    return reader(path)
