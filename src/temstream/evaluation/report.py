"""An evaluation's results: Markdown tables, a PNG figure, and :class:`Report` holding both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from temstream.models.metrics import bootstrap_interval

COLUMNS = [("data", "data"), ("scenario", "scenario"), ("dose", "dose"),
           ("dose_e_per_A2", "e/Å²"), ("snr", "SNR"), ("model", "model"),
           ("pixel_accuracy", "pixel acc."), ("dice", "Dice"), ("iou", "IoU"),
           ("obj_precision", "obj. P"), ("obj_recall", "obj. R"), ("obj_f1", "obj. F1"),
           ("centroid_err_px", "centroid err. (px)"), ("dice_ci", "Dice 95 %"),
           ("obj_f1_ci", "F1 95 %")]


def _fmt(v):
    if isinstance(v, tuple):
        return _interval(v)
    if isinstance(v, float):
        return "–" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def _interval(ci) -> str:
    lo, hi = ci
    return "–" if np.isnan(lo) else f"{lo:.3f}–{hi:.3f}"


def _signed_interval(ci) -> str:
    lo, hi = ci
    return "–" if np.isnan(lo) else f"{lo:+.3f} to {hi:+.3f}"


def markdown_table(rows: list[dict]) -> str:
    """Rows of :mod:`temstream.evaluation.scoring` as a Markdown table (one line per row)."""
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(k, "")) for k, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def continuity_table(rows: list[dict]) -> str:
    """Track continuity on the simulated movies (rows that have it), or an empty string."""
    sel = [r for r in rows if "end_to_end" in r]
    if not sel:
        return ""
    lines = ["| scenario | dose | model | tracked end to end | median track / movie | "
             "tracks / true tracks |", "|---|---|---|---|---|---|"]
    for r in sel:
        lines.append(f"| {r['scenario']} | {r['dose']} | {r['model']} | "
                     f"{_fmt(r['end_to_end'])} | {_fmt(r['track_length'])} | "
                     f"{_fmt(r['tracks_per_true'])} |")
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


def _group(rows, data, dose, model):
    return [r for r in rows if r["data"] == data and r["dose"] == dose and r["model"] == model]


def summary_table(rows: list[dict]) -> str:
    """Mean Dice / object F1 per (data, dose) and model, models side by side, each with its
    95 % bootstrap interval (units resampled within every scenario; see
    :func:`temstream.models.metrics.bootstrap_interval`)."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    groups = list(dict.fromkeys((r["data"], r["dose"]) for r in rows))
    head = "| data | dose | " + " | ".join(f"{m} Dice | {m} F1" for m in models) + " |"
    sep = "|---|---|" + "---|---|" * len(models)
    lines = [head, sep]
    for data, dose in groups:
        cells = []
        for m in models:
            sel = _group(rows, data, dose, m)
            for key in ("dice", "obj_f1"):
                mean = np.mean([r[key] for r in sel])
                ci = (bootstrap_interval([r["units"] for r in sel], key)
                      if all("units" in r for r in sel) else (np.nan, np.nan))
                cells.append(f"{mean:.3f}" + ("" if np.isnan(ci[0]) else f" ({_interval(ci)})"))
        lines.append(f"| {data} | {dose} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def difference_table(rows: list[dict], reference: str = "classical",
                     models: list[str] | None = None) -> str:
    """Paired differences of ``models`` (default: all others) from ``reference`` (mean over
    scenarios of Dice and object F1, with 95 % bootstrap intervals over the same resampled
    units), or an empty string when there is nothing to compare."""
    if models is None:
        models = list(dict.fromkeys(r["model"] for r in rows))
    models = [m for m in models if m != reference]
    groups = list(dict.fromkeys((r["data"], r["dose"]) for r in rows))
    if not models or not any(r["model"] == reference for r in rows):
        return ""
    lines = ["| data | dose | model | Δ Dice | 95 % interval | Δ F1 | 95 % interval |",
             "|---|---|---|---|---|---|---|"]
    for data, dose in groups:
        ref = _group(rows, data, dose, reference)
        for m in models:
            sel = _group(rows, data, dose, m)
            if not sel or [r["scenario"] for r in sel] != [r["scenario"] for r in ref]:
                continue
            cells = []
            for key in ("dice", "obj_f1"):
                delta = np.mean([r[key] for r in sel]) - np.mean([r[key] for r in ref])
                ci = bootstrap_interval([r["units"] for r in sel], key,
                                        minus=[r["units"] for r in ref])
                cells += [f"{delta:+.3f}", _signed_interval(ci)]
            lines.append(f"| {data} | {dose} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(examples, path: str | Path, *, thresholds: dict | None = None,
           masks: dict | None = None) -> Path:
    """PNG grid: per example a row of input / truth / prediction and confidence per model.

    Parameters
    ----------
    examples : list of (title, frame (H, W), truth (H, W) bool, {model: probs (C, H, W)})
    path : path
        Output PNG.
    thresholds : dict of model -> float, optional
        Decision thresholds (default 0.5).
    masks : dict of model -> callable, optional
        ``mask(probs (C, H, W), frame (H, W)) -> (H, W) bool`` drawing a model's prediction
        (its instances' pixels); wins over ``thresholds``.
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
            if masks and m in masks:
                shown = masks[m](p, frame)
            else:
                shown = (1 - p[0]) >= (thresholds or {}).get(m, 0.5)
            axes[i, 2 + 2 * j].imshow(shown, cmap="gray")
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


@dataclass
class Report:
    """The result of :func:`temstream.evaluate`.

    Attributes
    ----------
    rows : list of dict
        One row per (data, scenario, dose, model) (:mod:`temstream.evaluation.scoring`).
    examples : list of tuple
        ``(title, frame, truth mask, {model: probs})``, the first frame of each set.
    models : dict of name -> Model
        The models scored, ``classical`` first.
    header : dict of str -> str
        How the report was made (command, instance settings, truth, thresholds), for
        :meth:`to_markdown`.
    """

    rows: list
    examples: list
    models: dict
    header: dict = field(default_factory=dict)

    def text(self) -> str:
        """The tables: summary, paired differences, all rows (what the CLI prints)."""
        units = ", ".join(dict.fromkeys(f"{r['data']}: {r['unit']}s" for r in self.rows))
        frame_units = any(r["unit"] == "frame" and r["data"] == "sim" for r in self.rows)
        out = ("## Summary (mean over scenarios)\n\n" + summary_table(self.rows)
               + f"\n95 % intervals: percentile bootstrap over the independent units ({units}), "
               "resampled within each scenario" + (" (frames of one movie are correlated: use "
                                                   "--movies 2 or more for honest intervals)"
                                                   if frame_units else "") + ".\n")
        diff = difference_table(self.rows)
        if diff:
            out += ("\n## Differences from classical (paired: the same movies and images)\n\n"
                    + diff)
        unets = [m for m in self.models if m != "classical"]
        if len(unets) > 1:  # comparing runs: each against the first model named
            out += (f"\n## Differences from {unets[0]} (paired)\n\n"
                    + difference_table(self.rows, reference=unets[0], models=unets[1:]))
        if continuity_table(self.rows):
            out += ("\n## Track continuity (simulated movies, linked as a live run links)\n\n"
                    + continuity_table(self.rows)
                    + "\nTracked end to end: share of the true particles present in the first "
                    "and last frames that one track follows from the first 5 frames to the "
                    "last 5; median track length over the movie's; all tracks over all true "
                    "tracks. With few frames per movie (--frames) these say little.\n")
        out += "\n## All results\n\n" + markdown_table(self.rows)
        if layer_table(self.rows):
            out += "\n## Layer assignment (bilayer models)\n\n" + layer_table(self.rows)
        return out

    def to_markdown(self) -> str:
        """The whole report as Markdown: a title, how it was made, the tables."""
        head = f"# Evaluation: {', '.join(self.models)}\n\n"
        head += "".join(f"{k}: {v}\n\n" for k, v in self.header.items())
        return head + self.text()

    def figure(self, path: str | Path, *, max_rows: int = 8) -> Path:
        """PNG grid of up to ``max_rows`` examples (spread over the sets, the last one always):
        input, truth, and each model's recorded particles and confidence."""
        sel = self.examples[:: max(1, len(self.examples) // max_rows)][:max_rows]
        if self.examples and self.examples[-1] not in sel:
            sel.append(self.examples[-1])
        masks = {name: (lambda probs, frame, m=m: m.labels(probs, frame) > 0)
                 for name, m in self.models.items()}
        return figure(sel, path, masks=masks)
