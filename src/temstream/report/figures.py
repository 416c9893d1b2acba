"""The report's figures: each function takes the recording's data and returns a matplotlib
``Figure`` (no pyplot: nothing global, safe in any thread), or None when there is nothing to
draw. The house style of ``temstream.evaluation``: small panels, thin lines, one colour per
layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

LAYER_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
LAYER_NAMES = {0: "all", 1: "layer A", 2: "layer B", 3: "both layers"}


def _fig(w: float = 7.0, h: float = 2.8, ncols: int = 1, nrows: int = 1):
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, lw=0.5)
    return fig, axes


def layer_name(layer: int) -> str:
    return LAYER_NAMES.get(int(layer), f"layer {int(layer)}")


def frame_accounting(info: pd.DataFrame) -> Figure | None:
    """Per frame index: processed or dropped (by reason), and the latency of each processed
    frame."""
    if not len(info):
        return None
    fig = Figure(figsize=(7.0, 3.0), layout="constrained")
    ax, lat = fig.subplots(2, 1, height_ratios=(1, 2))
    for a in (ax, lat):
        a.tick_params(labelsize=8)
        a.grid(alpha=0.25, lw=0.5)
    processed = info["status"] == "processed"
    ax.plot(info["frame"][processed], np.ones(processed.sum()), "|", ms=10, color="#2ca02c",
            label=f"processed ({int(processed.sum())})")
    for k, (reason, g) in enumerate(info[~processed].groupby("reason")):
        ax.plot(g["frame"], np.full(len(g), -k - 1.0), "|", ms=10,
                label=f"dropped: {reason or '?'} ({len(g)})")
    ax.set_yticks([])
    ax.set_xlabel("frame", fontsize=8)
    ax.legend(fontsize=7, loc="upper right", frameon=False, ncols=3)
    ax.set_ylim(-1.0 - max(1, (~processed).any() * info[~processed]["reason"].nunique()), 2.2)
    if "latency_ms" in info and processed.any():
        lat.plot(info["frame"][processed], info["latency_ms"][processed], lw=0.6,
                 color="#444444")
        lat.set_ylabel("latency (ms)", fontsize=8)
        lat.set_xlabel("frame", fontsize=8)
    else:
        lat.set_axis_off()
    return fig


def particles_per_frame(counts: pd.DataFrame) -> Figure | None:
    """``counts``: index frame, one column per layer (0 = all particles)."""
    if counts.empty:
        return None
    fig, axes = _fig()
    ax = axes[0, 0]
    for k, col in enumerate(counts.columns):
        ax.plot(counts.index, counts[col], lw=1.0, color=LAYER_COLOURS[k % 5],
                label=layer_name(col))
    if len(counts.columns) > 1:
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel("particles", fontsize=8)
    ax.set_ylim(bottom=0)
    return fig


def sizes_over_time(df: pd.DataFrame, size_col: str, unit: str, rates: pd.DataFrame | None,
                    ) -> Figure | None:
    """Equivalent diameters over time: a 2-D histogram with the median and quartiles per frame,
    and the histogram of each track's growth (or etching) rate of its radius."""
    if df.empty:
        return None
    fig, axes = _fig(7.0, 2.9, ncols=2)
    ax, hx = axes[0, 0], axes[0, 1]
    frames = df["frame"].to_numpy()
    d = df[size_col].to_numpy(float)
    ok = np.isfinite(d)
    if ok.sum() > 1 and np.ptp(d[ok]) > 0:
        fbins = min(100, max(1, int(np.ptp(frames)) + 1))
        h, fe, de = np.histogram2d(frames[ok], d[ok], bins=(fbins, 40))
        ax.imshow(h.T, origin="lower", aspect="auto", cmap="Greys",
                  extent=(fe[0], fe[-1], de[0], de[-1]), interpolation="nearest")
    q = df[ok].groupby("frame")[size_col].quantile([0.25, 0.5, 0.75]).unstack()
    ax.plot(q.index, q[0.5], color="#d62728", lw=1.0, label="median")
    ax.fill_between(q.index, q[0.25], q[0.75], color="#d62728", alpha=0.2, lw=0,
                    label="quartiles")
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel(f"equivalent diameter ({unit})", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    if rates is not None and len(rates):
        r = rates["radius_rate"].to_numpy(float)
        r = r[np.isfinite(r)]
        hx.hist(r, bins=30, color="#1f77b4")
        hx.axvline(0, color="k", lw=0.5)
        hx.set_xlabel(f"radius change per track ({unit}/frame)", fontsize=8)
        hx.set_ylabel("tracks", fontsize=8)
    else:
        hx.set_axis_off()
        hx.text(0.5, 0.5, "no track long enough for a rate", ha="center", fontsize=8,
                transform=hx.transAxes)
    return fig


def msd_panels(curves: dict, fits: dict, units: dict) -> Figure | None:
    """Ensemble MSD and MSAD with their diffusion fits, one curve per layer.

    ``curves[kind][layer]`` is an emsd DataFrame (index lag); ``fits[kind][layer]`` the
    :func:`~temstream.tracking.analysis.fit_diffusion` result (D, offset) in the same units.
    """
    kinds = [k for k in ("msd", "msad") if curves.get(k)]
    if not kinds:
        return None
    fig, axes = _fig(3.6 * len(kinds), 2.9, ncols=len(kinds))
    for ax, kind in zip(axes[0], kinds):
        for k, (layer, m) in enumerate(curves[kind].items()):
            c = LAYER_COLOURS[k % 5]
            x = m.index.to_numpy(float) * units["time_scale"]
            ax.loglog(x, m["msd"].to_numpy(float) * (units["area_scale"] if kind == "msd"
                                                      else 1.0),
                      "o", ms=2.5, color=c, label=layer_name(layer))
            fit = fits.get(kind, {}).get(layer)
            if fit is not None:
                dim = 2 if kind == "msd" else 1
                y = 2 * dim * fit["D"] * x + fit["offset"]
                ax.loglog(x[y > 0], y[y > 0], "--", lw=1.1, color="k", alpha=0.7,
                          label="fit" if k == 0 else None)
        if kind == "msd":
            ax.set_ylabel(f"MSD ({units['length']}²)", fontsize=8)
            ax.set_title("ensemble MSD", fontsize=9)
        else:
            ax.set_ylabel("MSAD (rad²)", fontsize=8)
            ax.set_title("ensemble angular MSD", fontsize=9)
        ax.set_xlabel(f"lag ({units['time']})", fontsize=8)
        ax.legend(fontsize=7, frameon=False)
    return fig


def frame_with_tracks(image: np.ndarray, tracks: pd.DataFrame, frame: int,
                      labels: np.ndarray | None = None, title: str = "",
                      tail: int = 50) -> Figure:
    """One frame in grey (or its labels when no raw frame was recorded) with the tracks of the
    ``tail`` frames up to it drawn as lines and the particles of the frame as dots."""
    h, w = image.shape
    fig = Figure(figsize=(5.0, 5.0 * h / w + 0.3), layout="constrained")
    ax = fig.subplots()
    lo, hi = np.percentile(image, (0.5, 99.5)) if image.size else (0, 1)
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1,
              interpolation="nearest")
    if labels is not None and labels.any():
        ax.imshow(np.ma.masked_where(labels == 0, labels % 20), cmap="tab20", alpha=0.35,
                  interpolation="nearest", vmin=0, vmax=19)
    past = tracks[(tracks["frame"] <= frame) & (tracks["frame"] > frame - tail)
                  & (tracks["particle"] >= 0)]
    cmap = _tab20()
    for pid, g in past.groupby("particle"):
        g = g.sort_values("frame")
        ax.plot(g["x"], g["y"], lw=0.9, color=cmap[int(pid) % 20])
    now = tracks[tracks["frame"] == frame]
    ax.plot(now["x"], now["y"], ".", ms=3, color="#ffdd00")
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return fig


def _tab20():
    from matplotlib import colormaps

    cm = colormaps["tab20"]
    return [cm(i) for i in range(20)]


def layer_labels_panel(planes: np.ndarray, frame: int) -> Figure:
    """The per-layer label planes ``(L, H, W)`` of one frame side by side."""
    n = planes.shape[0]
    fig = Figure(figsize=(2.6 * n, 2.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    for k, ax in enumerate(axes):
        p = planes[k]
        ax.imshow(np.where(p > 0, p % 20 + 1, 0), cmap="tab20", interpolation="nearest",
                  vmin=0, vmax=20)
        ax.set_title(f"{layer_name(k + 1)}: {len(np.unique(p[p > 0]))} particles",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"frame {frame}, labels per layer", fontsize=9)
    return fig
