"""Two-layer (moiré) evaluation of a two-layer model: the table of issue 23's targets.

Test movies, with seeds never used in training (the model was trained on single frames of
``temstream.sim.training``), in eight conditions: two renderers (``temstream sim moire``, and
``scripts/independent_moire.py``, which shares no image model with the simulator) x
different-size (layer B 0.75x / 0.7x) or equal-size layers x moderate (~80) or low (~20)
detected electrons per background pixel. Each movie runs through the stages a live run builds
(:func:`temstream.evaluation.layers.run_layered`) and is scored against its per-layer truth
(:func:`temstream.evaluation.layers.score_movie`); equal-size layers are scored under the
better naming per movie. Rows are means over the movies.

    python benchmarks/eval_bilayer.py [--model bilayer] [--movies 3] [--frames 20] [--size 256]
                                      [--out docs/eval_bilayer.md] [--quick]

``--out`` writes the Markdown report and a figure (``.png`` beside it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

#: detected electrons per background pixel and frame
COUNTS = {"moderate": 80.0, "low": 20.0}
RATIO = {"different": 0.75, "equal": 1.0}
SEED0 = 9000


def sim_movie(seed, size, frames, counts, sizes):
    from temstream.sim import simulate
    from temstream.sim.render import background_transmission
    from temstream.sim.scenarios import scenario_params

    over = dict(layer_b_size_ratio=RATIO[sizes], vacancy_fraction=0.03)
    prm = scenario_params("moire", **over)
    electrons = counts / (background_transmission(prm) * prm["gain"])
    dose = electrons / (10 * prm["pixel_size_nm"]) ** 2
    return simulate("moire", frames=frames, size=size, seed=seed, dose_e_per_A2=dose, **over)


def independent_movie(seed, size, frames, counts, sizes):
    from independent_moire import render_movie

    return render_movie(seed, size=size, frames=frames, counts=counts, equal=sizes == "equal")


RENDERERS = {"temstream sim": sim_movie, "independent": independent_movie}


def evaluate(model: str, *, movies: int, frames: int, size: int, conditions, progress=True):
    from temstream.config import load_config
    from temstream.evaluation.layers import run_layered, score_movie
    from temstream.pipeline.assemble import build_stages, load_segmenter_from_config

    config = load_config(overrides={"segment": {"model": model, "backend": "torch"}})
    segmenter = load_segmenter_from_config(config)
    rows, examples = [], []
    for renderer, sizes, dose in conditions:
        per = []
        t0 = time.perf_counter()
        for k in range(movies):
            movie = RENDERERS[renderer](SEED0 + k, size, frames, COUNTS[dose], sizes)
            stages = build_stages(config, segmenter)
            planes, particles, ms = run_layered(stages, movie.frames)
            s = score_movie(movie, planes, particles, either_naming=sizes == "equal")
            s["ms"] = ms
            per.append(s)
            if k == 0:
                examples.append((f"{renderer}, {sizes} sizes, {dose} dose", movie.frames[0],
                                 movie.layer_labels[0], planes[0], s["swapped"]))
        row = {"renderer": renderer, "sizes": sizes, "dose": dose, "movies": movies}
        keys = [k for k, v in per[0].items() if isinstance(v, (float, int, np.floating))
                and not isinstance(v, bool)]
        for key in keys:
            row[key] = float(np.nanmean([p.get(key, np.nan) for p in per]))
        row["ms_segment"] = float(np.median([p["ms"]["segment"] for p in per]))
        row["ms_instances"] = float(np.median([p["ms"]["instances"] for p in per]))
        row["swapped"] = sum(p["swapped"] for p in per)
        rows.append(row)
        if progress:
            print(f"{renderer:14s} {sizes:9s} {dose:8s} Dice {row['dice_a']:.3f}/"
                  f"{row['dice_b']:.3f} F1 {row['f1_a']:.3f}/{row['f1_b']:.3f} assign "
                  f"{row['assignment']:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows, examples


def _f(v, pct=False):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{100 * v:+.1f} %" if pct else f"{v:.3f}"


def markdown(rows, header: dict) -> str:
    lines = [f"# Two-layer evaluation: {header['model']}", ""]
    lines += [f"Command: `{header['command']}`", "",
              f"Machine: {header['machine']}", "",
              "Targets (issue 23): per-layer Dice ≥ 0.90, per-layer object F1 (centre within "
              "5 px) ≥ 0.95, layer assignment ≥ 0.97; equal-size layers F1 ≥ 0.90, assignment "
              "≥ 0.95; low dose Dice ≥ 0.80, F1 ≥ 0.85; per-site vibration RMS within 15 % with "
              "≥ 90 % of interior sites tracked through the movie; twist within 0.3°, lattice "
              "constant within 1 %; vacancy F1 ≥ 0.9.", ""]
    lines += ["| renderer | layer sizes | dose | Dice A | Dice B | F1 A | F1 B | assignment | "
              "vibration A | vibration B | tracked A | tracked B | twist err. (°) | a err. A | "
              "a err. B | vacancy F1 A | vacancy F1 B |",
              "|---|---|---|" + "---|" * 14]
    for r in rows:
        lines.append(
            f"| {r['renderer']} | {r['sizes']} | {r['dose']} | {_f(r['dice_a'])} | "
            f"{_f(r['dice_b'])} | {_f(r['f1_a'])} | {_f(r['f1_b'])} | {_f(r['assignment'])} | "
            f"{_f(r.get('vib_err_a'), True)} | {_f(r.get('vib_err_b'), True)} | "
            f"{_f(r['tracked_a'])} | {_f(r['tracked_b'])} | {_f(r['twist_err_deg'])} | "
            f"{_f(r['a_err_a'], True)} | {_f(r['a_err_b'], True)} | {_f(r['vac_f1_a'])} | "
            f"{_f(r['vac_f1_b'])} |")
    lines += ["", "Vibration: the mean measured per-site RMS over the sites tracked through "
              "the movie, against the truth's of the same sites (relative error). Twist and "
              "lattice constant: the largest error over the frames of each movie (lattices "
              "fitted to the recorded particles vs to the true sites). Equal-size rows: scored "
              "under the better naming of the layers per movie "
              f"(swapped in {sum(r['swapped'] for r in rows if r['sizes'] == 'equal')} of "
              f"{sum(r['movies'] for r in rows if r['sizes'] == 'equal')} movies).", ""]
    for note in header.get("notes", []):
        lines += [note, ""]
    return "\n".join(lines)


def figure(examples, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(examples)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for row, (title, frame, truth, planes, swapped) in zip(axes, examples):
        lo, hi = np.percentile(frame, [0.5, 99.5])
        row[0].imshow(frame, cmap="gray", vmin=lo, vmax=hi)
        row[0].set_title(title, fontsize=8)
        if swapped:
            planes = planes[::-1]
        for k, ax in enumerate(row[1:]):
            rgb = np.zeros(frame.shape + (3,))
            rgb[..., 1] = truth[k] > 0                  # green: truth
            rgb[..., 0] = planes[k] > 0                 # red: found (yellow: both)
            ax.imshow(rgb)
            ax.set_title(f"layer {'AB'[k]} (yellow: found and true, red: found only, "
                         "green: missed)", fontsize=6)
        for ax in row:
            ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bilayer")
    p.add_argument("--movies", type=int, default=3)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--out", default=None, help="Markdown report (and .png figure) to write")
    p.add_argument("--quick", action="store_true", help="1 movie of 4 frames per condition")
    args = p.parse_args(argv)
    if args.quick:
        args.movies, args.frames = 1, 4
    conditions = [(r, s, d) for r in RENDERERS for s in RATIO for d in COUNTS]
    rows, examples = evaluate(args.model, movies=args.movies, frames=args.frames,
                              size=args.size, conditions=conditions)
    load = os.getloadavg()[0]
    header = {"model": args.model,
              "command": f"python benchmarks/eval_bilayer.py --model {args.model} --movies "
                         f"{args.movies} --frames {args.frames} --size {args.size}"
                         + (f" --out {args.out}" if args.out else ""),
              "machine": f"{os.cpu_count()} CPU threads, load average {load:.1f} at the end"}
    text = markdown(rows, header)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(text)
        figure(examples, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
