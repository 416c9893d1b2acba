"""Score the held-out folds of an earlier ``temstream finetune --folds K`` run again, through
today's pipeline stages (no training): what the fine-tuning table would read after a change to
the instance stage.

Folds are split as ``temstream finetune`` splits them (``numpy.array_split`` of the images in
load order), so fold K's checkpoint ``RUN/foldK`` is scored only on the images it never saw,
beside ``classical`` and the starting model.

    python scripts/rescore_finetune_folds.py "$TEMSTREAM_REAL_DATA" runs/ft [--folds 4] [--model default]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", help="the labelled folder the run was fine-tuned on")
    p.add_argument("run", help="the --out folder of that run (with fold1 ... foldK)")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--model", default="default", help="the run's starting model")
    args = p.parse_args(argv)

    from temstream.config import load_config
    from temstream.evaluation import evaluate_real, load_model
    from temstream.evaluation.report import difference_table, summary_table
    from temstream.models.training.realdata import load_msa_em

    pairs = load_msa_em(args.images)
    config = load_config()
    base = replace(load_model(args.model, config, backend="torch"), name=args.model)
    rows = []
    for k, held in enumerate(np.array_split(np.arange(len(pairs)), args.folds)):
        fold = Path(args.run) / f"fold{k + 1}"
        models = {"classical": load_model("classical", config), args.model: base,
                  "fine-tuned": replace(load_model(str(fold), config, backend="torch"),
                                        name="fine-tuned")}
        r, _ = evaluate_real(models, [pairs[i] for i in held], label=f"fold {k + 1}")
        rows += r
    print(summary_table(rows))
    print(difference_table(rows, reference=args.model, models=["fine-tuned"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
