"""The dashboard window: pulls the latest result from a :class:`DisplaySink` on a timer.

Nothing here runs outside the GUI thread. Each tick (``fps`` per second) :meth:`Dashboard.refresh`
takes what the sink collected, feeds every particle table into the Qt-free models (tails, MSD,
sizes, counts) and redraws the latest frame only. Side plots and the health text are redrawn at a
few hertz. Display levels are fixed and recomputed from percentiles once a second (or on ``A``),
never per frame.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from temstream.gui.bridge import DisplayFrame, DisplaySink, Take
from temstream.gui.control import NoControl
from temstream.gui.toolbar import ControlBar
from temstream.gui.accumulators import (FrameTracks, LayerSeries, MSDAccumulator, SeriesBuffer,
                                        ShiftTrace, TrackHistory)
from temstream.gui.panels import HealthPanel, LayerPanels, StatsPanels
from temstream.gui.render import (label_indices, label_outlines, layer_indices, layer_lut,
                                  to_display_uint8)
from temstream.gui.stats import (RateMeter, SizeWindow, latency_percentiles,
                                 percentile_levels)
from temstream.gui.view import FrameView

log = logging.getLogger(__name__)

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

PANEL_PERIOD_S = 0.5  # health text, status line, and side plots (these every PLOT_PERIODS)
PLOT_PERIODS = 2  # side plots every 1 s; x3 while the pipeline is behind
LEVELS_PERIOD_S = 1.0  # continuous auto-contrast
MSD_MAX_LAG = 50
BEHIND_FPS = 2.0  # display rate while the pipeline has a backlog (the display yields CPU)


def feed_missing_message(missing) -> str:
    """What the dashboard says when a results feed lacks frames and/or labels ("" when not)."""
    missing = tuple(missing or ())
    if not missing:
        return ""
    keys = " ".join(f"results.{m}=true" for m in missing)
    what = " and no ".join("frame" if m == "frames" else "labels" for m in missing)
    return (f"The results feed carries no {what}:\nstart the pipeline with {keys} to see "
            f"{'them' if len(missing) > 1 else 'it'} here.")


class Dashboard(QtWidgets.QMainWindow):
    """Live view of a pipeline.

    Parameters
    ----------
    sink : DisplaySink
        Where the pipeline (or a results-feed subscriber) leaves its results.
    control : PipelineControl or NoControl
        What can be changed in the pipeline.
    fps : float
        Display refresh rate (frames/s).
    tail_length : int
        Frames of history drawn as track tails.
    start_timer : bool
        Start refreshing on a QTimer (tests and benchmarks may call :meth:`refresh` instead).

    Signals
    -------
    closed
        The window was closed by the user.
    """

    closed = QtCore.Signal()

    def __init__(self, sink: DisplaySink, control=None, *, fps: float = 30.0,
                 tail_length: int = 30, title: str = "temstream", start_timer: bool = True):
        super().__init__()
        self.sink = sink
        self.control = control or NoControl()
        self.tail_length = int(tail_length)
        self.setWindowTitle(title)
        self.history = TrackHistory(max(self.tail_length, MSD_MAX_LAG + 1, 2))
        self.msd = MSDAccumulator(MSD_MAX_LAG)
        self.counts = SeriesBuffer(4000)
        self.shifts = ShiftTrace(4000)
        self.sizes = SizeWindow(30)
        self.layers = LayerSeries()  # two-layer models: per-layer counts, twist, vibration
        self._layer_lut = layer_lut()
        self.levels: tuple[float, float] | None = None
        self.meta: dict = {}
        self.latest: DisplayFrame | None = None
        self.item_ms: dict[str, float] = {}
        self.displayed = 0
        self.finished_state = ""
        self._levels_at = -math.inf
        self._panels_at = -math.inf
        self._ticks = 0
        self._u8 = [None, None]
        self._ov = [None, None]
        self._flip = 0
        self._blank: np.ndarray | None = None
        self._last_take: Take | None = None
        self._input_rate = RateMeter()
        self._processed_rate = RateMeter()
        self._display_rate = RateMeter()

        self.view = FrameView()
        self.panels = StatsPanels()
        self.layer_panels = LayerPanels()
        self.layer_panels.hide()  # shown when a two-layer model's results arrive
        self.health_panel = HealthPanel()
        self.controls = ControlBar(self)
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, self.controls)
        self.addToolBarBreak(QtCore.Qt.ToolBarArea.TopToolBarArea)
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, self.controls.settings)
        side = QtWidgets.QWidget()
        side_layout = QtWidgets.QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.panels, stretch=2)
        side_layout.addWidget(self.layer_panels, stretch=1)
        side_layout.addWidget(self.health_panel, stretch=0)
        splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        splitter.addWidget(self.view)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        self.setCentralWidget(splitter)
        self.status = self.statusBar()
        self.frame_label = QtWidgets.QLabel("waiting for frames")
        self.status.addPermanentWidget(self.frame_label)
        self._connect_controls()
        self.resize(1500, 900)

        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.fps = float(fps)
        self.throttled = False
        self.timer.setInterval(self._interval_ms(self.fps))
        if start_timer:
            self.timer.start()

    @staticmethod
    def _interval_ms(fps: float) -> int:
        return max(1, int(round(1000.0 / fps)))

    def _adapt_rate(self) -> None:
        """Refresh at ``fps``, or at BEHIND_FPS while the pipeline is behind its input."""
        behind = bool(self.control.behind())
        if behind != self.throttled:
            self.throttled = behind
            fps = min(self.fps, BEHIND_FPS) if behind else self.fps
            self.timer.setInterval(self._interval_ms(fps))

    # -- controls ------------------------------------------------------------------------
    def _connect_controls(self) -> None:
        c = self.controls
        for name in ("labels", "outlines", "centroids", "tails"):
            c.action(name).toggled.connect(self._redraw)
        c.action("contrast").triggered.connect(self.auto_contrast)
        c.action("fit").triggered.connect(self.view.fit)
        c.action("snapshot").triggered.connect(self._snapshot_clicked)
        c.action("pause").toggled.connect(self._pause_toggled)
        threshold = self.control.threshold
        if threshold is None:
            c.threshold.setEnabled(False)
        else:
            c.threshold.setValue(threshold)
        outline = self.control.outline
        if outline is None:
            c.outline.setEnabled(False)
        else:
            c.outline.setCurrentText(outline)
        search_range = self.control.search_range
        if search_range is None:
            c.search_range.setEnabled(False)
        else:
            c.search_range.setValue(0.0 if self.control.search_auto else search_range)
        c.threshold_changed.connect(self._set_threshold)
        c.outline_changed.connect(self._set_outline)
        c.search_range_changed.connect(self._set_search_range)
        rec = c.action("record")
        rec.setEnabled(bool(self.control.can_record))
        rec.setChecked(bool(self.control.recording))
        rec.toggled.connect(self._record_toggled)

    def _apply(self, setter, value, done: str) -> None:
        """Hand a new setting to the pipeline; the status bar says from when, or why not."""
        try:
            setter(value)
            self.status.showMessage(f"{done} from the next frame", 3000)
        except (RuntimeError, ValueError) as exc:
            self.status.showMessage(str(exc), 5000)

    def _set_threshold(self, value: float) -> None:
        self._apply(self.control.set_threshold, value, f"threshold {value:.2f}")

    def _set_outline(self, rule: str) -> None:
        self._apply(self.control.set_outline, rule, f"outlines: {rule}")

    def _set_search_range(self, value: float) -> None:
        self._apply(self.control.set_search_range, value,
                    f"search range {value:g} px" if value else "search range automatic")

    def _record_toggled(self, on: bool) -> None:
        try:
            self.control.set_recording(on)
            self.status.showMessage("recording" if on else "recording paused", 3000)
        except RuntimeError as exc:
            self.status.showMessage(str(exc), 5000)

    def _pause_toggled(self, paused: bool) -> None:
        self.status.showMessage("display paused (the pipeline keeps running)" if paused
                                else "display live", 3000)
        if not paused:
            self._redraw()

    def _snapshot_clicked(self) -> None:
        path = Path(time.strftime("temstream-snapshot-%Y%m%d-%H%M%S.png"))
        self.save_snapshot(path)
        self.status.showMessage(f"saved {path.resolve()}", 5000)

    @property
    def paused(self) -> bool:
        return self.controls.checked("pause")

    def auto_contrast(self) -> None:
        """Recompute the display levels from the latest frame's 0.5 / 99.5 percentiles."""
        img = self.latest.image if self.latest is not None else None
        if img is not None:
            self.levels = percentile_levels(img)
            self._levels_at = time.monotonic()
            self._redraw()

    # -- refresh ---------------------------------------------------------------------------
    def refresh(self) -> None:
        """One display tick: take from the sink, update models, redraw what changed."""
        take = self.sink.take()
        self._last_take = take
        if take.new_series:
            self._reset_models()
        if take.meta:
            self.meta = take.meta
        t0 = time.perf_counter()
        for index, _series, table in take.tables:
            tracks = FrameTracks.from_table(index, table)
            self.history.push(tracks)
            self.msd.add_latest(self.history)
            self.counts.append(index, len(table.get("x", ())))
            if "area" in table:
                self.sizes.push(table["area"])
            if "layer" in table:
                self.layers.push(index, table)
        for index, sx, sy, quality, jump in take.registration:
            self.shifts.append(index, sx, sy, quality, jump)
        self.item_ms["models"] = 1e3 * (time.perf_counter() - t0)
        if take.latest is not None:
            self.latest = take.latest
            if not self.paused:
                self._draw_frame(take.latest)
        now = time.monotonic()
        if now - self._panels_at >= PANEL_PERIOD_S:
            self._panels_at = now
            self._ticks += 1
            every = PLOT_PERIODS * (3 if self.throttled else 1)
            if not self.paused and (self._ticks % every == 1 or every == 1):
                self._draw_panels()
            self._adapt_rate()
            self.health_panel.set_health(self.health(take))
            self._show_status()
        if take.closed and not self.finished_state:
            summary = take.summary
            self.finished_state = f"finished ({getattr(summary, 'stopped_by', '') or 'done'})"
            self.health_panel.set_health(self.health(take))

    def _show_status(self) -> None:
        f = self.latest
        if f is None:
            return
        n = len(f.table.get("x", ()))
        levels = f"  levels {self.levels[0]:.0f}..{self.levels[1]:.0f}" if self.levels else ""
        per_layer = ""
        if self.layers.active and "layer" in f.table:
            layer = np.asarray(f.table["layer"])
            per_layer = f" (A {int((layer == 1).sum())}, B {int((layer == 2).sum())})"
        self.frame_label.setText(f"series {f.series}  frame {f.index}  {n} particles"
                                 f"{per_layer}{levels}")

    def _reset_models(self) -> None:
        self.history.clear()
        self.msd.reset()
        self.counts.clear()
        self.shifts.clear()
        self.sizes.clear()
        self.layers.reset()
        self.levels = None

    def _redraw(self, *_args) -> None:
        if self.latest is not None:
            self._draw_frame(self.latest)

    def _draw_frame(self, frame: DisplayFrame) -> None:
        ms = self.item_ms
        c = self.controls
        t = time.perf_counter()
        self._flip ^= 1
        k = self._flip
        if frame.image is not None:
            now = time.monotonic()
            if self.levels is None or (c.checked("continuous")
                                       and now - self._levels_at >= LEVELS_PERIOD_S):
                self.levels = percentile_levels(frame.image)
                self._levels_at = now
            self._u8[k] = to_display_uint8(frame.image, self.levels, out=self._u8[k])
            display = self._u8[k]
        else:  # a results feed without pixels: black behind the labels
            shape = (frame.labels.shape if frame.labels is not None
                     else tuple(self.meta.get("frame_shape") or (1, 1)))
            if self._blank is None or self._blank.shape != shape:
                self._blank = np.zeros(shape, np.uint8)
            display = self._blank
        self.view.set_message(feed_missing_message(self.meta.get("feed_missing", ())))
        t1 = time.perf_counter()
        ms["convert"] = 1e3 * (t1 - t)
        self.view.set_image(display)
        t2 = time.perf_counter()
        ms["image"] = 1e3 * (t2 - t1)
        if frame.layer_labels is not None and c.checked("labels"):
            # a two-layer model: each layer in its colour, where both are: white
            self._ov[k] = layer_indices(frame.layer_labels, outlines=c.checked("outlines"),
                                        out=self._ov[k])
            t3 = time.perf_counter()
            self.view.set_overlay(self._ov[k], lut=self._layer_lut)
        elif frame.labels is not None and c.checked("labels"):
            fn = label_outlines if c.checked("outlines") else label_indices
            self._ov[k] = fn(frame.labels, out=self._ov[k])
            t3 = time.perf_counter()
            self.view.set_overlay(self._ov[k])
        else:
            t3 = time.perf_counter()
            self.view.set_overlay(None)
        t4 = time.perf_counter()
        ms["labels_convert"], ms["labels"] = 1e3 * (t3 - t2), 1e3 * (t4 - t3)
        table = frame.table
        if c.checked("centroids") and "x" in table:
            self.view.set_centroids(table["x"], table["y"])
            self.view.centroids.show()
        else:
            self.view.centroids.hide()
        t5 = time.perf_counter()
        ms["centroids"] = 1e3 * (t5 - t4)
        if c.checked("tails") and self.tail_length > 0:
            self.view.set_tails(*self.history.tails(self.tail_length))
            self.view.tails.show()
        else:
            self.view.tails.hide()
        t6 = time.perf_counter()
        ms["tails"] = 1e3 * (t6 - t5)
        self.view.set_table(table)
        self.view.set_pixel_size(self.pixel_size_nm)
        self.view.set_banner(f"{frame.quality} frame: bridged, not linked" if frame.quality
                             else ("stage jump" if frame.jump else ""))
        self.displayed += 1
        self._display_rate.update(self.displayed)

    @property
    def pixel_size_nm(self) -> float | None:
        v = self.meta.get("pixel_size_nm")
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if v > 0 else None

    @property
    def frame_time_s(self) -> float | None:
        v = self.meta.get("frame_time_s")
        try:
            v = float(v)
        except (TypeError, ValueError):
            return None
        return v if v > 0 else None

    def _draw_panels(self) -> None:
        t = time.perf_counter()
        px = self.pixel_size_nm
        dt = self.frame_time_s
        self.panels.set_units("nm" if px else "px", "s" if dt else "frames")
        self.panels.set_counts(*self.counts.data())
        self.panels.set_shifts(*self.shifts.data(), bad=self.shifts.flagged()[:2],
                               jumps=self.shifts.jump_frames())
        self.panels.set_sizes(*self.sizes.histogram(scale=px or 1.0))
        lags, msd = self.msd.msd()
        self.panels.set_msd(lags * (dt or 1.0), msd * (px or 1.0) ** 2)
        alags, amsd = self.msd.angular_msd()
        self.panels.set_angular_msd(alags * (dt or 1.0), amsd)
        if self.layers.active:
            if self.layer_panels.isHidden():
                self.layer_panels.show()
            self.panels.set_layer_counts([c.data() for c in self.layers.counts])
            self.layer_panels.set_units("nm" if px else "px")
            self.layer_panels.set_twist(*self.layers.twist.data())
            self.layer_panels.set_vibration(
                [(f, v * (px or 1.0)) for f, v in (s.data() for s in self.layers.vibration)])
        self.item_ms["panels"] = 1e3 * (time.perf_counter() - t)

    def health(self, take: Take | None = None) -> dict:
        """The numbers of the health panel."""
        take = take or self._last_take or self.sink.take()
        extra = self.control.health()
        received = extra.get("received", take.processed + sum(take.dropped.values()))
        p50, p99 = latency_percentiles(take.latencies_ms)
        reg = {}
        if len(self.shifts):
            frames, xs, ys = self.shifts.data()
            reg = {"shift": (float(xs[-1]), float(ys[-1])), "jumps": self.shifts.jumps,
                   "bad_frames": dict(self.shifts.bad)}
        sr = getattr(self.control, "search_range", None)
        if sr is not None:
            reg["search_range"] = sr
            reg["search_auto"] = getattr(self.control, "search_auto", False)
        h = {**reg, "input_fps": self._input_rate.update(received),
             "processed_fps": self._processed_rate.update(take.processed),
             "display_fps": self._display_rate.rate(), "processed": take.processed,
             "latency_p50": p50, "latency_p99": p99, "dropped": take.dropped,
             "skipped": take.skipped, "state": self.finished_state,
             "throttled": self.throttled, **extra}
        return h

    # -- output ----------------------------------------------------------------------------
    def save_snapshot(self, path: str | Path) -> Path:
        """Save the whole window as a PNG (works offscreen)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._draw_panels()  # the plots as of the last frame, whatever the panel rate
        if not self.grab().save(str(path)):
            raise OSError(f"could not write the snapshot {path}")
        return path

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        self.closed.emit()
        super().closeEvent(event)
