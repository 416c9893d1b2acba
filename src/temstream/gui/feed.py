"""Subscribe to a running pipeline's results feed and hand each frame to a DisplaySink (Qt-free).

The feed (``temstream.stream.results``, documented in ``docs/results-feed.md``) publishes one
multipart message per processed frame: a JSON summary (frame, series, timestamps, the particle
columns as lists), optionally followed by the label image. The parser below reads the fields it
needs and tolerates extra ones; a message it cannot read is counted in :attr:`malformed` and
skipped. The feed carries no raw pixels, so the dashboard draws the labels on black.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import types
from typing import Any

import numpy as np
import zmq

from temstream.gui.bridge import DISPLAY_COLUMNS, DisplayFrame, DisplaySink

log = logging.getLogger(__name__)

_POLL_MS = 100
_SERIES_KEYS = ("pixel_size_nm", "frame_time_s")


def _table(msg: dict) -> dict[str, np.ndarray]:
    cols = None
    for key in ("particles", "columns", "table"):
        if key in msg:
            cols = msg[key]
            break
    if cols is None:
        cols = {k: msg[k] for k in DISPLAY_COLUMNS if isinstance(msg.get(k), list)}
    if isinstance(cols, list):  # list of row dicts
        cols = {k: [row.get(k) for row in cols] for k in DISPLAY_COLUMNS
                if cols and k in cols[0]}
    if not isinstance(cols, dict):
        raise ValueError("no particle columns")
    out = {}
    for k in DISPLAY_COLUMNS:
        if k in cols and cols[k] is not None:
            dtype = np.int64 if k == "particle" else np.float64
            out[k] = np.asarray([np.nan if v is None else v for v in cols[k]], dtype=dtype)
    return out


def _labels(msg: dict, parts: list) -> np.ndarray | None:
    if len(parts) < 2:
        return None
    spec = msg.get("labels") if isinstance(msg.get("labels"), dict) else msg
    shape = spec.get("labels_shape") or spec.get("shape")
    dtype = spec.get("labels_dtype") or spec.get("dtype") or "<i4"
    if not shape or len(shape) != 2:
        raise ValueError("label image without a 2-D shape")
    return np.frombuffer(parts[1], dtype=np.dtype(dtype)).reshape(shape)


def parse_message(parts: list) -> tuple[str, Any]:
    """One feed message -> ``("frame", DisplayFrame)``, ``("series", (series, meta))``,
    ``("end", series)`` or ``("other", msg)``.

    Raises
    ------
    ValueError
        The message is not JSON or lacks the fields of its kind.
    """
    msg = json.loads(bytes(parts[0]))
    if not isinstance(msg, dict):
        raise ValueError("the summary is not a JSON object")
    kind = str(msg.get("htype") or msg.get("type") or msg.get("event") or "")
    series = int(msg.get("series", 0) or 0)
    if "series-end" in kind or kind.endswith("end"):
        return "end", series
    if "series" in kind and "frame" not in msg:
        meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else msg
        return "series", (series, {k: meta[k] for k in meta if k != "htype"})
    if "frame" not in msg:
        return "other", msg
    frame = DisplayFrame(index=int(msg["frame"]), series=series, table=_table(msg),
                         labels=_labels(msg, parts),
                         latency_ms=float(msg.get("latency_ms", np.nan) or np.nan))
    return "frame", (frame, {k: msg[k] for k in _SERIES_KEYS if msg.get(k) is not None}, msg)


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
        Stop when nothing arrived for this long after the first message (0 = never).
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
        self.stopped_by = ""
        self.error: BaseException | None = None

    def stop(self, reason: str = "stop requested") -> None:
        self.stopped_by = self.stopped_by or reason
        self._stop.set()

    def health(self) -> dict[str, Any]:
        """Pipeline numbers the feed reported (received, queues, recording), where present."""
        out: dict[str, Any] = {}
        c = self.last_counts
        if "received" in c:
            out["received"] = int(c["received"])
        if isinstance(c.get("queues"), dict):
            out["queues"] = c["queues"]
        out["recording"] = str(c.get("recording", "unknown (feed)"))
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
        if kind == "series":
            self.sink.set_series(*payload)
        elif kind == "frame":
            frame, meta, msg = payload
            if meta:
                self.sink.update_meta(meta)
            for key in ("received", "queues", "recording"):
                if key in msg:
                    self.last_counts[key] = msg[key]
            if isinstance(msg.get("dropped"), dict):
                self.sink.set_dropped(msg["dropped"])
            self.sink.push(frame)
            self.frames_received += 1
            if self.frames and self.frames_received >= self.frames:
                self.stop("frame limit")
