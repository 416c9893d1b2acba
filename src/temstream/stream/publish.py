"""Frame publishers: send a series of frames over ZeroMQ in any registered protocol.

Used by the detector emulator (``temstream sim --publish``), by ``temstream replay`` and by the
demo. Frames of 64 kB and more are sent without a copy.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Iterable, Iterator

import numpy as np
import zmq

from temstream.stream.protocols import make_encoder
from temstream.stream.sockets import bound_endpoint, open_socket, tune_malloc_for_large_frames

_series_ids = itertools.count(int(time.time()) % 100000)


class FramePublisher:
    """Publish frames on a ZeroMQ socket.

    Parameters
    ----------
    endpoint : str
        Address to bind (default loopback). ``tcp://127.0.0.1:0`` picks a free port; read it
        back from :attr:`endpoint`.
    protocol : {"native", "dectris-v2", "dectris-v1"}
    socket : {"push", "pub"}
        PUSH back-pressures when the receiver is slow (lossless); PUB drops at the HWM.
    bind : bool
        Bind (like a detector) or connect.
    sndhwm : int
        Send high-water mark, in messages.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, protocol: str = "native",
                 socket: str = "push", bind: bool = True, sndhwm: int = 64,
                 context: zmq.Context | None = None):
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            endpoint = endpoint[:-2] + ":*"
        tune_malloc_for_large_frames()
        self._sock = open_socket(endpoint, socket, bind=bind, hwm=sndhwm, context=context)
        self.endpoint = bound_endpoint(self._sock) if bind else endpoint
        self.protocol = protocol
        self._encoder = make_encoder(protocol)
        self.series: int | None = None
        self.sent = 0

    def _send(self, parts: list) -> None:
        last = len(parts) - 1
        for i, part in enumerate(parts):
            flags = zmq.SNDMORE if i < last else 0
            nbytes = part.nbytes if isinstance(part, np.ndarray) else len(part)
            self._sock.send(part, flags, copy=nbytes < zmq.COPY_THRESHOLD)

    def writable(self, timeout_ms: int = 100) -> bool:
        """True when a message can be sent without blocking (a PUSH socket without a peer,
        or whose peer is behind, is not), after waiting up to ``timeout_ms``."""
        return bool(self._sock.poll(timeout_ms, zmq.POLLOUT))

    def start_series(self, meta: dict[str, Any] | None = None, *, series: int | None = None) -> int:
        """Open a series; returns its id."""
        self.series = next(_series_ids) if series is None else int(series)
        self._send(self._encoder.start(self.series, dict(meta or {})))
        return self.series

    def send(self, image: np.ndarray, *, frame: int, timestamp: float | None = None,
             **meta: Any) -> None:
        """Send one frame (``image`` (H, W)) with the detector's frame index."""
        if self.series is None:
            self.start_series()
        self._send(self._encoder.frame(image, self.series, frame, timestamp, meta))
        self.sent += 1

    def end_series(self, **meta: Any) -> None:
        """Close the current series."""
        if self.series is not None:
            self._send(self._encoder.end(self.series, meta))
            self.series = None

    def close(self, linger_ms: int = 1000) -> None:
        """Close the socket, giving queued messages ``linger_ms`` to leave."""
        self._sock.close(linger_ms)

    def __enter__(self) -> FramePublisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def paced(items: Iterable, fps: float | None) -> Iterator:
    """Yield ``items`` at ``fps`` per second on absolute deadlines (no drift); ``None`` = no pacing."""
    if not fps:
        yield from items
        return
    period = 1.0 / fps
    start = time.perf_counter()
    for i, item in enumerate(items):
        delay = start + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield item
