"""``temstream evaluate``: score models beside ``classical`` on simulated and real data."""

from __future__ import annotations

import logging
from pathlib import Path

from temstream.cli._common import config_from_args, new_parser
from temstream.cli._pipeline import load_segmenter_from_config, pipeline_instancer

log = logging.getLogger(__name__)

#: conventions of the simulated truth (``--truth``)
TRUTHS = ("extent", "half-contrast")
TRUTH_NOTES = {
    "extent": "each particle's projected extent (the simulator's labels)",
    "half-contrast": "each particle where the noise-free frame is half-way between its "
                     "background and its core (the hand-drawn convention; --truth half-contrast)",
}
#: the half-contrast truth is drawn on the noise-free frame, smoothed this little (px)
TRUTH_SMOOTH_PX = 0.5


def add_parser(sub):
    parser = new_parser(
        sub, "evaluate", "score segmentation models (always beside classical)",
        "temstream evaluate --model default sim real --out docs/eval",
        description="Score models on simulated test movies (per scenario and dose) and on real "
                    "labelled images. DATA items: 'sim' (all particle scenarios), "
                    "'sim:NAME[,NAME]' (e.g. sim:dispersed,moire), 'real' (msa-em-train from "
                    "$TEMSTREAM_REAL_DATA or ../shared/data/real), or a folder with images/ and "
                    "labels/ PNGs. Every score comes with a 95 % bootstrap interval over the "
                    "independent movies or images, and each model's paired difference from "
                    "classical (and, with several --model, from the first) is tabled; to compare "
                    "two training runs: --model default --model runs/x --seed 7. Writes OUT.md "
                    "(tables) and OUT.png (input / truth / prediction / confidence).")
    parser.add_argument("data", nargs="*", metavar="DATA", default=[],
                        help="sim, sim:NAME[,NAME...], real, or an images/labels folder "
                             "(default: sim real)")
    parser.add_argument("--model", action="append", default=[],
                        help="model name or checkpoint, optionally with [segment] or "
                             "[instances] settings of its own after @ (default@outline="
                             "threshold, runs/x@threshold=0.5@tta=4, default@outline=half-"
                             "contrast@instances.faint_contrast_z=0); repeatable, so one model "
                             "can be compared with itself under other settings (default: "
                             "default)")
    parser.add_argument("--backend", default=None,
                        help="auto, torch, onnxruntime, tensorrt (default: segment.backend)")
    parser.add_argument("--tta", type=int, choices=[1, 2, 4, 8], default=None,
                        help="U-Nets: average over N rotations/mirrors of each frame "
                             "(default: segment.tta)")
    parser.add_argument("--doses", default="low,moderate,high",
                        help="dose levels (low = 0.1x, moderate = 1x, high = 10x the "
                             "scenario's default dose)")
    parser.add_argument("--frames", type=int, default=4, help="frames per simulated movie")
    parser.add_argument("--movies", type=int, default=8,
                        help="independent movies per scenario and dose (seeds SEED, SEED+1, "
                             "...); the 95 %% intervals resample them")
    parser.add_argument("--size", type=int, default=256, help="simulated frame edge, px")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the test movies")
    parser.add_argument("--truth", choices=TRUTHS, default="extent",
                        help="simulated truth: 'extent' (where each particle's projected "
                             "thickness ends, the simulator's labels) or 'half-contrast' (the "
                             "same particles where the noise-free frame is half-way between "
                             "each one's background and core, as outlines are drawn by hand)")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _split_data(items):
    """The DATA tokens -> ([scenario names], [(label, folder)])."""
    from temstream.cli import UsageError
    from temstream.models.realdata import default_real_dir
    from temstream.sim import SCENARIOS

    scen, real = [], []
    for item in items or ["sim", "real"]:
        if item == "sim":
            scen += [s for s in SCENARIOS if s != "moire"]
        elif item.startswith("sim:"):
            names = item[4:].split(",")
            bad = [n for n in names if n not in SCENARIOS]
            if bad:
                raise UsageError(f"unknown scenarios {bad}; choose from {sorted(SCENARIOS)}")
            scen += names
        elif item == "real":
            d = default_real_dir()
            if d is None:
                raise UsageError("no real images found: set $TEMSTREAM_REAL_DATA or give the "
                                 "folder path")
            real.append(("msa-em-train", d))
        elif Path(item).is_dir():
            real.append((Path(item).name, Path(item)))
        else:
            raise UsageError(f"DATA {item!r} is not 'sim', 'sim:NAME', 'real' or a folder")
    return list(dict.fromkeys(scen)), real


def _movies(scenarios, doses, args):
    """Simulated test movies, ``args.movies`` independent ones per (scenario, dose), generated
    lazily."""
    from temstream.sim import simulate
    from temstream.sim.scenarios import scenario_params

    for scen in scenarios:
        base = scenario_params(scen)["dose_e_per_A2"]
        for label, mult in doses.items():
            group = [simulate(scen, frames=args.frames, size=args.size, seed=args.seed + k,
                              dose_e_per_A2=base * mult) for k in range(args.movies)]
            if args.truth == "half-contrast":
                group = [_half_contrast_truth(m, scen, args.seed + k, base * mult, args)
                         for k, m in enumerate(group)]
            yield scen, label, base * mult, group


def _half_contrast_truth(movie, scenario: str, seed: int, dose: float, args):
    """``movie`` with its labels redrawn on its noise-free twin (same seed and scene, no shot
    or read noise) at half of each particle's contrast: the hand-drawn convention, from the
    simulator (:func:`temstream.tracking.edges.half_contrast_outlines`)."""
    import dataclasses

    import numpy as np

    from temstream.sim import simulate
    from temstream.tracking.edges import half_contrast_outlines

    clean = simulate(scenario, frames=args.frames, size=args.size, seed=seed,
                     dose_e_per_A2=dose, noise=False)
    labels = np.stack([half_contrast_outlines(f, lab, smooth_px=TRUTH_SMOOTH_PX)
                       for f, lab in zip(clean.frames, movie.labels)])
    return dataclasses.replace(movie, labels=labels)


def _display_name(name: str) -> str:
    """A checkpoint folder's name (settings after @ kept): ``runs/r4@tta=4`` -> ``r4@tta=4``."""
    model, sep, settings = name.partition("@")
    return (Path(model).name if Path(model).exists() else model) + sep + settings


def _outline_note(seg) -> str:
    """How a segmenter's outlines are drawn, for the report header."""
    if getattr(seg, "outline", "threshold") == "expected-dice":
        return " (outlines at each frame's expected-Dice threshold, never below it)"
    if getattr(seg, "outline", "threshold") == "half-contrast":
        return " (outlines redrawn from the frame at half of each particle's contrast)"
    return ""


def _segmenter(config, name: str, args):
    """The segmenter ``name`` as the pipeline would load it, and the ``[instances]`` settings
    its particles are extracted with: ``[segment]`` (threshold, backend, tta; the
    command-line flags win) applies to U-Nets, ``[classical]`` to the baseline, which keeps
    its own threshold. ``MODEL@KEY=VALUE[@...]`` sets ``[segment]`` keys, and
    ``MODEL@instances.KEY=VALUE`` ``[instances]`` keys, for this model alone (they win over
    the flags and the overrides)."""
    from dataclasses import replace

    from temstream.config import parse_overrides

    model, *settings = name.split("@")
    classical = model == "classical"
    seg = config.segment
    seg = replace(seg, model=model, backend=args.backend or seg.backend,
                  tta=1 if classical else (args.tta or seg.tta),
                  threshold=0.0 if classical else seg.threshold,
                  compile=seg.compile and not classical)
    config = replace(config, segment=seg)
    if settings:
        config = config.replace(**parse_overrides(
            s if s.startswith("instances.") else f"segment.{s}" for s in settings))
    return load_segmenter_from_config(config), config.instances


def _drawn_mask(seg, instancer, probs, frame):
    """A segmenter's prediction as scored: its outlines, or with the half-contrast rule its
    instances' pixels (the outlines redrawn from the frame)."""
    from temstream.models.decision import frame_mask

    if getattr(seg, "outline", "threshold") == "half-contrast":
        return instancer(probs, seg, frame) > 0
    return frame_mask(seg, probs)


def run(args) -> int:
    from functools import partial

    from temstream.cli import UsageError
    from temstream.models.evaluate import DOSES, evaluate_real, evaluate_simulated
    from temstream.models.realdata import load_msa_em
    from temstream.models.report import (difference_table, figure, layer_table, markdown_table,
                                         summary_table)

    config = config_from_args(args)
    instances_desc = ", ".join(f"{k} = {v}" for k, v in vars(config.instances).items())
    scenarios, real = _split_data(args.data)
    if args.movies < 1 or args.frames < 1:
        raise UsageError("--movies and --frames must be at least 1")
    doses = {}
    for d in args.doses.split(","):
        if d not in DOSES:
            raise UsageError(f"unknown dose {d!r}; choose from {list(DOSES)}")
        doses[d] = DOSES[d]
    names = list(dict.fromkeys(["classical"] + (args.model or ["default"])))
    loaded = {_display_name(n): _segmenter(config, n, args) for n in names}
    segs = {k: seg for k, (seg, _) in loaded.items()}
    by_model = {id(seg): pipeline_instancer(inst) for seg, inst in loaded.values()}

    def instancer(probs, seg, frame=None):  # each model with its own [instances]
        return by_model[id(seg)](probs, seg, frame)

    rows, examples = [], []
    if scenarios:
        from tqdm import tqdm

        movies = tqdm(_movies(scenarios, doses, args), total=len(scenarios) * len(doses),
                      unit="movie", desc="evaluate", disable=args.no_progress)
        r, e = evaluate_simulated(segs, movies, progress=True, instancer=instancer)
        rows += r
        examples += e
    for label, folder in real:
        r, e = evaluate_real(segs, load_msa_em(folder), label=label, instancer=instancer)
        rows += r
        examples += e
    units = ", ".join(dict.fromkeys(f"{r['data']}: {r['unit']}s" for r in rows))
    text = ("## Summary (mean over scenarios)\n\n" + summary_table(rows)
            + f"\n95 % intervals: percentile bootstrap over the independent units ({units}), "
            "resampled within each scenario" + (" (frames of one movie are correlated: use "
                                                "--movies 2 or more for honest intervals)"
                                                if args.movies == 1 and scenarios else "")
            + ".\n")
    diff = difference_table(rows)
    if diff:
        text += ("\n## Differences from classical (paired: the same movies and images)\n\n"
                 + diff)
    unets = [m for m in segs if m != "classical"]
    if len(unets) > 1:  # comparing runs: each against the first model named
        text += (f"\n## Differences from {unets[0]} (paired)\n\n"
                 + difference_table(rows, reference=unets[0], models=unets[1:]))
    text += "\n## All results\n\n" + markdown_table(rows)
    if layer_table(rows):
        text += "\n## Layer assignment (bilayer models)\n\n" + layer_table(rows)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # OUT names both files; only a .md or .png ending is replaced ("eval_t0.5" keeps ".5")
        stem = out.with_suffix("") if out.suffix in (".md", ".png") else out
        md, png = stem.parent / f"{stem.name}.md", stem.parent / f"{stem.name}.png"
        tta = f" --tta {args.tta}" if args.tta else ""
        header = (f"# Evaluation: {', '.join(segs)}\n\nCommand: `temstream evaluate "
                  f"{' '.join('--model ' + m for m in args.model)} {' '.join(args.data)} "
                  f"--doses {args.doses} --frames {args.frames} --movies {args.movies} "
                  f"--size {args.size} --seed {args.seed} --truth {args.truth}"
                  f"{tta}{''.join(' ' + o for o in args.overrides or [])}`"
                  f"\n\nInstances: the pipeline's ([instances] {instances_desc})"
                  + ("; instances.* settings after a model's @ are its own"
                     if any("@instances." in m for m in args.model) else "") + ".\n\n"
                  + (f"Simulated truth: {TRUTH_NOTES[args.truth]}.\n\n" if scenarios else "")
                  + "Thresholds: "
                  + ", ".join(f"{k} {s.threshold:.2f}" + _outline_note(s)
                              for k, s in segs.items()) + "\n\n")
        md.write_text(header + text)
        sel = examples[:: max(1, len(examples) // 8)][:8]
        if examples and examples[-1] not in sel:
            sel.append(examples[-1])
        figure(sel, png, masks={k: partial(_drawn_mask, s, instancer) for k, s in segs.items()})
        print(f"wrote {md} and {png}")
    return 0
