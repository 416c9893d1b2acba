"""``temstream train``: train a U-Net on simulated data, write a checkpoint with its card."""

from __future__ import annotations

import logging

from temstream.cli._common import new_parser, training_overrides

log = logging.getLogger(__name__)


def add_parser(sub):
    parser = new_parser(
        sub, "train", "train a segmentation U-Net on simulated movies",
        "temstream train --preset default --out runs/default steps=4000 seed=0",
        description="Train a U-Net on on-the-fly simulated frames (temstream.sim) and write "
                    "model.safetensors + model.json (model card) into --out. Trailing KEY=VALUE "
                    "pairs override training options (e.g. steps=500 batch=4 lr=1e-3); --config "
                    "reads them from the [train] table of a TOML file.")
    parser.add_argument("--preset", default="default",
                        help="training preset: default, bilayer, groschner, smoke, denoise "
                             "(the low-dose denoiser, docs/denoise.md)")
    parser.add_argument("--out", required=True, help="output folder for the checkpoint")
    parser.add_argument("--real", metavar="DIR", default=None,
                        help="real labelled images for validation, a folder with images/ and "
                             "labels/ (default: $TEMSTREAM_REAL_DATA; none: reported only, "
                             "they select nothing)")
    parser.add_argument("--no-real", action="store_true", help="skip real-image validation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    import os
    from functools import partial

    # the machine may be shared: spinning OpenMP workers make oversubscription very slow
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from temstream.cli import UsageError
    from temstream.models.training.realdata import default_real_dir, load_msa_em
    from temstream.models.training.train import simulated_validation, train, training_preset
    from temstream.sim.training import denoise_windows, training_pairs

    try:
        cfg = training_preset(args.preset, **training_overrides(args))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if cfg.task == "denoise":
        make_pairs = partial(denoise_windows, size=cfg.size)
    else:
        make_pairs = partial(training_pairs, size=cfg.size, task=cfg.task, bubbles=cfg.bubbles)
    real = None
    if cfg.task == "particles" and not args.no_real:
        real_dir = args.real or default_real_dir()
        if real_dir is None:
            log.warning("no real validation images found; set --real DIR or --no-real")
        else:
            real = load_msa_em(real_dir)
    val = simulated_validation(make_pairs, cfg)
    _, card = train(cfg, make_pairs(cfg.seed), val, real=real, out=args.out,
                    progress=not args.no_progress)
    m = card.metrics
    if cfg.task == "denoise":
        print(f"{card.name}: sim val PSNR gain {m['sim_val_psnr_gain_db']:.2f} dB over the raw "
              f"frames -> {args.out}")
        return 0
    print(f"{card.name}: sim val Dice {m['sim_val_dice']:.4f} at threshold {card.threshold:.2f}"
          + (f", real msa-em Dice {m['real_msa_em_dice']:.4f}" if "real_msa_em_dice" in m else "")
          + f" -> {args.out}")
    return 0
