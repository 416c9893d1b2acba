"""Markdown tables and PNG figures of evaluation results."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLUMNS = [("data", "data"), ("scenario", "scenario"), ("dose", "dose"),
           ("dose_e_per_A2", "e/Å²"), ("snr", "SNR"), ("model", "model"),
           ("pixel_accuracy", "pixel acc."), ("dice", "Dice"), ("iou", "IoU"),
           ("obj_precision", "obj. P"), ("obj_recall", "obj. R"), ("obj_f1", "obj. F1"),
           ("centroid_err_px", "centroid err. (px)")]


def _fmt(v):
    if isinstance(v, float):
        return "–" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def markdown_table(rows: list[dict]) -> str:
    """Rows of :mod:`temstream.models.evaluate` as a Markdown table (one line per row)."""
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def layer_table(rows: list[dict]) -> str:
    """Per-layer Dice of bilayer models (rows that have it), or an empty string."""
    sel = [r for r in rows if "layer_a_dice" in r]
    if not sel:
        return ""
    lines = ["| scenario | dose | model | layer A Dice | layer B Dice |", "|---|---|---|---|---|"]
    for r in sel:
        lines.append(f"| {r['scenario']} | {r['dose']} | {r['model']} | "
                     f"{r['layer_a_dice']:.3f} | {r['layer_b_dice']:.3f} |")
    return "\n".join(lines) + "\n"


def summary_table(rows: list[dict]) -> str:
    """Mean Dice / object F1 per (data, dose) and model, models side by side."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    groups = list(dict.fromkeys((r["data"], r["dose"]) for r in rows))
    head = "| data | dose | " + " | ".join(f"{m} Dice | {m} F1" for m in models) + " |"
    sep = "|---|---|" + "---|---|" * len(models)
    lines = [head, sep]
    for data, dose in groups:
        cells = []
        for m in models:
            sel = [r for r in rows if r["data"] == data and r["dose"] == dose and r["model"] == m]
            cells += [f"{np.mean([r['dice'] for r in sel]):.3f}",
                      f"{np.mean([r['obj_f1'] for r in sel]):.3f}"]
        lines.append(f"| {data} | {dose} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(examples, path: str | Path, *, thresholds: dict | None = None) -> Path:
    """PNG grid: per example a row of input / truth / prediction and confidence per model.

    Parameters
    ----------
    examples : list of (title, frame (H, W), truth (H, W) bool, {model: probs (C, H, W)})
    path : path
        Output PNG.
    thresholds : dict of model -> float, optional
        Decision thresholds (default 0.5).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(examples[0][3])
    ncol = 2 + 2 * len(models)
    fig, axes = plt.subplots(len(examples), ncol, figsize=(1.9 * ncol, 1.95 * len(examples)),
                             squeeze=False)
    for i, (title, frame, truth, probs_by) in enumerate(examples):
        lo, hi = np.percentile(frame, [0.5, 99.5])
        axes[i, 0].imshow(frame, cmap="gray", vmin=lo, vmax=hi)
        axes[i, 0].set_ylabel(title, fontsize=6)
        axes[i, 1].imshow(truth, cmap="gray")
        for j, m in enumerate(models):
            p = probs_by[m]
            thr = (thresholds or {}).get(m, 0.5)
            axes[i, 2 + 2 * j].imshow((1 - p[0]) >= thr, cmap="gray")
            axes[i, 3 + 2 * j].imshow(p.max(0), cmap="viridis", vmin=1 / len(p), vmax=1)
            if i == 0:
                axes[i, 2 + 2 * j].set_title(f"{m}: prediction", fontsize=7)
                axes[i, 3 + 2 * j].set_title(f"{m}: confidence", fontsize=7)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=7)
            axes[i, 1].set_title("truth", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path
