"""The hand-over between the pipeline and the dashboard (Qt-free).

:class:`DisplaySink` is a pipeline sink. Its :meth:`~DisplaySink.write`, called from the runner's
link thread, only swaps references under a lock: the latest frame goes into a latest-only slot,
the frame's small particle table into a bounded deque (the dashboard needs every frame's
positions for tails and MSD, but never more than ``history`` of them), and a few counters are
bumped. It never waits on the GUI. The GUI thread calls :meth:`~DisplaySink.take` on a timer.
Changes the dashboard makes to the pipeline go through the stages' own methods
(:mod:`temstream.gui.control`).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: particle-table columns the dashboard uses (others stay with the pipeline)
DISPLAY_COLUMNS = ("particle", "x", "y", "area", "angle", "layer")


@dataclass
class DisplayFrame:
    """What the dashboard shows of one processed frame.

    Attributes
    ----------
    index : int
        Detector frame index.
    series : int
    image : (H, W) ndarray or None
        Raw frame (None when the source sends no pixels, e.g. the results feed).
    labels : (H, W) integer ndarray or None
        Instance labels, 0 = background.
    table : dict of 1-D ndarray
        ``particle``, ``x``, ``y``, ``area``, ``angle``, ``layer`` (where present).
    latency_ms : float
        Receive -> linked.
    shift : (float, float) or None
        The registration's shift of the field since the series' first frame (x, y px), or
        None where nothing registered it.
    quality : str
        ``""`` for a good frame, else its flags (``"blurred"``, ...): the linker bridged it.
    jump : bool
        The registration saw a stage jump here.
    layer_labels : (L, H, W) integer ndarray or None
        Two-layer models: each layer's instance labels.
    """

    index: int
    series: int = 0
    image: np.ndarray | None = None
    labels: np.ndarray | None = None
    table: dict[str, np.ndarray] = field(default_factory=dict)
    latency_ms: float = float("nan")
    shift: tuple[float, float] | None = None
    quality: str = ""
    jump: bool = False
    layer_labels: np.ndarray | None = None

    @classmethod
    def from_result(cls, result: Any) -> DisplayFrame:
        """From a pipeline ``FrameResult`` (references only, nothing copied)."""
        t = result.table
        s = result.stamps
        latency = 1e3 * (s["link"] - s["received"]) if "link" in s and "received" in s \
            else float("nan")
        reg = getattr(result, "registration", None)
        extra = {} if reg is None else {"shift": (reg.shift_x, reg.shift_y),
                                        "quality": reg.quality, "jump": bool(reg.jump)}
        return cls(index=result.frame.index, series=result.frame.series,
                   image=result.frame.image if getattr(result, "display", None) is None
                   else result.display, labels=result.labels,
                   table={k: t[k] for k in DISPLAY_COLUMNS if k in t}, latency_ms=latency,
                   layer_labels=getattr(result, "layer_labels", None), **extra)


@dataclass
class Take:
    """What :meth:`DisplaySink.take` hands to the GUI thread.

    Attributes
    ----------
    latest : DisplayFrame or None
        The newest frame when it changed since the last take, else None.
    tables : list of (frame, series, table)
        Every frame's particle table since the last take, oldest first (bounded).
    processed : int
    dropped : dict
        The pipeline's drop counts by reason.
    skipped : int
        Particle tables the GUI did not take in time (display only; the pipeline has them).
    latencies_ms : list of float
        Latencies of the most recent frames.
    meta : dict
        Series metadata (``pixel_size_nm``, ``frame_time_s``, ...).
    series : int or None
    new_series : bool
        A series started since the last take.
    closed : bool
        The pipeline ended (``summary`` is set).
    registration : list of (frame, shift_x, shift_y, quality, jump)
        Every registered frame since the last take, oldest first (bounded like ``tables``).
    """

    latest: DisplayFrame | None
    tables: list
    processed: int
    dropped: dict
    skipped: int
    latencies_ms: list
    meta: dict
    series: int | None
    new_series: bool
    closed: bool
    summary: Any = None
    registration: list = field(default_factory=list)


class DisplaySink:
    """Latest-only pipeline sink for the dashboard.

    Parameters
    ----------
    history : int
        Particle tables kept for the GUI between two takes (older ones are skipped and
        counted in :attr:`Take.skipped`).
    latency_window : int
        Latencies kept for the p50/p99 readout.
    """

    def __init__(self, history: int = 512, latency_window: int = 2048):
        self._lock = threading.Lock()
        self._latest: DisplayFrame | None = None
        self._fresh = False
        self._tables: collections.deque = collections.deque(maxlen=history)
        self._registration: collections.deque = collections.deque(maxlen=history)
        self._latencies: collections.deque = collections.deque(maxlen=latency_window)
        self._processed = 0
        self._dropped: dict[str, int] = {}
        self._backlog = 0
        self._meta: dict = {}
        self._series: int | None = None
        self._new_series = False
        self._closed = False
        self._summary = None

    # -- pipeline side (link thread) -------------------------------------------------------
    def series_start(self, event) -> None:
        with self._lock:
            self._meta = dict(event.meta)
            self._series = event.series
            self._new_series = True

    def write(self, result) -> None:
        """Keep ``result`` as the latest frame; O(1), never blocks on the GUI."""
        self.push(DisplayFrame.from_result(result))

    def push(self, frame: DisplayFrame) -> None:
        """Hand over one frame (used by :meth:`write` and by the results-feed subscriber)."""
        with self._lock:
            if len(self._tables) == self._tables.maxlen:
                self._backlog += 1
            self._tables.append((frame.index, frame.series, frame.table))
            if frame.shift is not None or frame.quality:
                shift = frame.shift if frame.shift is not None else (np.nan, np.nan)
                self._registration.append((frame.index, float(shift[0]), float(shift[1]),
                                           frame.quality, frame.jump))
            self._latest = frame
            self._fresh = True
            self._processed += 1
            self._latencies.append(frame.latency_ms)

    def dropped(self, row: dict) -> None:
        reason = str(row.get("reason") or "unknown")
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def set_series(self, series: int, meta: dict) -> None:
        """Announce a series (the subscriber's equivalent of :meth:`series_start`)."""
        with self._lock:
            self._meta = dict(meta)
            self._series = series
            self._new_series = True

    def update_meta(self, meta: dict) -> None:
        """Merge series metadata (pixel size, frame time) without starting a new series."""
        with self._lock:
            self._meta = {**self._meta, **meta}

    def set_dropped(self, counts: dict) -> None:
        """Replace the drop counts by reason (a results feed reports totals)."""
        with self._lock:
            self._dropped = {str(k): int(v) for k, v in counts.items()}

    def close(self, summary=None) -> None:
        with self._lock:
            self._closed = True
            self._summary = summary

    # -- GUI side ---------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def processed(self) -> int:
        return self._processed

    def take(self) -> Take:
        """Everything new since the last call (called by the GUI thread at display rate)."""
        with self._lock:
            latest = self._latest if self._fresh else None
            self._fresh = False
            tables = list(self._tables)
            self._tables.clear()
            registration = list(self._registration)
            self._registration.clear()
            dropped = dict(self._dropped)
            new_series, self._new_series = self._new_series, False
            return Take(latest=latest, tables=tables, processed=self._processed,
                        dropped=dropped, skipped=self._backlog, latencies_ms=list(self._latencies),
                        meta=dict(self._meta), series=self._series, new_series=new_series,
                        closed=self._closed, summary=self._summary, registration=registration)
