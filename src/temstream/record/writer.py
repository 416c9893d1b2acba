"""Writing a recording: :class:`RecordingWriter` (frame by frame) and :func:`write_movie`.

The writer creates the layout of :mod:`temstream.record.layout`, flushes at least every
``flush_interval_s``, and after a failed write cuts the file back to its last flush
(:func:`temstream.record.repair.salvage`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from temstream._version import __version__
from temstream.record.compression import Chunk, chunk_encoder, compression_options
from temstream.record.layout import (EXTRA_INDEX_DIM, FORMAT, FORMAT_VERSION, INFO_COLUMNS,
                                     LAYER_LABELS, NM_COLUMNS, PARTICLE_COLUMNS, _emd_dims,
                                     hspy_update, hspy_view)
from temstream.record.repair import salvage


class RecordingError(OSError):
    """Writing the recording failed (disk full, permission lost...); frames written up to the
    last flush are kept in the file."""


class RecordingWriter:
    """Write a recording frame by frame (synchronously; see :class:`RecorderSink` for a thread).

    Parameters
    ----------
    path : str or Path
        The ``.h5`` file to create (overwritten).
    frame_shape : (int, int)
        (H, W) of every frame.
    frame_dtype : numpy dtype
        Dtype of the raw frames.
    pixel_size_nm : float, optional
        Pixel size; calibrates the dims and fills the ``x_nm``, ``y_nm``, ``area_nm2``
        columns (always present; NaN without a pixel size).
    raw_frames : bool
        Record the raw frames (labels and tables are always recorded).
    frames_compression, labels_compression : str
        See :func:`compression_options`.
    extra_columns : dict, optional
        Extra particle-table columns name -> dtype (e.g. ``{"perimeter": "<f8"}``).
    config_toml : str
        The effective configuration, stored as the root attr ``config``.
    attrs : dict, optional
        Extra root attributes (JSON-serialised when not scalars).
    flush_interval_s : float
        Flush to disk at least this often.
    frame_time_s : float, optional
        Frame period, for HyperSpy's time axis (``/Experiments``); the median step of the
        timestamps replaces it when the file is closed.
    time_units : str
        Units of the time axis (dim1): ``s``, or ``frame`` when the frame time is unknown
        (then the timestamps are frame numbers).
    swmr : bool
        Single-writer/multiple-reader mode: other processes may read the file while it grows
        (``h5py.File(path, "r", swmr=True, libver="latest")`` and ``dataset.refresh()``).
        After a crash such a file opens only that way (or after ``h5clear -s``); without
        SWMR it opens with any HDF5 reader. Both keep every frame up to the last flush.

    Notes
    -----
    Frames given as :class:`Chunk` (already compressed by :func:`chunk_encoder`) are written
    with ``write_direct_chunk``; arrays are compressed here first (same result).
    """

    def __init__(self, path: str | Path, *, frame_shape: tuple[int, int], frame_dtype: Any,
                 pixel_size_nm: float | None = None, raw_frames: bool = True,
                 frames_compression: str = "none", labels_compression: str = "gzip",
                 extra_columns: dict[str, str] | None = None, config_toml: str = "",
                 attrs: dict[str, Any] | None = None, flush_interval_s: float = 0.25,
                 swmr: bool = False, time_units: str = "s",
                 frame_time_s: float | None = None):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in frame_shape)
        self.pixel_size_nm = float(pixel_size_nm) if pixel_size_nm else None
        self.time_units = time_units
        self.frame_dtype = np.dtype(frame_dtype)
        self.flush_interval_s = flush_interval_s
        self.swmr = swmr
        self.frames_encoder = chunk_encoder(frames_compression, frame_dtype) if raw_frames \
            else None
        self.labels_encoder = chunk_encoder(labels_compression, "<u4")
        try:
            self.f = h5py.File(self.path, "w", **({"libver": "latest"} if swmr else {}))
        except OSError as exc:
            raise RecordingError(f"cannot create the recording {self.path}: {exc}; choose a "
                                 "writable folder with --out") from None
        f = self.f
        f.attrs.update({"version_major": 0, "version_minor": 2, "format": FORMAT,
                        "format_version": FORMAT_VERSION, "temstream_version": __version__,
                        "config": config_toml, "closed_cleanly": False,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "axis_order": "data (N, H, W) C-order: dim1 time, dim2 y, dim3 x"})
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
        for name in ("microscope", "sample", "user", "comments"):
            f.create_group(name)
        if self.pixel_size_nm:
            f["microscope"].attrs["pixel_size_nm"] = self.pixel_size_nm
        data = f.create_group("data")
        h, w = self.shape
        self.frames = None
        if raw_frames:
            g = data.create_group("frames")
            g.attrs["emd_group_type"] = 1
            self.frames = g.create_dataset("data", shape=(0, h, w), maxshape=(None, h, w),
                                           chunks=(1, h, w), dtype=np.dtype(frame_dtype),
                                           **compression_options(frames_compression))
            _emd_dims(g, self.shape, self.pixel_size_nm, time_units)
        g = data.create_group("labels")
        g.attrs["emd_group_type"] = 1
        self.labels = g.create_dataset("data", shape=(0, h, w), maxshape=(None, h, w),
                                       chunks=(1, h, w), dtype="<u4",
                                       **compression_options(labels_compression))
        _emd_dims(g, self.shape, self.pixel_size_nm, time_units)
        self._time_dims = [data[k]["dim1"] for k in data]
        self.frame_time_s = frame_time_s
        for name in ("frames", "labels"):
            if name in data:
                hspy_view(f, name, data[name]["data"], self.pixel_size_nm, frame_time_s,
                          time_units)
        columns = dict(PARTICLE_COLUMNS)
        columns.update(NM_COLUMNS)  # always there (NaN without a pixel size): no KeyError
        columns.update({k: v for k, v in (extra_columns or {}).items() if k not in columns})
        self.particle_dtype = np.dtype(list(columns.items()))
        # the tables are not compressed: an uncompressed chunk is rewritten in place, so a
        # writer killed in the middle of a flush cannot leave a table chunk behind the end of
        # file on disk (a compressed one moves on every flush and would be lost)
        self.particles = f.create_dataset("particles", shape=(0,), maxshape=(None,),
                                          chunks=(4096,), dtype=self.particle_dtype)
        self.info_dtype = np.dtype(list(INFO_COLUMNS.items()))
        self.info = f.create_dataset("frames_info", shape=(0,), maxshape=(None,), chunks=(1024,),
                                     dtype=self.info_dtype)
        self.n_frames = 0
        self.n_flushed = 0
        self._held: list[tuple[np.ndarray, dict]] = []  # table rows waiting for a flush
        self._flushed_rows = (0, 0)
        self._t0: float | None = None
        self._last_flush = time.monotonic()
        if swmr:
            self.f.swmr_mode = True  # every dataset exists: readers may attach from now on
        self.f.flush()

    # -- writing -------------------------------------------------------------------------
    def append(self, frame: int, timestamp: float | None, image: np.ndarray | None,
               labels: np.ndarray, particles: Any, info: dict | None = None,
               extra: dict[str, np.ndarray] | None = None, series: int = 0) -> None:
        """Append one processed frame.

        Parameters
        ----------
        frame : int
            Detector frame index (the ``frame`` column of the tables).
        timestamp : float or None
            Seconds (detector clock, else receive time); dim1 stores it relative to the first.
        image : ndarray (H, W), Chunk or None
            Raw frame (ignored when raw frames are off), or its chunk from
            :func:`chunk_encoder` (``frames_compression``, the frame dtype).
        labels : ndarray (H, W) or Chunk
            Instance labels (or their chunk: ``labels_compression``, uint32).
        particles : dict of 1-D arrays or DataFrame
            One row per particle; missing columns are filled (NaN, -1 for ``particle``, 0).
        info : dict, optional
            The ``/frames_info`` row; a minimal "processed" row is written when omitted.
        extra : dict, optional
            Further per-frame arrays stored as EMD data groups ``/data/<name>`` (created on
            first use), e.g. per-layer truth masks of shape (L, H, W). ``layer_labels`` (L, H,
            W) of a two-layer model is stored as uint32 with dims time, layer, y, x.
        series : int
            Series id (the ``series`` column of the tables).
        """
        n = self.n_frames
        ts = float(timestamp) if timestamp is not None else float(n)
        if self._t0 is None:
            self._t0 = ts
        if self.frames is not None:
            if image is None:
                raise ValueError("raw frames are recorded: pass the image")
            self._write_frame(self.frames, n, image, self.frames_encoder)
        self._write_frame(self.labels, n, labels, self.labels_encoder)
        for name, array in (extra or {}).items():
            array = np.asarray(array)
            if name == LAYER_LABELS:
                array = array.astype("<u4", copy=False)
            self._append_extra(name, n, array)
        for dim in self._time_dims:
            dim.resize(n + 1, axis=0)
            dim[n] = ts - self._t0
        rows = self._particle_rows(frame, particles, series)
        info = info or {"frame": frame, "series": series, "status": "processed",
                        "timestamp": ts, "n_particles": len(rows)}
        # the table rows of a frame go in only after a flush has put its data on disk, so
        # that a file cut short anywhere (a kill, even in mid-flush) never lists a frame or
        # a particle that its data stacks do not hold
        self._held.append((rows, info))
        self.n_frames = n + 1
        self.maybe_flush()

    @staticmethod
    def _write_frame(ds: h5py.Dataset, n: int, data, encoder) -> None:
        ds.resize(n + 1, axis=0)
        if isinstance(data, Chunk):
            ds.id.write_direct_chunk((n, 0, 0), data)
        elif encoder is not None:
            ds.id.write_direct_chunk((n, 0, 0), encoder(data))
        else:
            ds[n] = data

    def _append_extra(self, name: str, n: int, array: np.ndarray) -> None:
        data = self.f["data"]
        if name not in data:
            if array.shape[-2:] != self.shape:
                raise ValueError(f"extra array {name!r} must end in the frame shape {self.shape}")
            g = data.create_group(name)
            g.attrs["emd_group_type"] = 1
            shape = array.shape
            g.create_dataset("data", shape=(0,) + shape, maxshape=(None,) + shape,
                             chunks=(1,) + shape, dtype=array.dtype,
                             **compression_options("gzip"))
            _emd_dims(g, self.shape, self.pixel_size_nm, self.time_units)
            if array.ndim == 3:  # (L, H, W): a leading index axis before y and x
                g.move("dim3", "dim4")
                g.move("dim2", "dim3")
                dim_name, dim_units, first = EXTRA_INDEX_DIM.get(name, ("index", "[]", 0))
                d = g.create_dataset("dim2", data=np.arange(shape[0], dtype="<f8") + first)
                d.attrs["name"], d.attrs["units"] = dim_name, dim_units
            g["dim1"].resize(n, axis=0)
            g["dim1"][:] = self._time_dims[0][:n]
            self._time_dims.append(g["dim1"])
        ds = data[name]["data"]
        ds.resize(n + 1, axis=0)
        ds[n] = array

    @staticmethod
    def _column(particles: Any, key: str):
        try:
            return np.asarray(particles[key])
        except (KeyError, IndexError):
            return None

    def _particle_rows(self, frame: int, particles: Any, series: int = 0) -> np.ndarray:
        x = self._column(particles, "x")
        count = 0 if x is None else len(x)
        rows = np.zeros(count, self.particle_dtype)
        if count == 0:
            return rows
        for name in self.particle_dtype.names:
            col = self._column(particles, name)
            if col is not None:
                rows[name] = col
            elif self.particle_dtype[name].kind == "f":
                rows[name] = np.nan
            elif name == "particle":
                rows[name] = -1
        rows["frame"] = frame
        rows["series"] = series
        if self.pixel_size_nm:
            p = self.pixel_size_nm
            rows["x_nm"], rows["y_nm"] = rows["x"] * p, rows["y"] * p
            rows["area_nm2"] = rows["area"] * p * p
            rows["area_nm2_err"] = rows["area_err"] * p * p
        return rows

    def _write_held(self) -> None:
        """Append the table rows of the frames the last flush put on disk."""
        held, self._held = self._held, []
        particles = [rows for rows, _ in held if len(rows)]
        if particles:
            rows = np.concatenate(particles)
            start = self.particles.shape[0]
            self.particles.resize(start + len(rows), axis=0)
            self.particles[start:] = rows
        for _, info in held:
            self.append_info(info)

    def append_info(self, row: dict) -> None:
        """Append one ``/frames_info`` row (processed or dropped frame)."""
        rec = np.zeros(1, self.info_dtype)
        for name in self.info_dtype.names:
            if name in row and row[name] is not None:
                rec[name] = row[name]
            elif self.info_dtype[name].kind == "f":
                rec[name] = np.nan
            elif self.info_dtype[name].kind == "O":  # strings: status, reason, quality
                rec[name] = ""
            elif name == "count":
                rec[name] = 1
        start = self.info.shape[0]
        self.info.resize(start + 1, axis=0)
        self.info[start] = rec[0]

    def maybe_flush(self) -> None:
        """Flush when ``flush_interval_s`` has passed since the last flush."""
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write everything to the file (what a crash afterwards keeps).

        The frames' table rows follow one flush behind their data: after the flush that
        stored them, they are added, and the next flush (or :meth:`close`) stores them.
        """
        rows = (self.particles.shape[0], self.info.shape[0])
        self.f.flush()
        self.n_flushed, self._flushed_rows = self.n_frames, rows
        self._write_held()
        self._last_flush = time.monotonic()

    def abandon(self, error: BaseException) -> None:
        """After a failed write (disk full, I/O error): close without writing any more, then
        cut the file back to its last flush so that every HDF5 reader opens it.

        HDF5 cannot close a file whose writes fail (and crashes at exit if it is left open):
        its last writes go to ``/dev/null`` instead. The file on disk is then the state of
        the last successful flush, plus possibly a superblock that already counts the failed
        write (its end-of-file is restored with a sparse extension) and a partly written frame
        beyond ``n_flushed`` (cut off).
        """
        if not self.f.id.valid:
            return
        try:
            fd = self.f.id.get_vfd_handle()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        except Exception:  # noqa: BLE001 - not the sec2 driver: close as well as we can
            pass
        try:
            self.f.close()
        except Exception:  # noqa: BLE001
            pass
        salvage(self.path, self.n_flushed, self._flushed_rows, str(error))

    def close(self, summary: dict | None = None) -> None:
        """Write the summary, mark the file as cleanly closed and close it."""
        if not self.f.id.valid:
            return
        self.f.flush()  # the data first, then the rows that list them (see flush)
        self._write_held()
        t = self._time_dims[0][()] if self._time_dims else np.zeros(0)
        steps = np.diff(t)
        hspy_update(self.f, float(np.median(steps)) if steps.size and np.median(steps) > 0
                    else self.frame_time_s, t)
        if summary is not None:
            self.f.attrs["summary"] = json.dumps(summary)
        self.f.attrs["closed_cleanly"] = True
        self.f.close()


def write_movie(path: str | Path, frames: np.ndarray, labels: np.ndarray, particles: Any, *,
                pixel_size_nm: float | None = None, frame_time_s: float | None = None,
                config_toml: str = "", attrs: dict | None = None,
                extra: dict[str, np.ndarray] | None = None,
                frames_compression: str = "none") -> Path:
    """Write a whole movie (e.g. a simulation with ground truth) in the recording layout.

    Parameters
    ----------
    frames : ndarray (N, H, W)
    labels : ndarray (N, H, W)
        Instance labels of each frame.
    particles : DataFrame
        Particle table with a ``frame`` column (frame indices 0..N-1).
    frame_time_s : float, optional
        Frame period; dim1 becomes ``frame * frame_time_s``.
    extra : dict, optional
        name -> (N, ...) arrays stored as ``/data/<name>`` (e.g. per-layer masks).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or np.shape(labels) != frames.shape:
        raise ValueError(f"frames and labels must both be (N, H, W); got {frames.shape} and "
                         f"{np.shape(labels)}")
    by_frame = {int(k): g for k, g in particles.groupby("frame")} if len(particles) else {}
    extra_cols = {c: particles[c].to_numpy().dtype.str for c in particles.columns
                  if c not in PARTICLE_COLUMNS and particles[c].dtype.kind in "fiub"}
    writer = RecordingWriter(path, frame_shape=frames.shape[1:], frame_dtype=frames.dtype,
                             pixel_size_nm=pixel_size_nm, extra_columns=extra_cols,
                             config_toml=config_toml, attrs=attrs,
                             frames_compression=frames_compression, flush_interval_s=5.0)
    empty = particles.iloc[:0]
    try:
        for i in range(frames.shape[0]):
            ts = i * frame_time_s if frame_time_s else float(i)
            extras = {k: v[i] for k, v in (extra or {}).items() if v is not None}
            writer.append(i, ts, frames[i], labels[i], by_frame.get(i, empty), extra=extras)
    finally:
        writer.close({"frames": int(frames.shape[0]), "source": "write_movie"})
    return Path(path)
