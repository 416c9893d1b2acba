"""The recorder sink: a pipeline sink that feeds a :class:`RecordingWriter` from its own thread."""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np

from temstream.record.compression import chunk_encoder
from temstream.record.layout import PARTICLE_COLUMNS
from temstream.record.writer import RecordingError, RecordingWriter

log = logging.getLogger(__name__)


class RecorderSink:
    """A pipeline sink that records in its own thread.

    The writer is created on the first frame (when the frame shape is known), with the pixel
    size from the series metadata. A full queue blocks the caller (recording is lossless;
    under the ``live`` policy the runner then drops at its compute queue instead).

    Compression (Blosc2, bitshuffle) runs in ``compress_threads`` worker threads as soon as a
    result arrives; the recorder thread only writes the finished chunks
    (``write_direct_chunk``), so HDF5's global lock is held for the write alone.

    Series: every series goes into the same file (``series`` column in the tables) while the
    frame shape and dtype stay the same; frames of another shape or dtype go to a file of
    their own, ``<stem>.series<id><suffix>`` (listed in :attr:`paths`), which stays open, so
    frames that alternate between shapes all land in their file.

    Errors: the output folder is checked when the sink is made (a clear error before the run
    starts). A write that fails later (disk full, permission lost) closes the file, which
    keeps every frame up to the last flush, and the next ``write`` raises
    :class:`RecordingError`, which stops the pipeline.
    """

    def __init__(self, path: str | Path, *, config_toml: str = "", raw_frames: bool = True,
                 frames_compression: str = "none", labels_compression: str = "gzip",
                 flush_interval_s: float = 0.25, queue_size: int = 64,
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
        self._writers: dict[tuple, RecordingWriter] = {}  # by (frame shape, dtype)
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
        ts = frame.timestamp if frame.timestamp is not None else frame.receive_time
        layer_labels = getattr(result, "layer_labels", None)
        self._put(("frame", frame.index, frame.series, ts,
                   frame.image.shape, frame.image.dtype, image, labels, result.table,
                   result.info_row(),
                   frame.meta.get("pixel_size_nm", self._series_meta.get("pixel_size_nm")),
                   layer_labels))

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
        time_units = "frame" if self._series_meta.get("time_units") == "frame" else "s"
        writer = RecordingWriter(path, frame_shape=shape, frame_dtype=dtype,
                                 pixel_size_nm=pixel_size_nm, extra_columns=extra,
                                 attrs=self._attrs, time_units=time_units, **self._options)
        for row in self._pending_info:
            writer.append_info(row)
        self._pending_info.clear()
        return writer

    def _writer_for(self, series, shape, dtype, table, pixel_size) -> RecordingWriter:
        key = (tuple(int(s) for s in shape), np.dtype(dtype).str)
        w = self.writer
        if w is None:
            self.writer = self._writers[key] = self._open(self.path, shape, dtype, table,
                                                          pixel_size)
        elif key != self._key_of(w):
            # each frame shape and dtype has its own file, kept open: frames that switch back
            # and forth go on appending to theirs (never reopened, never truncated)
            if key not in self._writers:
                path = self.path.with_name(f"{self.path.stem}.series{series}{self.path.suffix}")
                if path in self.paths:
                    path = path.with_name(f"{self.path.stem}.series{series}.{key[0][0]}x"
                                          f"{key[0][1]}.{np.dtype(dtype).name}"
                                          f"{self.path.suffix}")
                log.warning("series %s has %s %s frames, the recording %s holds %s: "
                            "recording them to %s", series, shape, dtype, w.path, w.shape, path)
                self._writers[key] = self._open(path, shape, dtype, table, pixel_size)
                self.paths.append(path)
            self.writer = self._writers[key]
        return self.writer

    @staticmethod
    def _key_of(w: RecordingWriter) -> tuple:
        return (w.shape, w.frame_dtype.str)

    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                kind = item[0]
                if kind == "frame":
                    (_, index, series, ts, shape, dtype, image, labels, table, info,
                     pixel_size, layer_labels) = item
                    image = image.result() if hasattr(image, "result") else image
                    labels = labels.result() if hasattr(labels, "result") else labels
                    writer = self._writer_for(series, shape, dtype, table, pixel_size)
                    extra = None if layer_labels is None else {"layer_labels": layer_labels}
                    writer.append(index, ts, image, labels, table, info, series=series,
                                  extra=extra)
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
                        others = [str(w.path) for w in self._writers.values()
                                  if w is not self.writer]
                        for w in self._writers.values():
                            w.close({**item[1], "other_files": others} if others
                                    else item[1])
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
            for other in self._writers.values():
                if other is not w:
                    try:
                        other.close({"error": str(exc)})
                    except Exception:  # noqa: BLE001
                        log.exception("could not close %s", other.path)
            while True:  # keep draining so the pipeline never blocks on a dead recorder
                item = self._queue.get()
                if item[0] == "close":
                    return
