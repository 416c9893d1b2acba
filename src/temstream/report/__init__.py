"""A report of a recording: ``temstream report REC.h5 --out report.html`` (or ``.pdf``).

:func:`build_report` reads a recording (lazily: one frame, the tables) and returns a
:class:`Report`: what was recorded and with which settings, the frame accounting, particles per
frame, the size distribution over time with growth/etching rates, the ensemble MSD and angular
MSD with diffusion fits, a frame with its tracks drawn, and per-layer panels for two-layer
recordings. :meth:`Report.save` writes one self-contained HTML file (PNG figures embedded) or a
PDF. ``/frames_info`` columns the report does not know (added by newer versions) are summarised
generically, never an error.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from temstream.report import figures
from temstream.report.render import to_html, to_pdf

log = logging.getLogger(__name__)

__all__ = ["Report", "Panel", "build_report", "make_report"]

#: /frames_info columns with a known meaning; any other is summarised as "other columns"
KNOWN_INFO = {"frame", "series", "status", "reason", "timestamp", "receive_time",
              "n_particles"}


@dataclass
class Panel:
    """One figure of the report.

    Attributes
    ----------
    key : str
        ``accounting``, ``counts``, ``sizes``, ``msd``, ``tracks``, ``layers``,
        ``layer_labels``.
    title, caption : str
    figure : matplotlib.figure.Figure
    data : dict
        What the figure shows, for checks (e.g. ``counts``: particles per frame).
    """

    key: str
    title: str
    figure: object
    caption: str = ""
    data: dict = field(default_factory=dict)
    _png: bytes | None = field(default=None, repr=False)

    def png(self, dpi: int = 100) -> bytes:
        """The figure as PNG bytes (rendered once)."""
        if self._png is None:
            import io

            buf = io.BytesIO()
            self.figure.savefig(buf, format="png", dpi=dpi)
            self._png = buf.getvalue()
        return self._png


@dataclass
class Report:
    """What :func:`build_report` found; :meth:`save` writes it.

    Attributes
    ----------
    path : Path
        The recording.
    facts : list of (str, str)
        What was recorded: file, model, frames, size, pixel size, frame time, ...
    settings : list of (str, str)
        The settings that shape the results (model, threshold, outline, linking).
    config_toml : str
        The whole configuration of the run.
    accounting : list of (str, str)
        Frames seen, processed, dropped by reason, throughput.
    timings : DataFrame
        Per ``*_ms`` column of ``/frames_info``: median, p99, max.
    other_columns : list of (str, str)
        ``/frames_info`` columns this version does not know, summarised.
    results : list of (str, str)
        The numbers of the figures: particles, tracks, diffusion coefficients, rates.
    panels : list of Panel
    seconds : float
        Time it took to build.
    """

    path: Path
    facts: list = field(default_factory=list)
    settings: list = field(default_factory=list)
    config_toml: str = ""
    accounting: list = field(default_factory=list)
    timings: pd.DataFrame = field(default_factory=pd.DataFrame)
    other_columns: list = field(default_factory=list)
    results: list = field(default_factory=list)
    panels: list = field(default_factory=list)
    seconds: float = 0.0

    def panel(self, key: str) -> Panel | None:
        return next((p for p in self.panels if p.key == key), None)

    def to_html(self) -> str:
        return to_html(self)

    def save(self, out: str | Path) -> Path:
        """Write the report: ``.pdf`` -> PDF, anything else -> one self-contained HTML file."""
        out = Path(out)
        if out.suffix.lower() == ".pdf":
            to_pdf(self, out)
        else:
            out.write_text(self.to_html(), encoding="utf-8")
        return out


def _units(px: float | None, dt: float | None) -> dict:
    return {"length": "nm" if px else "px", "time": "s" if dt else "frame",
            "area_scale": (px or 1.0) ** 2, "length_scale": px or 1.0, "time_scale": dt or 1.0}


def _series_meta(attrs: dict) -> dict:
    try:
        meta = json.loads(attrs.get("series_meta") or "{}")
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _frame_time(attrs: dict, info: pd.DataFrame) -> float | None:
    """The frame period: the series metadata's, else the detector timestamps' median step."""
    meta = _series_meta(attrs)
    if meta.get("frame_time_s"):
        return float(meta["frame_time_s"])
    ts = info.loc[info["status"] == "processed", ["frame", "timestamp"]].dropna()
    if len(ts) > 2:
        step = np.diff(ts["timestamp"].to_numpy()) / np.maximum(np.diff(ts["frame"].to_numpy()), 1)
        step = step[step > 0]
        if len(step):
            return float(np.median(step))
    return None


def _settings(toml: str) -> list:
    import tomllib

    try:
        c = tomllib.loads(toml) if toml else {}
    except tomllib.TOMLDecodeError:
        return [("config", "unreadable")]
    want = [("segment", "model"), ("segment", "backend"), ("segment", "threshold"),
            ("segment", "tta"), ("instances", "outline"), ("instances", "min_area"),
            ("preprocess", "median"), ("tracking", "search_range"), ("tracking", "memory"),
            ("tracking", "predict"), ("pipeline", "flow"), ("record", "raw_frames")]
    out = []
    for sec, key in want:
        if key in c.get(sec, {}):
            v = c[sec][key]
            out.append((f"{sec}.{key}", "(model card)" if sec == "segment" and key ==
                        "threshold" and not v else str(v)))
    return out


def _other_columns(info: pd.DataFrame) -> list:
    out = []
    for col in info.columns:
        if col in KNOWN_INFO or col.endswith("_ms"):
            continue
        s = info[col]
        if s.dtype.kind in "fiu" and s.notna().any():
            out.append((col, f"mean {s.mean():.4g}, min {s.min():.4g}, max {s.max():.4g} "
                             f"({int(s.notna().sum())} values)"))
        else:
            s = s.map(lambda v: v.decode(errors="replace") if isinstance(v, bytes) else v)
            counts = s.value_counts().head(6)
            out.append((col, ", ".join(f"{k!s}: {v}" for k, v in counts.items()) or "empty"))
    return out


def _timings(info: pd.DataFrame) -> pd.DataFrame:
    p = info[info["status"] == "processed"]
    rows = {}
    for col in info.columns:
        if col.endswith("_ms") and p[col].notna().any():
            v = p[col].to_numpy(float)
            v = v[np.isfinite(v)]
            rows[col[:-3]] = {"median ms": np.median(v), "p99 ms": np.percentile(v, 99),
                              "max ms": v.max()}
    return pd.DataFrame.from_dict(rows, orient="index")


def _layers(df: pd.DataFrame) -> list[int]:
    """The layers of a two-layer recording (1, 2, 3 = both), or [] for a single-layer one."""
    if "layer" not in df or df.empty:
        return []
    layers = sorted(int(v) for v in df["layer"].unique() if v > 0)
    return layers


def build_report(path: str | Path, *, max_lag: int = 100, fit_range: tuple[int, int] = (1, 10),
                 frame: int | None = None) -> Report:
    """Read a recording and make the report's tables and figures.

    Parameters
    ----------
    path : str or Path
        A temstream recording.
    max_lag : int
        Longest lag of the MSD curves (frames).
    fit_range : (int, int)
        Lags (frames) the diffusion fits use.
    frame : int, optional
        The recorded frame (position in the stack) drawn with its tracks; default: the middle
        one.

    Returns
    -------
    Report
    """
    from temstream.record.lazy import Recording

    t0 = time.perf_counter()
    rec = Recording(path)
    try:
        info, df = rec.frames_info, rec.particles
        px, dt = rec.pixel_size_nm, _frame_time(rec.attrs, info)
        u = _units(px, dt)
        report = Report(Path(path), config_toml=rec.config_toml)
        _describe(report, rec, info, px, dt)
        _account(report, info, rec.summary)
        layers = _layers(df)
        _counts_panel(report, df, info, layers)
        if len(df):
            df = df.assign(diameter=2 * np.sqrt(df["area"].clip(lower=0) / np.pi)
                           * u["length_scale"])
            _sizes_panel(report, df, u)
        _motion_panel(report, df, layers, rec.shape[0], max_lag, fit_range, u)
        if rec.shape[0]:
            _frame_panels(report, rec, info, df, rec.shape[0] // 2 if frame is None
                          else int(frame))
    finally:
        rec.close()
    report.seconds = time.perf_counter() - t0
    return report


def _describe(report: Report, rec, info, px, dt) -> None:
    """The recording's facts and the settings it ran with."""
    attrs = rec.attrs
    n, h, w = rec.shape
    raw = "frames" in rec.stacks
    report.facts = [
        ("recording", str(report.path.name)),
        ("source", _series_meta(attrs).get("source_file") or "a stream"),
        ("created", str(attrs.get("created", "–"))),
        ("temstream", str(attrs.get("temstream_version", "–"))),
        ("model", str(attrs.get("model", "–"))),
        ("frames recorded", f"{n} of {w}×{h} px" + ("" if raw else
                                                     " (labels only, no raw frames)")),
        ("stacks", ", ".join(f"/data/{s}" for s in rec.stacks)),
        ("pixel size", f"{px:g} nm" if px else "unknown (lengths in px)"),
        ("frame time", f"{dt * 1e3:.4g} ms" if dt else "unknown (times in frames)"),
        ("closed cleanly", str(bool(attrs.get("closed_cleanly", False)))
         + (f" — {attrs['recording_error']}" if attrs.get("recording_error") else "")),
    ]
    report.settings = _settings(rec.config_toml)


def _account(report: Report, info, summary: dict) -> None:
    """Frame accounting: the table, the run's summary, the stage timings, the panel."""
    status = info["status"].value_counts()
    dropped = info.loc[info["status"] == "dropped", "reason"].value_counts()
    report.accounting = [
        ("frame indices seen", str(len(info))),
        ("processed", str(int(status.get("processed", 0)))),
        ("dropped", str(int(status.get("dropped", 0))) + (
            " (" + ", ".join(f"{k} {v}" for k, v in dropped.items()) + ")"
            if len(dropped) else "")),
    ]
    if summary:
        report.accounting += [
            ("throughput", f"{summary.get('fps', 0):.1f} frames/s over "
                           f"{summary.get('elapsed_s', 0):.1f} s"),
            ("latency", f"p50 {summary.get('latency_p50_ms', float('nan')):.1f} ms, "
                        f"p99 {summary.get('latency_p99_ms', float('nan')):.1f} ms"),
            ("stopped by", str(summary.get("stopped_by", "–")))]
    report.timings = _timings(info)
    report.other_columns = _other_columns(info)
    fig = figures.frame_accounting(info)
    if fig is not None:
        report.panels.append(Panel(
            "accounting", "Frame accounting", fig,
            "Every frame index the pipeline saw: processed, or dropped with its reason; "
            "below, the latency of each processed frame (received → linked).",
            {"processed": int(status.get("processed", 0)),
             "dropped": int(status.get("dropped", 0))}))


def _counts_panel(report: Report, df, info, layers) -> None:
    """Particles per processed frame, in total and per layer, and the number of tracks."""
    frames_all = info.loc[info["status"] == "processed", "frame"]
    counts = pd.DataFrame({0: df.groupby("frame").size()}).reindex(
        sorted(frames_all.unique()), fill_value=0) if len(frames_all) else pd.DataFrame()
    for layer in layers:
        counts[layer] = df[df["layer"] == layer].groupby("frame").size().reindex(
            counts.index, fill_value=0)
    fig = figures.particles_per_frame(counts)
    tracks = df[df["particle"] >= 0]["particle"].nunique() if len(df) else 0
    report.results += [("particles per frame", f"mean {counts[0].mean():.1f}, min "
                                               f"{counts[0].min()}, max {counts[0].max()}"
                        if not counts.empty else "–"),
                       ("tracks", str(tracks))]
    if fig is not None:
        report.panels.append(Panel(
            "counts", "Particles per frame", fig,
            "Particles found in each processed frame" + (", in total and per layer."
                                                         if layers else "."),
            {"counts": counts}))


def _sizes_panel(report: Report, df, u: dict) -> None:
    """Diameters over time and each track's rate of radius change (growth, etching)."""
    from temstream.tracking import analysis

    rates = analysis.area_rates(df[df["particle"] >= 0], column="area", min_points=5)
    if len(rates):
        rates = rates.assign(radius_rate=rates["radius_rate"] * u["length_scale"])
        med = float(np.median(rates["radius_rate"]))
        report.results.append(("radius change per track", f"median {med:+.3g} "
                               f"{u['length']}/frame over {len(rates)} tracks of ≥ 5 "
                               "frames (> 0 growth, < 0 etching)"))
    fig = figures.sizes_over_time(df, "diameter", u["length"], rates)
    report.panels.append(Panel(
        "sizes", "Sizes over time", fig,
        "Equivalent-disk diameters of all particles per frame (grey: how many), median "
        "and quartiles (red); right: each track's rate of change of its radius "
        "(growth > 0, etching < 0).", {"n": int(len(df))}))


def _fit(curve, fr, dim: int, u: dict, kind: str) -> dict | None:
    """A diffusion fit of an MSD (``kind`` "msd") or angular MSD ("msad") curve, in units."""
    from temstream.tracking import analysis

    try:
        f = analysis.fit_diffusion(curve, fr, dim=dim)
    except ValueError:
        return None
    scale = u["area_scale"] if kind == "msd" else 1.0
    return {"D": f["D"] * scale / u["time_scale"], "offset": f["offset"] * scale,
            "alpha": f["alpha"]}


def _motion_panel(report: Report, df, layers, n: int, max_lag: int, fit_range, u: dict) -> None:
    """Ensemble MSD and angular MSD of all tracks (and per layer), with diffusion fits."""
    from temstream.tracking import analysis

    linked = df[df["particle"] >= 0] if len(df) else df
    curves: dict = {"msd": {}, "msad": {}}
    fits: dict = {"msd": {}, "msad": {}}
    lag = max(1, min(max_lag, n - 1))
    fr = (fit_range[0], min(fit_range[1], lag))
    for layer, g in [(0, linked)] + [(k, linked[linked["layer"] == k]) for k in layers]:
        if not len(g) or g["particle"].nunique() == 0:
            continue
        m = analysis.emsd(g, lag)
        if len(m) >= 2:
            curves["msd"][layer] = m
            f = _fit(m, fr, 2, u, "msd")
            if f is not None:
                fits["msd"][layer] = f
        if "angle" in g and np.isfinite(g["angle"]).any():
            a = analysis.msad(g[np.isfinite(g["angle"])], lag)
            if len(a) >= 2:
                curves["msad"][layer] = a
                f = _fit(a, fr, 1, u, "msad")
                if f is not None:
                    fits["msad"][layer] = f
    for kind, name, unit in (("msd", "D", f"{u['length']}²/{u['time']}"),
                             ("msad", "D_r", f"rad²/{u['time']}")):
        for layer, f in fits[kind].items():
            report.results.append((f"{name} ({figures.layer_name(layer)})",
                                   f"{f['D']:.4g} {unit}, exponent α {f['alpha']:.2f}"))
    fig = figures.msd_panels(curves, fits, u)
    if fig is not None:
        report.panels.append(Panel(
            "msd", "Motion: ensemble MSD and angular MSD", fig,
            f"All displacement pairs of all tracks pooled, lags up to {lag} frames; lines: "
            f"MSD = 2·d·D·lag + offset fitted over lags {fr[0]}–{fr[1]} (d = 2 for "
            "positions, 1 for the orientation).", {"fits": fits}))


def _frame_panels(report: Report, rec, info, df, pos: int) -> None:
    """One recorded frame (position ``pos`` in the stack) with its tracks, and its labels per
    layer for two-layer recordings."""
    n = rec.shape[0]
    raw = "frames" in rec.stacks
    rows = info[(info["status"] == "processed") & (info["reason"] != "not recorded")]
    series, index = ((int(rows["series"].iloc[pos]), int(rows["frame"].iloc[pos]))
                     if len(rows) == n else (0, pos))
    labels = rec.h5stack("labels")[pos]  # one frame read, no Dask
    image = (rec.h5stack("frames")[pos].astype(float) if raw
             else (labels > 0).astype(float))
    sel = df[df["series"] == series] if "series" in df and len(df) else df
    fig = figures.frame_with_tracks(image, sel, index, labels=None if raw else labels,
                                    title=f"frame {index}")
    now = sel[sel["frame"] == index] if len(sel) else sel
    report.panels.append(Panel(
        "tracks", "A frame with its tracks", fig,
        f"Frame {index} ({'raw' if raw else 'labels: no raw frames'}"
        f" recorded) with the last 50 frames of every track up to it; dots: its {len(now)} "
        "particles.",
        {"frame": index, "particles": int(len(now))}))
    if "layer_labels" in rec.stacks:
        planes = rec.h5stack("layer_labels")[pos]
        report.panels.append(Panel(
            "layer_labels", "Labels per layer", figures.layer_labels_panel(planes, index),
            "The frame's instance labels in each layer's plane (/data/layer_labels): "
            "particles of different layers may overlap.",
            {"per_layer": [int(len(np.unique(p[p > 0]))) for p in planes]}))


def make_report(path: str | Path, out: str | Path | None = None, **kwargs) -> Report:
    """:func:`build_report` and :meth:`Report.save` to ``out`` (default: the recording's name
    with ``.report.html``)."""
    t0 = time.perf_counter()
    report = build_report(path, **kwargs)
    out = Path(out) if out else Path(path).with_suffix(".report.html")
    report.save(out)
    report.seconds = time.perf_counter() - t0  # reading, figures and writing
    return report
