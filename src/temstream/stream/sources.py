"""Frame sources: a ZeroMQ receiver for any registered protocol, and an in-memory source.

A source has ``receive(timeout_ms) -> event | None`` (``None`` on time-out), a ``stats`` counter of
received and malformed messages, and ``close()``. Malformed messages are counted per kind,
logged once per kind, and skipped: a receiver never raises on bad input.
"""

from __future__ import annotations

import collections
import logging
from typing import Iterable, Iterator

import numpy as np
import zmq

from temstream.stream.events import (Frame, LostFrame, MalformedMessage, PendingFrame,
                                     SeriesEnd, SeriesStart, clean_meta)
from temstream.stream.protocols import make_decoder
from temstream.stream.sockets import open_socket, tune_malloc_for_large_frames

log = logging.getLogger(__name__)

Event = Frame | SeriesStart | SeriesEnd | LostFrame


class ZmqSource:
    """Receive frames from a ZeroMQ endpoint.

    Parameters
    ----------
    endpoint : str
        e.g. ``tcp://127.0.0.1:5555`` (the detector or replay binds; we connect).
    protocol : {"native", "dectris-v2", "dectris-v1"}
        Wire protocol of the stream.
    socket : {"pull", "sub"}
        PULL for a detector / lossless replay, SUB to listen to a PUB fan-out.
    bind : bool
        Bind instead of connect (when the sender connects).
    rcvhwm : int
        Receive high-water mark, in messages.
    decode_threads : int
        Threads that decompress frames (DECTRIS bslz4/lz4) off the receiving thread, reading
        ahead up to ``2 * decode_threads + 2`` messages; 0 decompresses inline. Frames are
        always returned in arrival order. Native frames need no decompression either way.

    Notes
    -----
    Series bookkeeping: a frame whose series was not announced (the receiver connected in
    the middle of a series, or the start message was lost when the sender restarted) is
    preceded by a synthetic :class:`SeriesStart` with ``meta["synthetic"] = True``; frame
    numbering may restart with every series. A connect socket reconnects by itself when the
    sender restarts, so one source follows any number of series.
    """

    def __init__(self, endpoint: str, *, protocol: str = "native", socket: str = "pull",
                 bind: bool = False, rcvhwm: int = 64, context: zmq.Context | None = None,
                 decode_threads: int = 0):
        self.endpoint = endpoint
        self.protocol = protocol
        tune_malloc_for_large_frames()
        self._decode = make_decoder(protocol)
        self._sock = open_socket(endpoint, socket, bind=bind, hwm=rcvhwm, context=context)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self.stats: collections.Counter[str] = collections.Counter()
        self._logged: set[str] = set()
        self._series: int | None = None
        self._ready: collections.deque = collections.deque()  # events due before new ones
        self._inflight: collections.deque = collections.deque()  # (event, future or None)
        self._pool = None
        self._read_ahead = 2 * decode_threads + 2
        if decode_threads > 0:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(decode_threads, thread_name_prefix="temstream-decode")

    def receive(self, timeout_ms: int = 100) -> Event | None:
        """Wait up to ``timeout_ms`` for the next valid event; ``None`` on time-out."""
        while True:
            if self._ready:
                return self._ready.popleft()
            if self._pool is not None:
                self._read_available()
                if self._inflight:
                    event = self._finish(*self._inflight.popleft())
                    if event is not None:
                        self._emit(event)
                    continue
            if not self._poller.poll(timeout_ms):
                return None
            timeout_ms = 0  # after a bad message: take a good one already queued, else None
            if self._pool is not None:
                continue  # _read_available takes it
            event = self._next_message()
            if event is None:
                continue
            event = self._finish(event, None)
            if event is not None:
                self._emit(event)

    # -- internals ---------------------------------------------------------------------------
    def _next_message(self):
        """Receive and parse one message: an event, a PendingFrame, or None if malformed."""
        parts = self._sock.recv_multipart(copy=False)
        self.stats["messages"] += 1
        try:
            return self._decode(parts)
        except MalformedMessage as exc:
            self._count_malformed(exc.kind, str(exc))
        except Exception as exc:  # a decoder bug must not kill ingest either
            self._count_malformed("decoder-error", repr(exc))
        return None

    def _read_available(self) -> None:
        """Parse queued messages without waiting; start their decompression in the pool."""
        while len(self._inflight) < self._read_ahead and self._sock.poll(0):
            event = self._next_message()
            if isinstance(event, PendingFrame):
                self._inflight.append((event, self._pool.submit(event.work)))
            elif event is not None:
                self._inflight.append((event, None))

    def _finish(self, event, future) -> Event | None:
        """Complete a parsed event (pixels decompressed); a :class:`LostFrame` if that failed
        (counted as malformed)."""
        if not isinstance(event, PendingFrame):
            self.stats["decoded"] += 1
            return event
        try:
            if future is None:
                event.resolve()
            else:
                event.frame.image = future.result()
        except MalformedMessage as exc:
            self._count_malformed(exc.kind, str(exc))
            return self._lost(event.frame)
        except Exception as exc:  # noqa: BLE001
            self._count_malformed("decoder-error", repr(exc))
            return self._lost(event.frame)
        self.stats["decoded"] += 1
        return event.frame

    @staticmethod
    def _lost(frame: Frame) -> LostFrame:
        frame.image = None  # nothing of the bad payload is kept
        return LostFrame(series=frame.series, index=frame.index, receive_time=frame.receive_time)

    def _emit(self, event: Event) -> None:
        """Queue ``event`` for the caller, after a synthetic start where one is missing."""
        if isinstance(event, (SeriesStart, Frame)):
            for key in clean_meta(event.meta):
                self.stats[f"anomaly:bad-metadata:{key}"] += 1
                if f"meta:{key}" not in self._logged:
                    self._logged.add(f"meta:{key}")
                    log.warning("ignoring %s that is not a number > 0 (message kept); further "
                                "ones are only counted", key)
        if isinstance(event, SeriesStart):
            self._series = event.series
            self.stats["series"] += 1
        elif isinstance(event, SeriesEnd):
            self._series = None
        elif isinstance(event, Frame):
            if event.series != self._series:
                log.info("frame %d of series %d arrived without its series start; starting "
                         "the series here", event.index, event.series)
                self._series = event.series
                self.stats["series"] += 1
                self.stats["series-without-start"] += 1
                meta = {"synthetic": True}
                known = getattr(self._decode, "series_meta", None)
                if known and getattr(self._decode, "series", None) == event.series:
                    meta.update(known)
                self._ready.append(SeriesStart(series=event.series, meta=meta))
            self.stats["frames"] += 1
        self._ready.append(event)

    def _count_malformed(self, kind: str, message: str) -> None:
        self.stats[f"malformed:{kind}"] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("skipping malformed message (%s): %s; further ones are only counted",
                        kind, message)

    @property
    def malformed(self) -> dict[str, int]:
        """Malformed-message counts by kind."""
        return {k.split(":", 1)[1]: v for k, v in self.stats.items() if k.startswith("malformed:")}

    @property
    def anomalies(self) -> dict[str, int]:
        """Valid messages taken without a part that could not be used (``bad-metadata:KEY``:
        a metadata value removed by :func:`~temstream.stream.events.clean_meta`)."""
        return {k.split(":", 1)[1]: v for k, v in self.stats.items() if k.startswith("anomaly:")}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._sock.close(0)


class MemorySource:
    """A source over in-memory frames, for ``temstream process`` and tests.

    Parameters
    ----------
    frames : iterable of ndarray (H, W), or of Frame
        The frames, in order. Plain arrays are numbered 0, 1, 2, ...
    series : int
        Series id given to plain arrays.
    meta : dict
        Series metadata (``pixel_size_nm``, ``frame_time_s``, ...). Frame ``i`` gets the
        timestamp ``i * frame_time_s``; without a frame time, ``time_units="frame"`` makes it
        ``i`` (the recording's time axis then counts frames), else it has none.
    """

    def __init__(self, frames: Iterable, *, series: int = 0, meta: dict | None = None):
        self.stats: collections.Counter[str] = collections.Counter()
        self.malformed: dict[str, int] = {}
        self._events = self._iterate(frames, series, meta or {})

    @staticmethod
    def _iterate(frames: Iterable, series: int, meta: dict) -> Iterator[Event]:
        yield SeriesStart(series=series, meta=dict(meta))
        frame_time = meta.get("frame_time_s")
        counts_frames = meta.get("time_units") == "frame"
        for i, item in enumerate(frames):
            if isinstance(item, Frame):
                yield item
            else:
                ts = (i * float(frame_time) if frame_time is not None
                      else float(i) if counts_frames else None)
                keep = {k: v for k, v in meta.items() if k == "pixel_size_nm"}
                yield Frame(image=np.asarray(item), series=series, index=i, timestamp=ts,
                            meta=keep)
        yield SeriesEnd(series=series)

    def receive(self, timeout_ms: int = 100) -> Event | None:
        event = next(self._events, None)
        if isinstance(event, Frame):
            self.stats["frames"] += 1
        return event

    def close(self) -> None:
        pass
