"""``temstream evaluate``: score models beside ``classical`` on simulated and real data
(argparse around :func:`temstream.evaluation.evaluate`)."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import config_from_args, new_parser
from temstream.evaluation.data import TRUTHS


def add_parser(sub):
    parser = new_parser(
        sub, "evaluate", "score segmentation models (always beside classical)",
        "temstream evaluate --model default sim real --out docs/eval",
        description="Score models on simulated test movies (per scenario and dose) and on real "
                    "labelled images. DATA items: 'sim' (all particle scenarios), "
                    "'sim:NAME[,NAME]' (e.g. sim:dispersed,moire), 'real' (the labelled folder "
                    "in $TEMSTREAM_REAL_DATA), or a folder with images/ and labels/ PNGs. Each "
                    "model is scored through the stages a live run builds (temstream.evaluate "
                    "does the same from Python). Every score comes with a 95 % bootstrap "
                    "interval over the independent movies or images, and each model's paired "
                    "difference from "
                    "classical (and, with several --model, from the first) is tabled; to compare "
                    "two training runs: --model default --model runs/x --seed 7. Writes OUT.md "
                    "(tables) and OUT.png (input / truth / prediction / confidence).")
    parser.add_argument("data", nargs="*", metavar="DATA", default=[],
                        help="sim, sim:NAME[,NAME...], real, or an images/labels folder "
                             "(default: sim real)")
    parser.add_argument("--model", action="append", default=[],
                        help="model name or checkpoint, optionally with [segment] or "
                             "[instances] settings of its own after @ (default@instances."
                             "outline=threshold, runs/x@threshold=0.5@tta=4, default@instances."
                             "outline=half-contrast@instances.faint_contrast_z=0); repeatable, "
                             "so one model can be compared with itself under other settings "
                             "(default: default)")
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
    parser.add_argument("--truth", choices=list(TRUTHS), default="extent",
                        help="simulated truth: 'extent' (where each particle's projected "
                             "thickness ends, the simulator's labels) or 'half-contrast' (the "
                             "same particles where the noise-free frame is half-way between "
                             "each one's background and core, as outlines are drawn by hand)")
    parser.add_argument("--out", default=None, help="write OUT.md and OUT.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _command(args) -> str:
    """The command line that reproduces the report."""
    return ("temstream evaluate " + "".join(f"--model {m} " for m in args.model)
            + " ".join(args.data) + f" --doses {args.doses} --frames {args.frames} "
            f"--movies {args.movies} --size {args.size} --seed {args.seed} --truth {args.truth}"
            + (f" --tta {args.tta}" if args.tta else "")
            + "".join(f" {o}" for o in args.overrides or []))


def run(args) -> int:
    from temstream.cli import UsageError
    from temstream.evaluation import evaluate

    config = config_from_args(args)
    if args.movies < 1 or args.frames < 1:
        raise UsageError("--movies and --frames must be at least 1")
    try:
        report = evaluate(args.model or ["default"], args.data, config=config,
                          doses=args.doses.split(","), frames=args.frames, movies=args.movies,
                          size=args.size, seed=args.seed, truth=args.truth,
                          backend=args.backend, tta=args.tta, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    print(report.text())
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # OUT names both files; only a .md or .png ending is replaced ("eval_t0.5" keeps ".5")
        stem = out.with_suffix("") if out.suffix in (".md", ".png") else out
        md, png = stem.parent / f"{stem.name}.md", stem.parent / f"{stem.name}.png"
        report.header = {"Command": f"`{_command(args)}`", **report.header}
        md.write_text(report.to_markdown())
        report.figure(png)
        print(f"wrote {md} and {png}")
    return 0
