"""HDF5 recordings in the EMD v0.2 layout (readable by ncempy and rosettasciio).

Layout (see ``docs/recording.md``)::

    /                 attrs: version_major=0, version_minor=2, temstream_version, config (TOML),
                             format="temstream-recording", closed_cleanly, summary (JSON)
    /data/frames      emd_group_type=1: data (N, H, W) raw frames (optional),
                      dim1 time [s], dim2 y [nm or px], dim3 x [nm or px]
    /data/labels      emd_group_type=1: data (N, H, W) uint32 instance labels, 0 = background
    /particles        compound table, one row per particle per frame (trackpy column names)
    /frames_info      compound table, one row per frame index seen (processed or dropped)
    /microscope /sample /user /comments   metadata groups (attrs), as EMD readers expect

Arrays are stored C-order ``(N, H, W)``: ncempy reads them as they are, rosettasciio returns
the transpose ``(W, H, N)`` with correctly calibrated axes (``axis_order`` attr documents it).
The writer flushes at least every ``flush_interval_s`` so a killed run leaves a readable file
with every flushed frame.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import hdf5plugin
import numpy as np

from temstream._version import __version__
from temstream.stream.events import STAGES

log = logging.getLogger(__name__)

FORMAT = "temstream-recording"
FORMAT_VERSION = 1

#: columns every particle table has, in order (docs/recording.md)
PARTICLE_COLUMNS = {
    "frame": "<i8", "series": "<i8", "particle": "<i8", "label": "<i4", "x": "<f8", "y": "<f8", "area": "<f8",
    "angle": "<f8", "layer": "<i2", "score": "<f4",
}
NM_COLUMNS = {"x_nm": "<f8", "y_nm": "<f8", "area_nm2": "<f8"}
_STR = h5py.string_dtype()
INFO_COLUMNS = {
    "frame": "<i8", "series": "<i8", "status": _STR, "reason": _STR, "timestamp": "<f8",
    "receive_time": "<f8", "n_particles": "<i4", "queue_ms": "<f4",
    **{f"{stage}_ms": "<f4" for stage in STAGES}, "latency_ms": "<f4",
}


def compression_options(name: str) -> dict[str, Any]:
    """h5py dataset keywords for a compression choice.

    ``none``, ``gzip`` (readable everywhere), and through hdf5plugin (readers need
    ``import hdf5plugin``): ``blosc2-lz4``, ``blosc2-zstd``, ``bitshuffle-lz4``.
    """
    if name == "none":
        return {}
    if name == "gzip":
        return {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    if name == "blosc2-lz4":
        return dict(hdf5plugin.Blosc2(cname="lz4", clevel=5, filters=hdf5plugin.Blosc2.BITSHUFFLE))
    if name == "blosc2-zstd":
        return dict(hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.BITSHUFFLE))
    if name == "bitshuffle-lz4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise ValueError(f"unknown compression {name!r}")


class Chunk(bytes):
    """One HDF5 chunk already compressed for its dataset's filter (see :func:`chunk_encoder`)."""


def chunk_encoder(name: str, dtype: Any):
    """A function compressing one frame ``(H, W)`` into the bytes of one HDF5 chunk.

    The chunk is written with ``write_direct_chunk``, so compression runs outside HDF5 (and
    its global lock) in any thread; readers decompress through the hdf5plugin filter the
    dataset declares (:func:`compression_options`). Returns None for choices written through
    h5py (``none``, ``gzip``).

    Parameters
    ----------
    name : str
        ``blosc2-lz4``, ``blosc2-zstd`` (a Blosc2 cframe, as the Blosc2 filter 32026 reads)
        or ``bitshuffle-lz4`` (bitshuffle/LZ4 with the 12-byte header of filter 32008).
    dtype : numpy dtype
        The dataset's dtype; frames are converted to it first.
    """
    dtype = np.dtype(dtype)
    if name in ("blosc2-lz4", "blosc2-zstd"):
        import blosc2

        codec = blosc2.Codec.LZ4 if name == "blosc2-lz4" else blosc2.Codec.ZSTD
        cparams = {"codec": codec, "clevel": 5 if name == "blosc2-lz4" else 1,
                   "filters": [blosc2.Filter.BITSHUFFLE], "typesize": dtype.itemsize,
                   "nthreads": 1}

        def encode(array: np.ndarray) -> Chunk:
            a = np.ascontiguousarray(array, dtype=dtype)
            return Chunk(blosc2.SChunk(chunksize=a.nbytes, data=a, cparams=cparams).to_cframe())
        return encode
    if name == "bitshuffle-lz4":
        from temstream.stream.dectris import compress_bslz4

        def encode(array: np.ndarray) -> Chunk:
            return Chunk(compress_bslz4(np.ascontiguousarray(array, dtype=dtype)))
        return encode
    return None


class RecordingError(OSError):
    """Writing the recording failed (disk full, permission lost...); frames written up to the
    last flush are kept in the file."""


def _emd_dims(group: h5py.Group, shape: tuple[int, int], pixel_size_nm: float | None) -> None:
    time_dim = group.create_dataset("dim1", shape=(0,), maxshape=(None,), chunks=(1024,),
                                    dtype="<f8")
    time_dim.attrs["name"], time_dim.attrs["units"] = "time", "[s]"
    step = pixel_size_nm if pixel_size_nm else 1.0
    units = "[n_m]" if pixel_size_nm else "[px]"
    for key, name, n in (("dim2", "y", shape[0]), ("dim3", "x", shape[1])):
        d = group.create_dataset(key, data=np.arange(n, dtype="<f8") * step)
        d.attrs["name"], d.attrs["units"] = name, units


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
        Pixel size; adds calibrated dims and the ``x_nm``, ``y_nm``, ``area_nm2`` columns.
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
                 frames_compression: str = "none", labels_compression: str = "blosc2-zstd",
                 extra_columns: dict[str, str] | None = None, config_toml: str = "",
                 attrs: dict[str, Any] | None = None, flush_interval_s: float = 1.0,
                 swmr: bool = False):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in frame_shape)
        self.pixel_size_nm = float(pixel_size_nm) if pixel_size_nm else None
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
            _emd_dims(g, self.shape, self.pixel_size_nm)
        g = data.create_group("labels")
        g.attrs["emd_group_type"] = 1
        self.labels = g.create_dataset("data", shape=(0, h, w), maxshape=(None, h, w),
                                       chunks=(1, h, w), dtype="<u4",
                                       **compression_options(labels_compression))
        _emd_dims(g, self.shape, self.pixel_size_nm)
        self._time_dims = [data[k]["dim1"] for k in data]
        columns = dict(PARTICLE_COLUMNS)
        if self.pixel_size_nm:
            columns.update(NM_COLUMNS)
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
            first use), e.g. per-layer truth masks of shape (L, H, W).
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
            self._append_extra(name, n, np.asarray(array))
        for dim in self._time_dims:
            dim.resize(n + 1, axis=0)
            dim[n] = ts - self._t0
        count = self._append_particles(frame, particles, series)
        self.append_info(info or {"frame": frame, "series": series, "status": "processed",
                                  "timestamp": ts, "n_particles": count})
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
                             **compression_options("blosc2-zstd"))
            _emd_dims(g, self.shape, self.pixel_size_nm)
            if array.ndim == 3:  # (L, H, W): a leading index axis before y and x
                g.move("dim3", "dim4")
                g.move("dim2", "dim3")
                d = g.create_dataset("dim2", data=np.arange(shape[0], dtype="<f8"))
                d.attrs["name"], d.attrs["units"] = "index", "[]"
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

    def _append_particles(self, frame: int, particles: Any, series: int = 0) -> int:
        x = self._column(particles, "x")
        count = 0 if x is None else len(x)
        if count == 0:
            return 0
        rows = np.zeros(count, self.particle_dtype)
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
        start = self.particles.shape[0]
        self.particles.resize(start + count, axis=0)
        self.particles[start:] = rows
        return count

    def append_info(self, row: dict) -> None:
        """Append one ``/frames_info`` row (processed or dropped frame)."""
        rec = np.zeros(1, self.info_dtype)
        for name in self.info_dtype.names:
            if name in row and row[name] is not None:
                rec[name] = row[name]
            elif self.info_dtype[name].kind == "f":
                rec[name] = np.nan
            elif name in ("status", "reason"):
                rec[name] = ""
        start = self.info.shape[0]
        self.info.resize(start + 1, axis=0)
        self.info[start] = rec[0]

    def maybe_flush(self) -> None:
        """Flush when ``flush_interval_s`` has passed since the last flush."""
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write everything to the file (what a crash afterwards keeps)."""
        self.f.flush()
        self.n_flushed = self.n_frames
        self._flushed_rows = (self.particles.shape[0], self.info.shape[0])
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
        if summary is not None:
            self.f.attrs["summary"] = json.dumps(summary)
        self.f.attrs["closed_cleanly"] = True
        self.f.close()


class RecorderSink:
    """A pipeline sink that records in its own thread.

    The writer is created on the first frame (when the frame shape is known), with the pixel
    size from the series metadata. A full queue blocks the caller (recording is lossless;
    under the ``live`` policy the runner then drops at its compute queue instead).

    Compression (Blosc2, bitshuffle) runs in ``compress_threads`` worker threads as soon as a
    result arrives; the recorder thread only writes the finished chunks
    (``write_direct_chunk``), so HDF5's global lock is held for the write alone.

    Series: every series goes into the same file (``series`` column in the tables) while the
    frame shape and dtype stay the same; a series with another frame shape starts a new file
    ``<stem>.series<id><suffix>`` (listed in :attr:`paths`).

    Errors: the output folder is checked when the sink is made (a clear error before the run
    starts). A write that fails later (disk full, permission lost) closes the file, which
    keeps every frame up to the last flush, and the next ``write`` raises
    :class:`RecordingError`, which stops the pipeline.
    """

    def __init__(self, path: str | Path, *, config_toml: str = "", raw_frames: bool = True,
                 frames_compression: str = "none", labels_compression: str = "blosc2-zstd",
                 flush_interval_s: float = 1.0, queue_size: int = 64,
                 attrs: dict[str, Any] | None = None, swmr: bool = False,
                 compress_threads: int = 2):
        self.path = Path(path)
        try:
            with open(self.path, "ab"):
                pass
        except OSError as exc:
            raise RecordingError(f"cannot write the recording {self.path}: {exc.strerror}; "
                                 "choose a writable folder with --out") from None
        self.paths = [self.path]
        self._options = dict(config_toml=config_toml, raw_frames=raw_frames,
                             frames_compression=frames_compression,
                             labels_compression=labels_compression,
                             flush_interval_s=flush_interval_s, swmr=swmr)
        self._attrs = dict(attrs or {})
        self._series_meta: dict[str, Any] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self.writer: RecordingWriter | None = None
        self.frames_written = 0
        self.paused = False
        self._pending_info: list[dict] = []
        self._encoders: dict[tuple[str, str], Any] = {}
        needs_pool = any(chunk_encoder(c, "<u2") is not None
                         for c in (frames_compression, labels_compression))
        self._pool = None
        if needs_pool and compress_threads > 0:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(compress_threads,
                                            thread_name_prefix="temstream-compress")
        self._thread = threading.Thread(target=self._loop, name="temstream-recorder", daemon=True)
        self._thread.start()

    @property
    def file_size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _check(self) -> None:
        if self._error is not None:
            if isinstance(self._error, RecordingError):
                raise self._error
            raise RuntimeError(f"recorder failed: {self._error}") from self._error

    def _put(self, item) -> None:
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def series_start(self, event) -> None:
        self._series_meta = dict(event.meta)
        self._attrs.setdefault("series_meta", self._series_meta)

    def pause(self) -> None:
        """Stop storing frames, labels and particles (their ``/frames_info`` rows still go in,
        with reason ``not recorded``) until :meth:`resume`."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def _encode(self, compression: str, array: np.ndarray | None, dtype: Any):
        """A future of the compressed chunk (or the array itself when h5py writes it)."""
        if array is None or self._pool is None:
            return array
        key = (compression, np.dtype(dtype).str)
        if key not in self._encoders:
            self._encoders[key] = chunk_encoder(compression, dtype)
        encoder = self._encoders[key]
        return array if encoder is None else self._pool.submit(encoder, array)

    def write(self, result) -> None:
        frame = result.frame
        if self.paused:
            self._put(("info", {**result.info_row(), "reason": "not recorded"}))
            return
        self._check()
        o = self._options
        image = self._encode(o["frames_compression"], frame.image if o["raw_frames"] else None,
                             frame.image.dtype)
        labels = self._encode(o["labels_compression"], result.labels, "<u4")
        self._put(("frame", frame.index, frame.series, frame.timestamp or frame.receive_time,
                   frame.image.shape, frame.image.dtype, image, labels, result.table,
                   result.info_row(),
                   frame.meta.get("pixel_size_nm", self._series_meta.get("pixel_size_nm"))))

    def dropped(self, row: dict) -> None:
        self._put(("info", row))

    def close(self, summary) -> None:
        self._put(("close", summary.as_dict() if hasattr(summary, "as_dict") else summary))
        self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._check()

    def _open(self, path: Path, shape, dtype, table: dict, pixel_size_nm) -> RecordingWriter:
        extra = {k: np.asarray(v).dtype.str for k, v in table.items()
                 if k not in PARTICLE_COLUMNS and np.asarray(v).dtype.kind in "fiub"}
        writer = RecordingWriter(path, frame_shape=shape, frame_dtype=dtype,
                                 pixel_size_nm=pixel_size_nm, extra_columns=extra,
                                 attrs=self._attrs, **self._options)
        for row in self._pending_info:
            writer.append_info(row)
        self._pending_info.clear()
        return writer

    def _writer_for(self, series, shape, dtype, table, pixel_size) -> RecordingWriter:
        w = self.writer
        if w is None:
            self.writer = self._open(self.path, shape, dtype, table, pixel_size)
        elif w.shape != tuple(shape) or (w.frames is not None and w.frames.dtype != dtype):
            path = self.path.with_name(f"{self.path.stem}.series{series}{self.path.suffix}")
            log.warning("series %s has %s %s frames, the recording %s holds %s: recording it "
                        "to %s", series, shape, dtype, w.path, w.shape, path)
            w.close({"continued_in": str(path)})
            self.writer = self._open(path, shape, dtype, table, pixel_size)
            self.paths.append(path)
        return self.writer

    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                kind = item[0]
                if kind == "frame":
                    (_, index, series, ts, shape, dtype, image, labels, table, info,
                     pixel_size) = item
                    image = image.result() if hasattr(image, "result") else image
                    labels = labels.result() if hasattr(labels, "result") else labels
                    writer = self._writer_for(series, shape, dtype, table, pixel_size)
                    writer.append(index, ts, image, labels, table, info, series=series)
                    self.frames_written += 1
                elif kind == "info":
                    if self.writer is None:
                        self._pending_info.append(item[1])
                    else:
                        self.writer.append_info(item[1])
                        self.writer.maybe_flush()
                elif kind == "close":
                    if self.writer is None:
                        if self._pending_info:
                            log.warning("no frame was processed; %s holds no recording",
                                        self.path)
                        if self.file_size == 0:
                            self.path.unlink(missing_ok=True)
                    else:
                        self.writer.close(item[1])
                    return
        except BaseException as exc:  # noqa: BLE001 - surfaced by _check() in the pipeline
            w = self.writer
            if isinstance(exc, (OSError, RuntimeError)) and w is not None:
                # h5py reports failed writes as OSError or RuntimeError ("file write failed")
                exc = RecordingError(f"recording to {w.path} stopped: {str(exc)[:300]}; the "
                                     f"file keeps the first {w.n_flushed} frames (free disk "
                                     "space or choose another --out to record more)")
            log.error("%s", exc)
            self._error = exc
            if w is not None:
                try:
                    if isinstance(exc, RecordingError):
                        w.abandon(exc)
                    else:
                        w.close({"error": str(exc)})
                except Exception:  # noqa: BLE001 - never leave the pipeline waiting on us
                    try:
                        w.abandon(exc)
                    except Exception:  # noqa: BLE001
                        log.exception("could not close %s", w.path)
            while True:  # keep draining so the pipeline never blocks on a dead recorder
                item = self._queue.get()
                if item[0] == "close":
                    return


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


def salvage(path: str | Path, n_frames: int | None, rows: tuple[int, int] | None = None,
            error: str = "") -> bool:
    """Make a recording whose writer failed mid-write open again, cut to ``n_frames`` frames.

    Restores a truncated end of file (sparse extension to the end the superblock records),
    then shrinks the frame stacks, time dims and tables to the last flush (``rows`` =
    particle and frames_info rows then). ``n_frames=None`` (not known, when a reader
    repairs the file later) drops the last frame of each stack, which may be partly written. Returns True when the file opens afterwards.
    Files written in SWMR mode are left as they are (open them with ``swmr=True``).
    """
    import re

    path = Path(path)
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        m = re.search(r"stored_eof = (\d+)", str(exc))
        if not m:
            return False
        try:
            os.truncate(path, int(m.group(1)))
        except OSError:  # e.g. a file-size limit: open_recording repairs it later
            return False
    try:
        with h5py.File(path, "r+") as f:
            for name in list(f.get("data", {})):
                g = f["data"][name]
                if n_frames is None:  # unknown: drop the last frame, maybe partly written
                    stacks = [f["data"][k]["data"].shape[0] for k in f["data"]
                              if "data" in f["data"][k]]
                    n_frames = max(0, min(stacks, default=1) - 1)
                for key in ("data", "dim1"):
                    if key in g and g[key].maxshape[0] is None and g[key].shape[0] > n_frames:
                        g[key].resize(n_frames, axis=0)
            for key, n in zip(("particles", "frames_info"), rows or ()):
                if key in f and f[key].shape[0] > n:
                    f[key].resize(n, axis=0)
            f.attrs["recording_error"] = error
    except Exception:  # noqa: BLE001 - the disk may refuse even this: the file still opens
        pass
    try:
        h5py.File(path, "r").close()
        return True
    except OSError:
        return False


def _readable_extent(f: h5py.File) -> tuple[int, tuple[int, int]] | None:
    """``(frames, (particle rows, frames_info rows))`` that read back from a recording whose
    writer did not close it, when the end of a stack or table does not; None when all do.

    A writer killed in the middle of a flush can leave the chunk index on disk ahead of the
    end of file the superblock records; the last chunks then fail to read ("addr overflow")
    although the file opens.
    """
    def readable(ds) -> int:
        n = ds.shape[0]
        step = ds.chunks[0] if ds.chunks else 1
        while n > 0:
            try:
                ds[n - 1]
                return n
            except OSError:
                n = (n - 1) // step * step  # the whole chunk holding n - 1 is lost
        return 0

    stacks = [f["data"][k][key] for k in f.get("data", {}) for key in ("data", "dim1")
              if key in f["data"][k] and f["data"][k][key].maxshape[0] is None]
    tables = [f[k] for k in ("particles", "frames_info") if k in f]
    frames = [readable(ds) for ds in stacks]
    rows = [readable(ds) for ds in tables]
    if all(n == ds.shape[0] for n, ds in zip(frames + rows, stacks + tables)):
        return None
    n_frames = min(frames, default=0)
    rows = tuple(rows) + (0,) * (2 - len(rows))
    return n_frames, rows


def _extend_eoa_to_eof(path: Path) -> bool:
    """Set the end-of-file address a version-0 superblock records to the file's size (what
    ``h5clear --increment=0`` does), so that a writer can open a file whose chunk index got
    ahead of that address again: its next flush writes back index nodes that lie beyond it.
    Returns False for other superblock versions (SWMR files, left alone)."""
    import struct

    size = path.stat().st_size
    with open(path, "r+b") as fh:
        head = fh.read(48)
        if len(head) < 48 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] != 0:
            return False
        if head[13] != 8:  # size of offsets: this layout holds for 8-byte addresses only
            return False
        eoa = struct.unpack("<Q", head[40:48])[0]
        if size > eoa:
            fh.seek(40)
            fh.write(struct.pack("<Q", size))
    return True


def _in_use(path: Path) -> bool:
    """True when another process holds a lock on the file (a live writer: never repair)."""
    import fcntl

    with open(path, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def open_recording(path: str | Path) -> h5py.File:
    """Open a recording read-only, also one that is still being written in SWMR mode or whose
    SWMR writer was killed (those open only with ``swmr=True``). A recording whose writer was
    killed in mid-write is cut back, once, to what reads back (see :func:`salvage`)."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        if "truncated file" in str(exc) and "stored_eof" in str(exc):
            log.warning("%s ends early (its writer failed mid-write): repairing it", path)
            if salvage(path, None, error="the writer failed mid-write; repaired when opened"):
                return h5py.File(path, "r")
        if "already open for write" not in str(exc):
            raise
        return h5py.File(path, "r", swmr=True, libver="latest")
    if bool(f.attrs.get("closed_cleanly", True)):
        return f
    cut = _readable_extent(f)
    if cut is None:
        return f
    f.close()
    if _in_use(Path(path)):
        return h5py.File(path, "r")
    log.warning("%s: its writer was killed in mid-write and the last frames do not read "
                "back; keeping the first %d", path, cut[0])
    _extend_eoa_to_eof(Path(path))  # else cutting back cannot flush the index nodes
    salvage(path, cut[0], cut[1], error="the writer was killed in mid-write; cut back to "
                                        "what reads back when opened")
    return h5py.File(path, "r")


def read_particles(path: str | Path):
    """The particle table of a recording as a pandas DataFrame (trackpy-ready)."""
    import pandas as pd

    with open_recording(path) as f:
        table = f["particles"][()]
    return pd.DataFrame(table)


def read_frames_info(path: str | Path):
    """The per-frame accounting table as a DataFrame, sorted by frame."""
    import pandas as pd

    with open_recording(path) as f:
        df = pd.DataFrame(f["frames_info"][()])
    for col in ("status", "reason"):
        df[col] = df[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
    return df.sort_values(["series", "frame"], kind="stable").reset_index(drop=True)
