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
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{path}: expected a (N, H, W) stack, got shape {array.shape}")
    return MovieFile(path=path, n_frames=array.shape[0], shape=tuple(array.shape[1:]),
                     dtype=array.dtype, pixel_size_nm=pixel_size_nm, frame_time_s=frame_time_s,
                     meta=meta, _get=lambda i: np.asarray(array[i]), _close=close)


def _open_npy(path: Path) -> MovieFile:
    return _stack(path, np.load(path, mmap_mode="r", allow_pickle=False))


def _open_tiff(path: Path) -> MovieFile:
    import tifffile

    tif = tifffile.TiffFile(path)
    series = tif.series[0]
    array = series.asarray(out="memmap") if series.dataoffset else series.asarray()
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
        if xres and xres[0] and unit in ("nm", "nanometer"):
            pixel_size = xres[1] / xres[0]
        elif xres and xres[0] and unit in ("micron", "um", "µm", "\\u00B5m"):
            pixel_size = 1000.0 * xres[1] / xres[0]
    except (KeyError, ZeroDivisionError, TypeError):
        pass
    return _stack(path, array, pixel_size_nm=pixel_size,
                  frame_time_s=meta.pop("frame_time_s", None), close=tif.close, **meta)


def _open_recording(path: Path) -> MovieFile:
    import h5py
    import hdf5plugin  # noqa: F401 - registers the compression filters

    f = h5py.File(path, "r")
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


READERS: dict[str, Callable[[Path], MovieFile]] = {
    ".npy": _open_npy,
    ".tif": _open_tiff,
    ".tiff": _open_tiff,
    ".h5": _open_recording,
    ".hdf5": _open_recording,
}


def open_movie(path: str | Path) -> MovieFile:
    """Open a movie file for frame-by-frame reading.

    Parameters
    ----------
    path : str or Path
        A temstream recording (``.h5``), a multi-page TIFF, or a ``.npy`` stack.

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
