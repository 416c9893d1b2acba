"""Subscribe to a running pipeline's results feed and hand each frame to a DisplaySink (Qt-free).

The feed (:mod:`temstream.stream.results`, schema ``temstream-results-1``) publishes
``[b"frame", JSON summary, (label image int32)]`` per processed frame and ``[b"summary", JSON]``
after the run. The JSON carries ``series``, ``frame``, ``latency_ms``, ``pixel_size_nm``,
``particles`` (columns as lists) and, with labels, ``labels: {shape, dtype}``. A message of
another schema or that cannot be read is counted in :attr:`FeedSubscriber.malformed` and
skipped. The feed carries the frame only when the pipeline publishes it (``results.frames``,
binned and rate-limited): between two such messages the last frame stays on screen. Without
frames the dashboard draws the labels on black, and says what the feed is missing
(``feed_missing`` in the sink's metadata).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import types
from typing import Any

import zmq

from temstream.gui.bridge import DISPLAY_COLUMNS, DisplayFrame, DisplaySink
from temstream.stream import results_schema
from temstream.stream.results_schema import SCHEMA  # noqa: F401 - importable from here as before

log = logging.getLogger(__name__)

_POLL_MS = 100


def parse_message(parts: list) -> tuple[str, Any]:
    """One feed message -> ``("frame", (DisplayFrame, meta))`` or ``("summary", dict)``.

    :func:`temstream.stream.results_schema.parse_message`, reading the
    :data:`~temstream.gui.bridge.DISPLAY_COLUMNS` into a :class:`DisplayFrame`.

    Parameters
    ----------
    parts : list of bytes-like
        The multipart message: topic, JSON, optional label image.

    Raises
    ------
    ValueError
        Unknown topic or schema, bad JSON, missing fields.
    """
    kind, payload = results_schema.parse_message(parts, DISPLAY_COLUMNS)
    if kind == "frame":
        fields, meta = payload
        return kind, (DisplayFrame(**fields), meta)
    return kind, payload


class FeedSubscriber:
    """A SUB socket on a results feed feeding a :class:`DisplaySink`; run :meth:`run` in a thread.

    Parameters
    ----------
    endpoint : str
        The feed's PUB endpoint.
    sink : DisplaySink
    frames : int
        Stop after this many frames (0 = no limit).
    idle_timeout_s : float
        Stop when nothing arrived for this long after the first message (0 = never). The
        subscription also ends with the feed's end-of-run summary.
    context : zmq.Context, optional
    """

    def __init__(self, endpoint: str, sink: DisplaySink, *, frames: int = 0,
                 idle_timeout_s: float = 0.0, context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.sink = sink
        self.frames = int(frames)
        self.idle_timeout_s = float(idle_timeout_s)
        self._ctx = context or zmq.Context.instance()
        self._stop = threading.Event()
        self.frames_received = 0
        self.malformed: collections.Counter[str] = collections.Counter()
        self.last_counts: dict[str, Any] = {}
        self._series: int | None = None
        self._last_image = None
        self._had_image = False
        self.missing: tuple[str, ...] = ()  # what the feed does not carry: frames, labels
        self.stopped_by = ""
        self.error: BaseException | None = None

    def stop(self, reason: str = "stop requested") -> None:
        self.stopped_by = self.stopped_by or reason
        self._stop.set()

    def health(self) -> dict[str, Any]:
        """What the feed tells of the pipeline (received frames only in the end summary)."""
        out: dict[str, Any] = {"recording": "unknown (results feed)"}
        if "received" in self.last_counts:
            out["received"] = int(self.last_counts["received"])
        return out

    def run(self) -> None:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 64)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.endpoint)
        last = None
        try:
            while not self._stop.is_set():
                if not sock.poll(_POLL_MS):
                    if (self.idle_timeout_s and last is not None
                            and time.monotonic() - last > self.idle_timeout_s):
                        self.stop("idle timeout")
                    continue
                parts = sock.recv_multipart(copy=False)
                last = time.monotonic()
                self._handle([p.buffer for p in parts])
        except BaseException as exc:  # noqa: BLE001 - surfaced by the caller
            self.error = exc
        finally:
            sock.close(0)
            self.sink.close(types.SimpleNamespace(stopped_by=self.stopped_by,
                                                  frames=self.frames_received))

    def _handle(self, parts: list) -> None:
        try:
            kind, payload = parse_message(parts)
        except (ValueError, KeyError, TypeError) as exc:
            self.malformed[type(exc).__name__] += 1
            log.debug("skipped a feed message: %s", exc)
            return
        if kind == "summary":
            self.last_counts = payload
            if isinstance(payload.get("dropped"), dict):
                self.sink.set_dropped(payload["dropped"])
            self.stop("end of run")
            return
        frame, meta = payload
        if frame.image is not None:
            self._last_image = frame.image
        elif self._last_image is not None and (frame.labels is None
                                               or self._last_image.shape == frame.labels.shape):
            frame.image = self._last_image  # frames come at most every frame_interval_s
        if frame.image is not None:
            self._had_image = True
        missing = tuple(name for name, have in (("frames", self._had_image),
                                                ("labels", frame.labels is not None))
                        if not have)
        self.missing = missing
        meta = {**meta, "feed_missing": missing}
        if frame.series != self._series:
            self._series = frame.series
            self.sink.set_series(frame.series, meta)
        elif meta:
            self.sink.update_meta(meta)
        self.sink.push(frame)
        self.frames_received += 1
        if self.frames and self.frames_received >= self.frames:
            self.stop("frame limit")
