"""Side panels: particles per frame, size histogram, MSD, angular MSD, pipeline health; for
two-layer models, per-layer counts, the twist angle and each layer's vibration."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtGui, QtWidgets

from temstream.gui.render import LAYER_RGB
from temstream.gui.stats import format_bytes


def sparse_log_labels(values, scale: float = 1.0) -> list[str]:
    """Labels for log-axis ticks at ``log10`` positions ``values``: only 1, 2 and 5 times a
    power of ten are labelled (only powers of ten when the ticks span more than two decades);
    the other ticks keep their grid line but get an empty label, so labels never overlap."""
    v = np.asarray(values, float) + np.log10(scale)
    if not len(v):
        return []
    span = float(np.ptp(v))
    keep = (1,) if span > 2.0 else (1, 2, 5)
    out = []
    for x in v:
        mant = 10 ** (x - np.floor(x + 1e-9))
        m = int(round(mant))
        if abs(mant - m) > 1e-6 * max(m, 1) or m not in keep:
            out.append("")
        else:
            out.append(_power_label(m, int(np.floor(x + 1e-9))))
    return out


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_label(mantissa: int, exponent: int) -> str:
    if -3 <= exponent <= 3:
        return f"{mantissa * 10.0 ** exponent:g}"
    head = "" if mantissa == 1 else f"{mantissa}·"
    return f"{head}10{str(exponent).translate(_SUPERSCRIPT)}"


class SparseLogAxis(pg.AxisItem):
    """Log axis whose minor ticks are unlabelled (:func:`sparse_log_labels`)."""

    def logTickStrings(self, values, scale, spacing):
        return sparse_log_labels(values, scale)


def _plot(title: str, left: str, bottom: str, *, log: bool = False) -> pg.PlotWidget:
    axes = ({"left": SparseLogAxis("left"), "bottom": SparseLogAxis("bottom")} if log
            else None)
    w = pg.PlotWidget(title=title, axisItems=axes)
    w.setLabel("left", left)
    w.setLabel("bottom", bottom)
    w.setMenuEnabled(False)
    w.showGrid(x=True, y=True, alpha=0.25)
    if log:
        w.setLogMode(x=True, y=True)
    w.setMinimumSize(220, 150)
    return w


class StatsPanels(QtWidgets.QWidget):
    """Four plots in a 2x2 grid and the registration's shift trace below them; ``set_*``
    methods replace their data."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.counts_plot = _plot("particles per frame", "particles", "frame")
        self.counts = self.counts_plot.plot(pen=pg.mkPen((120, 200, 255), width=1))
        self.sizes_plot = _plot("size (equivalent diameter)", "count", "d (px)")
        self.sizes = pg.PlotCurveItem([0.0, 1.0], [0.0], stepMode="center", fillLevel=0,
                                      brush=pg.mkBrush(120, 200, 255, 120),
                                      pen=pg.mkPen((120, 200, 255)))
        self.sizes_plot.addItem(self.sizes)
        self.msd_plot = _plot("ensemble MSD", "MSD (px\N{SUPERSCRIPT TWO})", "lag (frames)",
                              log=True)
        self.msd = self.msd_plot.plot(pen=pg.mkPen((255, 200, 40)), symbol="o", symbolSize=4,
                                      symbolBrush=(255, 200, 40))
        self.amsd_plot = _plot("angular MSD", "MSAD (rad\N{SUPERSCRIPT TWO})", "lag (frames)",
                               log=True)
        self.amsd = self.amsd_plot.plot(pen=pg.mkPen((255, 120, 200)), symbol="o", symbolSize=4,
                                        symbolBrush=(255, 120, 200))
        # the key in the title: a legend would cover the trace in a plot this low
        self.shift_plot = _plot(
            "registration: shift <span style='color:#78c8ff'>x</span> "
            "<span style='color:#ffa050'>y</span> &nbsp; "
            "<span style='color:#ff3c3c'>\u25bc bad frame (bridged)</span> &nbsp; "
            "<span style='color:#ffe63c'>\u25c6 stage jump</span>", "shift (px)", "frame")
        self.shift_x = self.shift_plot.plot(pen=pg.mkPen((120, 200, 255), width=1))
        self.shift_y = self.shift_plot.plot(pen=pg.mkPen((255, 160, 80), width=1))
        self.bad_frames = pg.ScatterPlotItem(size=9, symbol="t", pen=pg.mkPen(None),
                                             brush=pg.mkBrush(255, 60, 60, 230))
        self.jumps = pg.ScatterPlotItem(size=9, symbol="d", pen=pg.mkPen(None),
                                        brush=pg.mkBrush(255, 230, 60, 230))
        for item in (self.bad_frames, self.jumps):
            self.shift_plot.addItem(item)
        grid.addWidget(self.counts_plot, 0, 0)
        grid.addWidget(self.sizes_plot, 0, 1)
        grid.addWidget(self.msd_plot, 1, 0)
        grid.addWidget(self.amsd_plot, 1, 1)
        grid.addWidget(self.shift_plot, 2, 0, 1, 2)
        self._units: tuple[str, str] | None = None

    def set_units(self, length: str, time: str) -> None:
        """Axis units: ``length`` 'nm' or 'px'; ``time`` 's' or 'frames'."""
        if self._units == (length, time):
            return
        self._units = (length, time)
        sq = "\N{SUPERSCRIPT TWO}"
        self.sizes_plot.setLabel("bottom", f"d ({length})")
        self.msd_plot.setLabel("left", f"MSD ({length}{sq})")
        self.msd_plot.setLabel("bottom", f"lag ({time})")
        self.amsd_plot.setLabel("bottom", f"lag ({time})")

    def set_shifts(self, frames: np.ndarray, x: np.ndarray, y: np.ndarray,
                   bad: tuple[np.ndarray, np.ndarray] = (), jumps: np.ndarray = ()) -> None:
        """The shift trace (px per frame), the bad frames (frame, shift x) and the frames
        where the stage jumped."""
        self.shift_x.setData(frames, x)
        self.shift_y.setData(frames, y)
        bf, bx = bad if len(bad) else (np.zeros(0), np.zeros(0))
        self.bad_frames.setData(x=bf, y=np.nan_to_num(bx))
        jumps = np.asarray(jumps, float)
        at = np.interp(jumps, frames, x) if len(jumps) and len(frames) else np.zeros(0)
        self.jumps.setData(x=jumps, y=at)

    def set_counts(self, frames: np.ndarray, counts: np.ndarray) -> None:
        self.counts.setData(frames, counts)

    def set_layer_counts(self, series) -> None:
        """Two-layer runs: one more curve per layer, ``series`` [(frames, counts), ...] (A
        orange, B cyan, as in the image)."""
        curves = getattr(self, "layer_counts", None)
        if curves is None:
            self.counts_plot.addLegend(offset=(-5, 5), labelTextSize="7pt")
            self.layer_counts = curves = [
                self.counts_plot.plot(pen=pg.mkPen(LAYER_RGB[k], width=1),
                                      name=f"layer {'AB'[k]}") for k in range(2)]
            self.counts_plot.plotItem.legend.addItem(self.counts, "all")
        for curve, (frames, counts) in zip(curves, series):
            curve.setData(frames, counts)

    def set_sizes(self, edges: np.ndarray, counts: np.ndarray) -> None:
        if len(counts) == 0:
            self.sizes.setData([0.0, 1.0], [0.0])
        else:
            self.sizes.setData(edges, counts)

    @staticmethod
    def _positive(lags: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = (lags > 0) & (values > 0) & np.isfinite(values)
        return lags[ok], values[ok]

    def set_msd(self, lags: np.ndarray, values: np.ndarray) -> None:
        self.msd.setData(*self._positive(lags, values))

    def set_angular_msd(self, lags: np.ndarray, values: np.ndarray) -> None:
        lags, values = self._positive(lags, values)
        self.amsd.setData(lags, values)
        self.amsd_plot.setTitle("angular MSD" if len(lags) else
                                "angular MSD (no orientations tracked)")


class LayerPanels(QtWidgets.QWidget):
    """Two-layer runs: the twist angle between the layers' lattices and each layer's vibration
    about its lattice sites, over time (:class:`~temstream.gui.accumulators.LayerSeries`)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.twist_plot = _plot("twist B vs A", "twist (\N{DEGREE SIGN})", "frame")
        self.twist = self.twist_plot.plot(pen=pg.mkPen((230, 230, 230)))
        self.vibration_plot = _plot("vibration at the sites", "RMS (px)", "frame")
        self.vibration_plot.addLegend(offset=(-5, 5), labelTextSize="7pt")
        self.vibration = [self.vibration_plot.plot(pen=pg.mkPen(LAYER_RGB[k], width=1.5),
                                                   name=f"layer {'AB'[k]}") for k in range(2)]
        row.addWidget(self.twist_plot)
        row.addWidget(self.vibration_plot)

    def set_units(self, length: str) -> None:
        self.vibration_plot.setLabel("left", f"RMS ({length})")

    def set_twist(self, frames: np.ndarray, degrees: np.ndarray) -> None:
        self.twist.setData(frames, degrees)
        self.twist_plot.setTitle(f"twist B vs A: {degrees[-1]:+.2f}\N{DEGREE SIGN}"
                                 if len(degrees) else "twist B vs A")

    def set_vibration(self, series) -> None:
        """``series`` [(frames, rms), ...] per layer."""
        for curve, (frames, rms) in zip(self.vibration, series):
            curve.setData(frames, rms)


def _fmt(v: float, unit: str = "", digits: int = 1) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else \
        f"{v:.{digits}f}{unit}"


def _registration_text(h: dict) -> str:
    shift = h.get("shift")
    if shift is None and not h.get("bad_frames"):
        return "-"
    bad = ", ".join(f"{k} {v}" for k, v in sorted((h.get("bad_frames") or {}).items()))
    text = f"shift {shift[0]:+.1f}, {shift[1]:+.1f} px" if shift is not None else "no shift"
    text += f", jumps {h.get('jumps', 0)}"
    sr = h.get("search_range")
    if sr is not None:
        text += f", search {sr:.1f} px" + (" (auto)" if h.get("search_auto") else "")
    return text + (f"\n           bad frames {bad} (bridged)" if bad else "")


def health_text(h: dict) -> str:
    """The health panel's text from a dict of numbers (see :meth:`Dashboard.health`)."""
    drops = h.get("dropped") or {}
    drop_text = ", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"
    queues = h.get("queues")
    queue_text = ", ".join(f"{k} {v}" for k, v in queues.items()) if queues else "-"
    rec = h.get("recording", "off")
    if rec != "off" and "record_bytes" in h:
        rec += f"  {format_bytes(h['record_bytes'])}, {h.get('record_frames', 0)} frames"
    lines = [
        f"input      {_fmt(h.get('input_fps'), ' frames/s')}",
        f"processed  {_fmt(h.get('processed_fps'), ' frames/s')}  ({h.get('processed', 0)})",
        f"displayed  {_fmt(h.get('display_fps'), ' frames/s')}"
        + ("  (slowed: pipeline behind)" if h.get("throttled") else ""),
        f"latency    p50 {_fmt(h.get('latency_p50'), ' ms')}  p99 {_fmt(h.get('latency_p99'), ' ms')}",
        f"dropped    {drop_text}",
        f"queues     {queue_text}",
        f"recording  {rec}",
        f"register   {_registration_text(h)}",
    ]
    if h.get("skipped"):
        lines.append(f"display skipped {h['skipped']} tables")
    if h.get("state"):
        lines.append(f"state      {h['state']}")
    return "\n".join(lines)


class HealthPanel(QtWidgets.QLabel):
    """Monospaced text block with the pipeline's numbers."""

    MAX_LINES = 11  # health_text: 8 fixed lines, bad frames, "display skipped" and "state"

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.setStyleSheet("QLabel { background: #111; color: #ddd; padding: 6px; }")
        self.setMinimumWidth(300)
        # room for every line health_text can write, so a longer text never gets clipped
        self.setMinimumHeight(QtGui.QFontMetrics(font).lineSpacing() * self.MAX_LINES + 16)
        self.setText(health_text({}))

    def set_health(self, h: dict) -> None:
        self.setText(health_text(h))
