"""``temstream finetune``: adapt a trained U-Net to a few labelled images of one's own."""

from __future__ import annotations

import logging
from pathlib import Path

from temstream.cli._common import new_parser

log = logging.getLogger(__name__)


def add_parser(sub):
    parser = new_parser(
        sub, "finetune", "fine-tune a model on your own labelled images (with cross-validation)",
        "temstream finetune my-labels --model default --folds 4 --out runs/ft",
        description="Fine-tune a trained U-Net (default: the shipped 'default') on labelled "
                    "images: a folder with images/image_K.png and labels/label_K.png (255 = "
                    "particle). With --folds K, first K-fold cross-validation: each fold is "
                    "trained on the other images and scored on its own, beside classical and "
                    "the model before fine-tuning, so the gain is measured on images the "
                    "network never saw; then the final model is trained on all images and "
                    "written to --out (model.safetensors + model.json, usable as --model OUT). "
                    "Trailing KEY=VALUE pairs override training options (e.g. steps=300).")
    parser.add_argument("images", metavar="DIR", help="folder with images/ and labels/")
    parser.add_argument("--model", default="default", help="model to start from (name or path)")
    parser.add_argument("--folds", type=int, default=4,
                        help="cross-validation folds (0: no cross-validation)")
    parser.add_argument("--out", required=True, help="output folder for the fine-tuned model")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def _fit(cfg, pairs, held_out, out, progress, command):
    from temstream.models.training.realdata import labelled_image_pairs
    from temstream.models.training.train import train
    from temstream.sim.training import particle_target

    stream = labelled_image_pairs(pairs, cfg.seed, size=cfg.size, target_fn=particle_target)
    val = [(image, mask.astype("uint8")) for _, image, mask in pairs]
    return train(cfg, stream, val, real=held_out or None, out=out, progress=progress,
                 val_name="train_images", command=command)


def run(args) -> int:
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np

    from dataclasses import replace

    from temstream.cli import UsageError
    from temstream.cli._common import training_overrides
    from temstream.config import load_config
    from temstream.evaluation import evaluate_real, load_model
    from temstream.evaluation.report import difference_table, markdown_table, summary_table
    from temstream.models.checkpoints import read_card
    from temstream.models.training.realdata import load_msa_em
    from temstream.models.training.train import training_preset

    try:
        pairs = load_msa_em(args.images)
        cfg = training_preset("finetune", **{"init": args.model, **training_overrides(args)})
        base_card = read_card(args.model)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if "boundary" not in base_card.classes:
        raise UsageError(f"model {args.model!r} has classes {base_card.classes}; fine-tuning "
                         "on masks needs a particle model with the boundary class")
    if args.folds == 1 or args.folds > len(pairs):
        raise UsageError(f"--folds must be 0 or 2..{len(pairs)}")
    command = (f"temstream finetune {args.images} --model {args.model} --folds {args.folds} "
               f"--out {args.out}" + "".join(f" {o}" for o in args.overrides or []))
    out = Path(args.out)
    config = load_config()  # scored through the stages a live run builds
    rows = []
    if args.folds:
        folds = np.array_split(np.arange(len(pairs)), args.folds)
        for k, held in enumerate(folds):
            test = [pairs[i] for i in held]
            fit = [pairs[i] for i in np.setdiff1d(np.arange(len(pairs)), held)]
            print(f"fold {k + 1}/{args.folds}: training on {len(fit)} images, "
                  f"testing on {', '.join(p[0] for p in test)}")
            fold_dir = out / f"fold{k + 1}"
            _fit(cfg.replace(name=f"{cfg.name}-fold{k + 1}"), fit, test, fold_dir,
                 not args.no_progress, command)
            models = {"classical": load_model("classical", config),
                      args.model: replace(load_model(args.model, config, backend="torch"),
                                          name=args.model),
                      "fine-tuned": replace(load_model(str(fold_dir), config, backend="torch"),
                                            name="fine-tuned")}
            r, _ = evaluate_real(models, test, label=f"fold {k + 1}")
            rows += r
    print(f"final: training on all {len(pairs)} images")
    _, card = _fit(cfg, pairs, None, out, not args.no_progress, command)
    text = f"# Fine-tuning {args.model} on {args.images}\n\nCommand: `{command}`\n\n"
    if rows:
        # folds are the strata, their held-out images the resampled units
        means = ("Mean over folds (95 % intervals: bootstrap over the held-out images):\n\n"
                 + summary_table(rows) + "\nGain from fine-tuning (paired, same images):\n\n"
                 + difference_table(rows, reference=args.model, models=["fine-tuned"]))
        text += ("Held-out scores (each fold's images were not trained on):\n\n"
                 + markdown_table(rows) + "\n" + means + "\n")
        print(markdown_table(rows))
        print(means)
    text += (f"Final model: threshold {card.threshold:.2f}, training-image Dice "
             f"{card.metrics['train_images_val_dice']:.4f}, {card.training['steps_run']} steps.\n")
    (out / "finetune.md").write_text(text)
    print(f"wrote {out / 'model.safetensors'}, {out / 'model.json'} and {out / 'finetune.md'}")
    return 0

