"""The pipeline runner: threads, bounded queues, timing, frame accounting and shutdown.

Three threads move frames along::

    ingest  --[compute queue]-->  compute (preprocess, denoise, segment)
            --[link queue]----->  instances, register, link + sinks (recorder, results feed,
                                  display)

so on two cores the segmentation of frame n+1 runs beside the instances and linking of frame n.

Stages know nothing of threads; the runner calls them. Under the ``live`` flow policy a full
compute queue drops its *oldest* frame (counted, reason ``queue-full``); under ``lossless`` the
ingest thread blocks, which back-pressures the sender (PUSH/PULL). Every frame index seen ends
exactly once as processed or dropped with a reason, and gaps in the detector's numbering are
recorded as dropped with reason ``gap``, one row per run of missing indices (its ``count``
column says how many). A frame whose index is not above every index already accounted for in
its series (late or repeated) is ignored and counted in ``RunSummary.anomalies``, so each index
has exactly one row. An exception in any stage stops the run and is re-raised
from :meth:`Runner.run` as :class:`StageError` with the frame index.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from temstream.pipeline.stages import synthetic_particles
from temstream.stream.events import STAGES, Frame, LostFrame, SeriesEnd, SeriesStart
from temstream.stream.limits import MAX_PIXELS, fits_budget

log = logging.getLogger(__name__)

_POLL_S = 0.1


class StageError(RuntimeError):
    """A stage raised; ``stage`` and ``frame`` say where."""

    def __init__(self, stage: str, frame: int | None, cause: BaseException):
        where = f" on frame {frame}" if frame is not None else ""
        super().__init__(f"stage '{stage}' failed{where}: {type(cause).__name__}: {cause}")
        self.stage, self.frame, self.cause = stage, frame, cause


class Source(Protocol):
    """Where frames come from (:mod:`temstream.stream.sources`)."""

    @property
    def malformed(self) -> dict[str, int]:
        """Messages skipped as malformed, per kind."""

    def receive(self, timeout_ms: int = 100) -> Frame | LostFrame | SeriesStart | SeriesEnd | None:
        """The next event, or None after ``timeout_ms`` without one."""

    def close(self) -> None: ...


class InstanceStage(Protocol):
    """Class probabilities (C, H, W) and the raw frame -> labels (H, W) and a particle table
    (two-layer models: and the per-layer labels (L, H, W), a third item)."""

    def __call__(self, probabilities: np.ndarray,
                 frame: np.ndarray | None = None) -> tuple: ...


class RegisterStage(Protocol):
    """Raw frame and particle table -> the frame's registration (``shift_x``, ``shift_y``,
    ``jump``, ``quality``; :class:`temstream.tracking.registration.Registration`); may add
    registered coordinates to the table. Stateful across frames."""

    def __call__(self, frame: np.ndarray, table: dict, index: int | None = None) -> Any:
        """``index``: the detector's frame index (frames dropped before this stage count)."""

    def reset(self) -> None:
        """Forget the movie (a new series begins)."""


class LinkStage(Protocol):
    """Particle table -> track ids (N,); stateful across frames."""

    search_range: float  # the search range in use (px)
    automatic: bool  # the search range follows the data
    def __call__(self, table: dict, frame: int | None = None, *, bridge: bool | str = False,
                 view: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """``frame``: the detector's index; ``bridge``: the frame's quality flags ("" or False
        for a good frame); ``view``: the field of view in registered coordinates."""

    def reset(self) -> None:
        """Forget the tracks (a new series begins)."""

    def warm_up(self, table: dict) -> None:
        """Compile what linking ``table`` needs, leaving this stage's tracks untouched."""

    def summary(self) -> dict:
        """How it linked (the search range it settled on, ...), for the run summary."""


class Sink(Protocol):
    """Receives results in frame order. All methods are called from the link thread."""

    def series_start(self, event: SeriesStart) -> None: ...

    def write(self, result: FrameResult) -> None: ...

    def dropped(self, row: dict) -> None: ...

    def close(self, summary: RunSummary) -> None: ...


def dropped_row(series: int, index: int, reason: str, *, receive_time: float,
                timestamp: float | None = None, count: int = 1) -> dict:
    """The ``/frames_info`` row of a frame index (or a run of indices) that was not processed.

    Parameters
    ----------
    series, index : int
        The detector's series and frame index (the first of the run).
    count : int
        How many consecutive indices from ``index`` on the row stands for (a gap in the
        detector's numbering is one row, whatever its length).
    reason : str
        ``queue-full``, ``gap``, ``decode-error``, ``error``, ...
    receive_time : float
        ``time.time()`` when it was received (or noticed missing).
    timestamp : float, optional
        The detector's timestamp, seconds.
    """
    return {"frame": index, "series": series, "status": "dropped", "reason": reason,
            "timestamp": _nan(timestamp), "receive_time": receive_time, "n_particles": 0,
            "count": count}


@dataclass
class FrameResult:
    """Everything the pipeline knows about one processed frame."""

    frame: Frame
    image: np.ndarray | None = None  # preprocessed input of the segmenter
    display: np.ndarray | None = None  # what the dashboard shows: the denoised frame, if any
    probabilities: np.ndarray | None = None  # (C, H, W) float32
    labels: np.ndarray | None = None  # (H, W) int32 instance labels
    table: dict[str, np.ndarray] = field(default_factory=dict)  # one row per particle
    layer_labels: np.ndarray | None = None  # (L, H, W) int32, two-layer models
    stamps: dict[str, float] = field(default_factory=dict)  # perf_counter after each stage
    registration: Any = None  # the register stage's answer (shift, jump, quality)
    search_range: float = float("nan")  # px, what the link stage used

    @property
    def index(self) -> int:
        return self.frame.index

    def info_row(self) -> dict:
        """The ``/frames_info`` row of this frame (durations in ms)."""
        s = self.stamps
        order = ["received", *STAGES]
        row = {"frame": self.index, "series": self.frame.series, "status": "processed",
               "reason": "", "timestamp": _nan(self.frame.timestamp),
               "receive_time": self.frame.receive_time,
               "n_particles": len(self.table.get("x", ()))}
        # each stage from its own start: the waits in the two queues are columns of their own
        starts = {"preprocess": "dequeued", "instances": "link_dequeued"}
        for prev, name in zip(order, order[1:]):
            row[f"{name}_ms"] = 1e3 * (s.get(name, np.nan) - s.get(starts.get(name, prev), np.nan))
        row["queue_ms"] = 1e3 * (s.get("dequeued", np.nan) - s["received"])
        row["link_queue_ms"] = 1e3 * (s.get("link_dequeued", np.nan) - s.get("segment", np.nan))
        row["latency_ms"] = 1e3 * (s.get("link", np.nan) - s["received"])
        reg = self.registration
        if reg is not None:
            row.update(shift_x=reg.shift_x, shift_y=reg.shift_y, jump=int(reg.jump),
                       quality=reg.quality)
        row["search_range"] = self.search_range
        return row


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)


@dataclass
class RunSummary:
    """Totals of a run; printed by the CLI and stored in the recording."""

    received: int = 0
    processed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0  # from the first frame received to the end of the run
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    particles: list[int] = field(default_factory=list, repr=False)
    tracks: int = 0
    series: list[int] = field(default_factory=list)
    stopped_by: str = ""
    bad_frames: dict[str, int] = field(default_factory=dict)  # quality flag -> frames
    jumps: int = 0  # stage jumps registered
    tracking: dict = field(default_factory=dict)  # the link stage's summary (search range)
    #: valid messages that were handled specially, by kind: ``late-or-repeated`` frames
    #: (ignored), ``non-finite-pixels`` (replaced), ``bad-metadata`` fields (dropped)...
    anomalies: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def as_dict(self) -> dict:
        return {
            "received": self.received, "processed": self.processed,
            "dropped": dict(self.dropped), "dropped_total": sum(self.dropped.values()),
            "malformed": dict(self.malformed), "elapsed_s": round(self.elapsed_s, 3),
            "fps": round(self.fps, 2), "latency_p50_ms": round(self.latency_ms(50), 2),
            "latency_p99_ms": round(self.latency_ms(99), 2),
            "particles_per_frame": round(float(np.mean(self.particles)), 2)
            if self.particles else 0.0,
            "tracks": self.tracks, "series": list(self.series), "stopped_by": self.stopped_by,
            "bad_frames": dict(self.bad_frames), "jumps": self.jumps,
            "tracking": dict(self.tracking), "anomalies": dict(self.anomalies),
        }

    def format_offline(self, took_s: float) -> str:
        """The summary of an offline run (``process``): frames, particles, tracks, time."""
        d = self.as_dict()
        drops = ", ".join(f"{k} {v}" for k, v in d["dropped"].items())
        n = max(1, self.processed)
        return "\n".join([
            f"frames processed  {d['processed']}" + (f" (not processed: {drops})"
                                                      if drops else ""),
            f"particles         {sum(self.particles)} ({d['particles_per_frame']:.1f} per "
            "frame)",
            f"tracks            {d['tracks']}",
            f"time              {took_s:.1f} s, {1e3 * took_s / n:.1f} ms per frame",
        ] + self._anomaly_lines())

    def _anomaly_lines(self) -> list[str]:
        if not self.anomalies:
            return []
        return ["handled           " + ", ".join(f"{k} {v}" for k, v in self.anomalies.items())]

    def format(self) -> str:
        d = self.as_dict()
        drops = ", ".join(f"{k} {v}" for k, v in d["dropped"].items()) or "none"
        bad = ", ".join(f"{k} {v}" for k, v in d["malformed"].items()) or "none"
        return "\n".join([
            f"frames received   {d['received']}",
            f"frames processed  {d['processed']}",
            f"frames dropped    {d['dropped_total']} ({drops})",
            f"malformed msgs    {bad}",
            f"throughput        {d['fps']:.1f} frames/s over {d['elapsed_s']:.1f} s",
            (f"latency           p50 {d['latency_p50_ms']:.1f} ms, "
             f"p99 {d['latency_p99_ms']:.1f} ms" if self.latencies_ms else
             "latency           - (no frame processed)"),
            f"particles/frame   {d['particles_per_frame']:.1f}",
            f"tracks            {d['tracks']}",
            *self._tracking_lines(),
        ] + self._anomaly_lines())

    def _tracking_lines(self) -> list[str]:
        lines = []
        t = self.tracking
        if t.get("search_range") == "automatic" and not t.get("frame_pairs"):
            lines.append("search range      automatic (no two frames linked)")
        elif t.get("search_range") == "automatic":
            lines.append(f"search range      automatic: {t['search_range_px']:.1f} px at the "
                         f"end ({t['low_px']:.1f}-{t['high_px']:.1f} px over the run; "
                         f"steps sigma {t['sigma_px']:.1f} px, 98 % below "
                         f"{t['d98_px']:.1f} px, spacing {t['spacing_px']:.1f} px)")
        elif t.get("search_range") == "set":
            lines.append(f"search range      {t['search_range_px']:.1f} px (set)")
        if self.bad_frames or self.jumps:
            bad = ", ".join(f"{k} {v}" for k, v in sorted(self.bad_frames.items())) or "none"
            lines.append(f"bad frames        {bad} (bridged); stage jumps {self.jumps}")
        return lines


class _FrameQueue:
    """A bounded FIFO that can drop its oldest frame (``live``) or block (``lossless``).

    Control items (series boundaries, the end marker) are never dropped.
    """

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item, *, drop_oldest: bool, stop: threading.Event | None = None) -> Any:
        """Add ``item``; returns a dropped frame item (live) or None.

        ``stop=None`` appends even when full (for the end marker, which must never block).
        """
        with self._cond:
            while stop is not None and len(self._items) >= self.maxsize:
                if drop_oldest:
                    for i, old in enumerate(self._items):
                        if isinstance(old, FrameResult):
                            del self._items[i]
                            self._items.append(item)
                            self._cond.notify()
                            return old
                if stop.is_set() and not drop_oldest:
                    break  # shutting down: let the item through so nothing is lost silently
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self._cond.notify()
            return None

    def get(self, timeout: float) -> Any:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                raise TimeoutError
            item = self._items.popleft()
            self._cond.notify()
            return item


_END = object()  # end-of-stream marker travelling behind the last frame


class Runner:
    """Run a source through the stages into the sinks.

    Parameters
    ----------
    source : Source
        Yields frames and series boundaries (:mod:`temstream.stream.sources`).
    preprocess : callable (H, W) -> (H, W)
    segment : callable (H, W) -> (C, H, W) float32 probabilities
    instances : InstanceStage
        (probabilities, raw frame) -> (labels (H, W) int32, table dict)
    link : LinkStage
        table -> ids (N,) int64, with ``reset`` and ``warm_up``
    register : RegisterStage, optional
        (raw frame, table) -> registration (shift, jump, quality), run after the instances
        in the link thread; its bad frames are bridged by the link stage. None: no
        registration (``register_ms`` is then 0).
    denoise : callable (H, W) -> (H, W) float32, optional
        After preprocess, with ``reset()`` (a new series) and ``apply`` (``"segment"``: the
        segmenter and the instance stage's contrast tests see its output; ``"display"``: only
        the dashboard and results feed do; registration and the recording always take the
        raw frame): :class:`~temstream.pipeline.stages.Denoise`. None: off (``denoise_ms``
        is then 0).
    sinks : list of Sink

    Attributes
    ----------
    preprocess, denoise, segment, instances, register, link
        The stages, by name (:data:`~temstream.stream.events.STAGES`); replace them only
        before :meth:`run`. Settings that change while frames flow go through the stages'
        own methods (``instances.update``, ``link.set_search_range``).
    flow : {"live", "lossless"}
    queue_size : int
        Frames the compute queue holds.
    max_frames : int
        Stop after this many frames were received (0 = no limit).
    stop_at_series_end : bool
        Stop when a series ends (else wait for the next series).
    idle_timeout_s : float
        Stop when no message arrived for this long (0 = wait forever).
    """

    def __init__(self, source: Source, *, preprocess: Callable, segment: Callable,
                 instances: InstanceStage, link: LinkStage, sinks: list | None = None,
                 register: RegisterStage | None = None, denoise: Callable | None = None,
                 flow: str = "live", queue_size: int = 4, max_frames: int = 0,
                 stop_at_series_end: bool = True, idle_timeout_s: float = 0.0):
        if flow not in ("live", "lossless"):
            raise ValueError(f"flow must be 'live' or 'lossless', got {flow!r}")
        self.source = source
        self.preprocess = preprocess
        self.denoise = denoise
        self.segment = segment
        self.instances = instances
        self.register = register
        self.link = link
        self.sinks = list(sinks or [])
        self.flow = flow
        self.max_frames = max_frames
        self.stop_at_series_end = stop_at_series_end
        self.idle_timeout_s = idle_timeout_s
        self.compute_q = _FrameQueue(queue_size)
        self.link_q = _FrameQueue(max(2, queue_size))
        self.summary = RunSummary()
        self._stop = threading.Event()
        self._errors: list[StageError] = []
        self._lock = threading.Lock()
        self._pending_drops: collections.deque = collections.deque()
        self._last_index: dict[int, int] = {}
        self._track_ids: set[int] = set()
        self._t_first: float | None = None
        self._warm: set[tuple] = set()
        self._warm_pending: collections.deque = collections.deque()  # compute -> link thread
        self._prepared = False

    # -- control -------------------------------------------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to finish: ingest stops, queued frames are still processed."""
        if not self.summary.stopped_by:
            self.summary.stopped_by = reason
        self._stop.set()

    def warm_up(self, shape: tuple[int, int], dtype=np.uint16) -> float:
        """Run the compute stages once on a blank frame, before the first real one.

        A network compiled with ``torch.compile`` (``segment.compile``), an ONNX Runtime
        session or a CUDA graph is built on the first frame of each size, which can take
        seconds; a live run would drop the frames that arrive meanwhile. The numba kernels
        that measure and link particles compile (or load from their cache) on first use, so
        the instance stage also runs on probabilities with a few synthetic particles, and
        ``link.warm_up(table)``, where the link stage has one, links them on a throwaway
        linker (a cold cache after an install cost the demo 50 of its first 60 frames).
        Nothing reaches the sinks and no track is started. Called by :meth:`prepare` and by
        ``demo``; when a series start announces a new frame size (``shape``, or
        ``height``/``width`` from a DECTRIS start message) the compute thread warms its own
        stages and the link thread the rest, each in its own thread.

        Parameters
        ----------
        shape : (int, int)
            Frame height and width, pixels.
        dtype : numpy dtype
            Frame dtype.

        Returns
        -------
        float
            Seconds it took.
        """
        key = (int(shape[0]), int(shape[1]), np.dtype(dtype).str)
        t0 = time.perf_counter()
        frame, probabilities = self._warm_segment(key)
        self._warm_measure(frame, probabilities)
        self._warm.add(key)
        took = time.perf_counter() - t0
        log.info("compute stages warmed up for %dx%d %s frames in %.2f s", key[0], key[1],
                 np.dtype(dtype).name, took)
        return took

    def _warm_segment(self, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        """The compute thread's part of a warm-up: a blank frame of ``key`` (h, w, dtype)
        through preprocess, denoise and segment; returns (frame, probabilities)."""
        frame = np.zeros(key[:2], np.dtype(key[2]))
        image = self.preprocess(frame)
        if self.denoise is not None:
            denoised = self.denoise(image)
            self.denoise.reset()  # the blank frame is no part of the series
            if self.denoise.apply == "segment":
                image = denoised
        return frame, self.segment(image)

    def _warm_measure(self, frame: np.ndarray, probabilities: np.ndarray) -> None:
        """The link thread's part: the instance, link and register stages on the blank frame
        and on synthetic particles (their stateful parts are left as they were)."""
        self.instances(probabilities, frame)
        with_particles = synthetic_particles(probabilities)
        if with_particles is not None:
            table = self.instances(with_particles, frame)[1]
            self.link.warm_up(table)
            if self.register is not None:
                self.register(frame, dict(table))
                self.register(frame, dict(table))
                self.register.reset()

    def prepare(self, dtypes=(np.uint16, np.float32)) -> float:
        """Compile (or load from numba's cache) the kernels that measure and link particles,
        before the first frame is taken.

        The kernels do not depend on the frame size, so this needs no announcement: it runs
        the instance stage on a small frame's worth of synthetic particles (for each raw
        ``dtypes``) and ``link.warm_up`` on what it finds; the segmenter is not called (its
        per-size set-up is :meth:`warm_up`'s). :meth:`run` calls it before it starts taking
        frames, so a run that joins a series in the middle, without a start message, still
        compiles nothing on the live path. With a warm cache it takes milliseconds; an empty
        one (a fresh install) costs tens of seconds once, here, and not on live frames.

        Returns
        -------
        float
            Seconds it took.
        """
        if self._prepared:
            return 0.0
        t0 = time.perf_counter()
        classes = len(getattr(self.instances, "classes", ())) or 2  # a U-Net may have 3+
        blank = np.zeros((classes, 64, 64), np.float32)
        blank[0] = 1.0
        particles = synthetic_particles(blank)
        try:
            for dtype in dtypes:
                table = self.instances(particles, np.zeros((64, 64), np.dtype(dtype)))[1]
                warm = getattr(self.link, "warm_up", None)
                if warm is not None and len(table.get("x", ())):
                    warm(table)
        except Exception as exc:  # noqa: BLE001 - a stage that cannot take this runs live
            log.warning("could not prepare the particle kernels (%s): the first frames "
                        "compile them", exc)
        self._prepared = True
        took = time.perf_counter() - t0
        log.info("particle kernels ready in %.2f s", took)
        return took

    def _warm_up_for(self, meta: dict) -> tuple | None:
        """Warm up the compute stages for the frame size a series start announces (if it does,
        and is new); returns (blank frame, probabilities) for the link thread's part."""
        shape = meta.get("shape") or (meta.get("height"), meta.get("width"))
        try:
            h, w = (int(v) for v in shape)
            dtype = np.dtype(meta.get("dtype") or meta.get("image_dtype") or np.uint16)
        except (TypeError, ValueError):
            return None
        # the announcement comes from the network: only sizes and types a frame could have,
        # within the one MAX_PIXELS budget every allocation from wire sizes obeys
        if not (fits_budget(h, w) and dtype.kind in "uif" and dtype.itemsize <= 4):
            log.warning("series announces %r %s frames, beyond what a frame may be (%d px "
                        "at most): no warm-up", shape, dtype, MAX_PIXELS)
            return None
        key = (h, w, dtype.str)
        if key not in self._warm:
            self._warm.add(key)
            try:
                # the stages after segment run in the link thread, which may still be busy
                # with the last series: it warms them when it reaches this series' start
                return self._warm_segment(key)
            except Exception as exc:  # noqa: BLE001 - a real frame will tell, if it matters
                log.warning("warm-up on a blank %dx%d frame failed (%s); going on", h, w, exc)
        return None

    @property
    def queue_depths(self) -> dict[str, int]:
        """Items waiting in the compute and link queues."""
        return {"compute": len(self.compute_q), "link": len(self.link_q)}

    @property
    def backlog(self) -> float:
        """How full the compute queue is, 0 to 1: at 0.5 or more the pipeline is not keeping
        up with its input."""
        return len(self.compute_q) / self.compute_q.maxsize

    def _fail(self, stage: str, frame: int | None, exc: BaseException) -> None:
        log.debug("stage %s failed", stage, exc_info=exc)
        self._errors.append(StageError(stage, frame, exc))
        self.stop(f"error in {stage}")

    # -- accounting ----------------------------------------------------------------------
    def _drop(self, frame: Frame, reason: str) -> None:
        self._drop_row(dropped_row(frame.series, frame.index, reason,
                                   receive_time=frame.receive_time, timestamp=frame.timestamp))

    def _drop_row(self, row: dict) -> None:
        with self._lock:
            self.summary.dropped[row["reason"]] = (self.summary.dropped.get(row["reason"], 0)
                                                   + int(row.get("count", 1)))
        self._pending_drops.append(row)  # handed to the sinks by the link thread, in order

    def _note(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.summary.anomalies[kind] = self.summary.anomalies.get(kind, 0) + n

    def _check_gap(self, frame: Frame | LostFrame) -> bool:
        """Account the numbering up to ``frame``; False when it is late or repeated.

        "Exactly once" for out-of-order input: an index is accounted the first time it is
        seen or known to be missing, and the indices of a series are accounted in rising
        order. A frame whose index is not above the highest one already accounted in its
        series (a duplicate, or one that arrives after a later frame, or after its index was
        recorded in a gap) is ignored: no second row, counted as ``late-or-repeated``. A
        jump is one ``gap`` row with the number of missing indices in ``count`` (O(1), however
        far the numbering jumps).
        """
        last = self._last_index.get(frame.series)
        if last is not None and frame.index <= last:
            self._note("late-or-repeated")
            if self.summary.anomalies["late-or-repeated"] == 1:
                log.warning("frame %d of series %d arrived after frame %d (out of order or "
                            "repeated): ignored; further ones are only counted", frame.index,
                            frame.series, last)
            return False
        self._last_index[frame.series] = frame.index
        if last is not None and frame.index > last + 1:
            self._drop_row(dropped_row(frame.series, last + 1, "gap",
                                       receive_time=frame.receive_time,
                                       count=frame.index - last - 1))
        return True

    # -- threads -------------------------------------------------------------------------
    def _ingest(self) -> None:
        last_message = time.monotonic()
        received = 0
        try:
            while not self._stop.is_set():
                event = self.source.receive(timeout_ms=int(_POLL_S * 1000))
                if event is None:
                    if self.idle_timeout_s and time.monotonic() - last_message > self.idle_timeout_s:
                        self.stop("idle timeout")
                    continue
                last_message = time.monotonic()
                if isinstance(event, Frame):
                    if not received:
                        self._t_first = time.perf_counter()
                    received += 1
                    self.summary.received = received
                    if not self._check_gap(event):
                        continue
                    item = FrameResult(frame=event, stamps={"received": time.perf_counter()})
                    old = self.compute_q.put(item, drop_oldest=self.flow == "live",
                                             stop=self._stop)
                    if old is not None:
                        self._drop(old.frame, "queue-full")
                    if self.max_frames and received >= self.max_frames:
                        self.stop("frame limit")
                elif isinstance(event, LostFrame):
                    received += 1
                    self.summary.received = received
                    if not self._check_gap(event):
                        continue
                    self._drop_row(dropped_row(event.series, event.index, event.reason,
                                               receive_time=event.receive_time))
                elif isinstance(event, SeriesStart):
                    self.summary.series.append(event.series)
                    if not event.meta.get("synthetic"):
                        self._last_index.pop(event.series, None)  # numbering starts afresh
                    self.compute_q.put(event, drop_oldest=False, stop=self._stop)
                elif isinstance(event, SeriesEnd):
                    self.compute_q.put(event, drop_oldest=False, stop=self._stop)
                    if self.stop_at_series_end:
                        self.stop("end of series")
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            self._fail("ingest", None, exc)
        finally:
            self.compute_q.put(_END, drop_oldest=False)

    def _compute(self) -> None:
        item = None
        name = "compute"
        try:
            while True:
                try:
                    item = self.compute_q.get(_POLL_S)
                except TimeoutError:
                    if self._errors:
                        return
                    continue
                if isinstance(item, FrameResult):
                    if self._errors:
                        self._drop(item.frame, "error")
                        continue
                    s = item.stamps
                    s["dequeued"] = time.perf_counter()
                    name = "preprocess"
                    item.image = self.preprocess(item.frame.image)
                    s[name] = time.perf_counter()
                    name = "denoise"
                    if self.denoise is not None:
                        item.display = self.denoise(item.image)
                        if self.denoise.apply == "segment":
                            item.image = item.display
                    s[name] = time.perf_counter()
                    name = "segment"
                    item.probabilities = self.segment(item.image)
                    s[name] = time.perf_counter()
                elif isinstance(item, SeriesStart):
                    blank = self._warm_up_for(item.meta)
                    if blank is not None:
                        self._warm_pending.append(blank)  # measured by the link thread
                    if self.denoise is not None:
                        self.denoise.reset()  # frames of another series are no history
                # the instances, registration and linking of this frame run in the next thread,
                # beside the segmentation of the next frame (two cores both busy)
                self.link_q.put(item, drop_oldest=False, stop=self._stop)
                if item is _END:
                    return
        except BaseException as exc:  # noqa: BLE001
            frame = item.index if isinstance(item, FrameResult) else None
            self._fail(name, frame, exc)
            if isinstance(item, FrameResult):
                self._drop(item.frame, "error")
            self.link_q.put(_END, drop_oldest=False)

    def _flush_drops(self) -> None:
        while self._pending_drops:
            row = self._pending_drops.popleft()
            for sink in self.sinks:
                sink.dropped(row)

    def _measure(self, item: FrameResult) -> None:
        """The instance and register stages of one segmented frame (the link thread)."""
        s = item.stamps
        raw = item.frame.image
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raw = item.image  # the segmenter's input: NaN/inf pixels replaced
        if item.display is not None and self.denoise.apply == "segment":
            # the contrast tests weigh what was segmented: at 0.5 counts/px the raw frame
            # shows no particle (docs/eval_denoise.md, F1 0.16 vs 0.60)
            raw = item.display
        out = self.instances(item.probabilities, raw)
        item.labels, item.table = out[0], out[1]
        item.layer_labels = out[2] if len(out) > 2 else None
        s["instances"] = time.perf_counter()
        if self.register is not None:
            item.registration = self.register(item.frame.image, item.table, item.index)
        s["register"] = time.perf_counter()

    def _warm_measure_safely(self, frame: np.ndarray, probabilities: np.ndarray) -> None:
        try:
            self._warm_measure(frame, probabilities)
        except Exception as exc:  # noqa: BLE001 - a real frame will tell, if it matters
            log.warning("warm-up of the particle stages failed (%s); going on", exc)

    def _link_and_sink(self) -> None:
        item = None
        stage = "link"
        try:
            while True:
                try:
                    item = self.link_q.get(_POLL_S)
                except TimeoutError:
                    self._flush_drops()
                    continue
                self._flush_drops()
                if item is _END:
                    return
                if isinstance(item, SeriesStart):
                    while self._warm_pending:
                        self._warm_measure_safely(*self._warm_pending.popleft())
                    if self.summary.processed:
                        self.link.reset()  # tracks never continue across series
                    if self.register is not None:
                        self.register.reset()  # a new series: its first frame is the origin
                    for sink in self.sinks:
                        sink.series_start(item)
                    continue
                if isinstance(item, SeriesEnd):
                    continue
                # frames that reach this queue were segmented before any failing frame (the
                # queue keeps order), so they are still measured, linked and recorded
                item.stamps["link_dequeued"] = time.perf_counter()
                stage = "instances"
                self._measure(item)
                stage = "link"
                reg = item.registration
                h, w = item.frame.image.shape[:2]
                sx, sy = (reg.shift_x, reg.shift_y) if reg is not None else (0.0, 0.0)
                ids = self.link(item.table, item.index,
                                bridge=reg.quality if reg is not None else False,
                                view=(-sx, -sy, w - sx, h - sy))
                ids = np.asarray(ids, dtype=np.int64)
                item.table["particle"] = ids
                item.search_range = float(self.link.search_range)
                item.stamps["link"] = time.perf_counter()
                stage = "sinks"
                for sink in self.sinks:
                    sink.write(item)
                self._track_ids.update(ids[ids >= 0].tolist())
                self.summary.processed += 1
                self.summary.latencies_ms.append(
                    1e3 * (item.stamps["link"] - item.stamps["received"]))
                self.summary.particles.append(len(ids))
                if reg is not None:
                    for flag in filter(None, reg.quality.split(",")):
                        self.summary.bad_frames[flag] = self.summary.bad_frames.get(flag, 0) + 1
                    self.summary.jumps += int(reg.jump)
        except BaseException as exc:  # noqa: BLE001
            frame = item.index if isinstance(item, FrameResult) else None
            self._fail(stage, frame, exc)
            if isinstance(item, FrameResult) and stage != "sinks":
                self._drop(item.frame, "error")  # never written: accounted as dropped
        finally:
            self._flush_drops()

    def run(self) -> RunSummary:
        """Run until the end of the series, the frame limit, :meth:`stop` or an error.

        Returns
        -------
        RunSummary

        Raises
        ------
        StageError
            If a stage raised; the recording (sinks) is closed first.
        """
        self.prepare()  # nothing compiles once frames are taken
        threads = [threading.Thread(target=fn, name=f"temstream-{name}", daemon=True)
                   for name, fn in (("ingest", self._ingest), ("compute", self._compute),
                                    ("link", self._link_and_sink))]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(_POLL_S)  # short joins keep signal handlers responsive
        except KeyboardInterrupt:
            self.stop("interrupted")
            for t in threads:
                t.join(30)
        # waiting for the detector to start is not processing time
        self.summary.elapsed_s = time.perf_counter() - (self._t_first or t0)
        self.summary.tracks = len(self._track_ids)
        self.summary.tracking = dict(self.link.summary())
        self.summary.malformed = dict(self.source.malformed)
        nonfinite = getattr(self.preprocess, "nonfinite_frames", 0)
        if nonfinite:
            self._note("non-finite-pixels", nonfinite)
        for kind, n in getattr(self.source, "anomalies", {}).items():
            self._note(kind, n)
        # frames still queued after an error never reached a sink: account for them now
        for q in (self.compute_q, self.link_q):
            while True:
                try:
                    item = q.get(0)
                except TimeoutError:
                    break
                if isinstance(item, FrameResult):
                    self._drop(item.frame, "error")
        close_errors = []
        for sink in self.sinks:
            try:
                self._flush_drops_to(sink)
                sink.close(self.summary)
            except Exception as exc:  # noqa: BLE001
                close_errors.append(exc)
        self.source.close()
        if self._errors:
            raise self._errors[0]
        if close_errors:
            raise StageError("sinks", None, close_errors[0])
        return self.summary

    def _flush_drops_to(self, sink) -> None:
        for row in list(self._pending_drops):
            sink.dropped(row)
        if sink is self.sinks[-1]:
            self._pending_drops.clear()
