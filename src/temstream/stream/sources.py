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

from temstream.stream.events import Frame, MalformedMessage, SeriesEnd, SeriesStart
from temstream.stream.protocols import make_decoder
from temstream.stream.sockets import open_socket

log = logging.getLogger(__name__)

Event = Frame | SeriesStart | SeriesEnd


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
    """

    def __init__(self, endpoint: str, *, protocol: str = "native", socket: str = "pull",
                 bind: bool = False, rcvhwm: int = 64, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.protocol = protocol
        self._decode = make_decoder(protocol)
        self._sock = open_socket(endpoint, socket, bind=bind, hwm=rcvhwm, context=context)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self.stats: collections.Counter[str] = collections.Counter()
        self._logged: set[str] = set()

    def receive(self, timeout_ms: int = 100) -> Event | None:
        """Wait up to ``timeout_ms`` for the next valid event; ``None`` on time-out."""
        while self._poller.poll(timeout_ms):
            parts = self._sock.recv_multipart(copy=False)
            self.stats["messages"] += 1
            try:
                event = self._decode(parts)
            except MalformedMessage as exc:
                self._count_malformed(exc.kind, str(exc))
                timeout_ms = 0  # look for a good message already queued, else return None
                continue
            except Exception as exc:  # a decoder bug must not kill ingest either
                self._count_malformed("decoder-error", repr(exc))
                timeout_ms = 0
                continue
            if isinstance(event, Frame):
                self.stats["frames"] += 1
            return event
        return None

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

    def close(self) -> None:
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
        Series metadata (``pixel_size_nm``, ``frame_time_s``, ...).
    """

    def __init__(self, frames: Iterable, *, series: int = 0, meta: dict | None = None):
        self.stats: collections.Counter[str] = collections.Counter()
        self.malformed: dict[str, int] = {}
        self._events = self._iterate(frames, series, meta or {})

    @staticmethod
    def _iterate(frames: Iterable, series: int, meta: dict) -> Iterator[Event]:
        yield SeriesStart(series=series, meta=dict(meta))
        frame_time = meta.get("frame_time_s")
        for i, item in enumerate(frames):
            if isinstance(item, Frame):
                yield item
            else:
                ts = None if frame_time is None else i * float(frame_time)
                keep = {k: v for k, v in meta.items() if k == "pixel_size_nm"}
                yield Frame(image=np.asarray(item), series=series, frame=i, timestamp=ts,
                            meta=keep)
        yield SeriesEnd(series=series)

    def receive(self, timeout_ms: int = 100) -> Event | None:
        event = next(self._events, None)
        if isinstance(event, Frame):
            self.stats["frames"] += 1
        return event

    def close(self) -> None:
        pass
