"""The results feed: one ZeroMQ message per processed frame, for closed-loop control.

Schema ``temstream-results-1`` (``docs/results-feed.md``; constants and parser in
:mod:`temstream.stream.results_schema`): a multipart message
``[b"frame", JSON summary, (label image), (binned frame)]``; after the run one
``[b"summary", JSON]``.
Events detected here: the particle count crossing a threshold, a track appearing or leaving,
and a particle growing or shrinking past a limit relative to its first measured area.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import numpy as np
import zmq

from temstream.stream.results_schema import SCHEMA, TOPIC_FRAME, TOPIC_SUMMARY
from temstream.stream.sockets import bound_endpoint, is_loopback

log = logging.getLogger(__name__)


def _number(v) -> Any:
    v = v.item() if isinstance(v, np.generic) else v
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def bin_frame(image: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """``image`` binned by the smallest integer ``b`` with ``max(H, W) / b <= max_side``:
    the mean of each ``b x b`` block (edges that do not fill a block are cut), in the image's
    dtype (rounded for integers). Returns ``(binned, b)``; ``b = 1`` returns a C-contiguous
    view or copy of ``image``."""
    h, w = image.shape[:2]
    b = max(1, -(-max(h, w) // max(1, max_side)))
    if b == 1:
        return np.ascontiguousarray(image), 1
    hb, wb = h // b, w // b
    blocks = image[:hb * b, :wb * b].reshape(hb, b, wb, b)
    mean = blocks.mean(axis=(1, 3), dtype=np.float32)
    if image.dtype.kind in "ui":
        mean = np.rint(mean)
    return np.ascontiguousarray(mean.astype(image.dtype)), b


class EventDetector:
    """Turns per-frame particle tables into events (pure logic, no sockets).

    Parameters
    ----------
    count_threshold : int, optional
        Emit ``count_above`` / ``count_below`` when the particle count crosses it.
    leave_after : int
        A track has left after this many consecutive frames without it (the linker's
        ``memory`` lets tracks skip frames).
    grow_ratio, shrink_ratio : float
        Emit ``grew`` when a particle's area reaches ``grow_ratio`` x its first area, ``shrank``
        when it falls to ``shrink_ratio`` x (once per crossing; re-armed when it comes back).
    """

    def __init__(self, *, count_threshold: int | None = None, leave_after: int = 3,
                 grow_ratio: float = 1.5, shrink_ratio: float = 0.67):
        self.count_threshold = count_threshold
        self.leave_after = leave_after
        self.grow_ratio, self.shrink_ratio = grow_ratio, shrink_ratio
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new series starts)."""
        self._last_count: int | None = None
        self._missing: dict[int, int] = {}  # track id -> frames absent
        self._ref_area: dict[int, float] = {}
        self._size_state: dict[int, int] = {}  # -1 shrank, 0 normal, 1 grew

    def __call__(self, frame: int, ids: np.ndarray, areas: np.ndarray | None) -> list[dict]:
        """Events of one frame; ``ids`` (N,) track ids (-1 unlinked), ``areas`` (N,) px."""
        events: list[dict] = []
        n = len(ids)
        t = self.count_threshold
        if t is not None and self._last_count is not None:
            if self._last_count <= t < n:
                events.append({"type": "count_above", "threshold": t, "count": n})
            elif n <= t < self._last_count:
                events.append({"type": "count_below", "threshold": t, "count": n})
        self._last_count = n
        present = set()
        for k, pid in enumerate(np.asarray(ids).tolist()):
            if pid < 0:
                continue
            present.add(pid)
            if pid not in self._missing:
                events.append({"type": "track_appeared", "particle": pid})
            self._missing[pid] = 0
            if areas is None:
                continue
            area = float(areas[k])
            ref = self._ref_area.setdefault(pid, area)
            if ref <= 0 or not math.isfinite(area):
                continue
            ratio = area / ref
            state = 1 if ratio >= self.grow_ratio else -1 if ratio <= self.shrink_ratio else 0
            if state != self._size_state.get(pid, 0) and state != 0:
                events.append({"type": "grew" if state > 0 else "shrank", "particle": pid,
                               "area": area, "first_area": ref, "ratio": round(ratio, 4)})
            self._size_state[pid] = state
        for pid in list(self._missing):
            if pid in present:
                continue
            self._missing[pid] += 1
            if self._missing[pid] >= self.leave_after:
                events.append({"type": "track_left", "particle": pid,
                               "last_frame": frame - self._missing[pid]})
                del self._missing[pid]
                self._ref_area.pop(pid, None)
                self._size_state.pop(pid, None)
        return events


class ResultsPublisher:
    """A pipeline sink that publishes every processed frame on a PUB socket.

    Parameters
    ----------
    endpoint : str
        Address to bind, e.g. ``tcp://127.0.0.1:5556`` (port 0 picks one: read
        :attr:`endpoint`).
    labels : bool
        Append the label image (int32 (H, W), C order) as a part after the JSON.
    frames : bool
        Append the raw frame, binned by the smallest integer that brings its longer side to
        ``frame_max_side`` or less (mean of each block, in the frame's dtype), as the last
        part; at most one every ``frame_interval_s`` (the other messages carry none).
    count_threshold, leave_after, grow_ratio, shrink_ratio
        Event settings (:class:`EventDetector`).
    sndhwm : int
        Messages queued per subscriber before a slow one misses messages (PUB never blocks
        the pipeline).
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5556", labels: bool = False, *,
                 frames: bool = False, frame_interval_s: float = 0.2, frame_max_side: int = 512,
                 count_threshold: int | None = None, leave_after: int = 3,
                 grow_ratio: float = 1.5, shrink_ratio: float = 0.67, sndhwm: int = 100,
                 context: zmq.Context | None = None):
        if endpoint.startswith("tcp://") and endpoint.endswith(":0"):
            endpoint = endpoint[:-2] + ":*"
        self.labels = labels
        self.frames = frames
        self.frame_interval_s = float(frame_interval_s)
        self.frame_max_side = int(frame_max_side)
        self._next_frame_at = 0.0
        self.frames_sent = 0
        self.events = EventDetector(count_threshold=count_threshold, leave_after=leave_after,
                                    grow_ratio=grow_ratio, shrink_ratio=shrink_ratio)
        self._sock = (context or zmq.Context.instance()).socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        if not is_loopback(endpoint):
            log.warning("results feed on %s: reachable from the network", endpoint)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(0)
            raise ValueError(f"cannot bind the results feed to {endpoint}: {exc}") from None
        self.endpoint = bound_endpoint(self._sock)
        self.sent = 0
        self.subscriptions = 0
        self._series: int | None = None
        self._pixel_size: float | None = None

    def wait_for_subscriber(self, timeout_s: float = 5.0) -> bool:
        """Block until a subscriber has subscribed (PUB drops what is sent before that)."""
        deadline = time.monotonic() + timeout_s
        while self.subscriptions == 0 and time.monotonic() < deadline:
            self._drain_subscriptions(timeout_ms=50)
        return self.subscriptions > 0

    def _drain_subscriptions(self, timeout_ms: int = 0) -> None:
        while self._sock.poll(timeout_ms, zmq.POLLIN):
            msg = self._sock.recv()
            if msg[:1] == b"\x01":
                self.subscriptions += 1
            timeout_ms = 0

    # -- sink API ----------------------------------------------------------------------------
    def series_start(self, event) -> None:
        self._series = event.series
        self._pixel_size = event.meta.get("pixel_size_nm")
        self.events.reset()

    def write(self, result) -> None:
        self._drain_subscriptions()
        frame = result.frame
        table = result.table or {}
        ids = np.asarray(table.get("particle", np.full(len(table.get("x", ())), -1)))
        areas = table.get("area")
        events = self.events(frame.index, ids, None if areas is None else np.asarray(areas))
        now = time.time()
        columns = {}
        for key, col in table.items():
            arr = np.asarray(col)
            if arr.ndim == 1 and arr.dtype.kind in "fiub":
                columns[key] = [_number(v) for v in arr.tolist()] if arr.dtype.kind == "f" \
                    else arr.tolist()
        stamps = result.stamps or {}
        latency = None
        if "link" in stamps and "received" in stamps:
            latency = round(1e3 * (time.perf_counter() - stamps["received"]), 3)
        header = {
            "schema": SCHEMA, "series": frame.series, "frame": frame.index,
            "timestamp": _number(frame.timestamp), "receive_time": frame.receive_time,
            "publish_time": now, "latency_ms": latency,
            "n_particles": len(ids),
            "pixel_size_nm": frame.meta.get("pixel_size_nm", self._pixel_size),
            "particles": columns, "events": events,
        }
        image = getattr(result, "display", None)  # the denoised frame, where there is one
        image = frame.image if image is None else image
        if image is not None:
            header["shape"] = list(image.shape[:2])
        payload = []
        reg = result.registration
        if reg is not None:
            header["registration"] = {"shift_x": _number(reg.shift_x),
                                      "shift_y": _number(reg.shift_y), "jump": bool(reg.jump),
                                      "quality": reg.quality}
        labels = result.labels
        if self.labels and labels is not None:
            labels = np.ascontiguousarray(labels, dtype=np.int32)
            header["labels"] = {"shape": list(labels.shape), "dtype": "<i4"}
            payload.append(labels)
        mono = time.monotonic()
        if self.frames and image is not None and mono >= self._next_frame_at:
            self._next_frame_at = mono + self.frame_interval_s
            binned, factor = bin_frame(image, self.frame_max_side)
            header["image"] = {"shape": list(binned.shape), "dtype": binned.dtype.str,
                               "binning": factor}
            payload.append(binned)
            self.frames_sent += 1
        parts = [TOPIC_FRAME, json.dumps(header).encode(), *payload]
        try:
            self._sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
            self.sent += 1
        except zmq.Again:  # PUB-like: never block the pipeline
            pass

    def dropped(self, row: dict) -> None:
        pass

    def close(self, summary) -> None:
        d = summary.as_dict() if hasattr(summary, "as_dict") else dict(summary or {})
        try:
            self._sock.send_multipart([TOPIC_SUMMARY, json.dumps(
                {"schema": SCHEMA, "summary": d}, default=str).encode()], flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        self._sock.close(linger=200)
