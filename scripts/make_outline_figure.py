"""Write docs/outlines.png: real particles outlined by hand, by `default` and at half contrast.

Each panel is a crop of one msa-em image with three contours: the hand-drawn label (cyan),
`default`'s outline (per-frame expected-Dice threshold, red) and the same particles redrawn at
half of their own contrast (`instances.outline = "half-contrast"`, yellow).

Usage: python scripts/make_outline_figure.py [--data MSA_EM_FOLDER] [--out docs/outlines.png]
(the folder defaults to $TEMSTREAM_REAL_DATA)
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from temstream.config import load_config  # noqa: E402
from temstream.evaluation import load_model  # noqa: E402
from temstream.models.training.realdata import default_real_dir, load_msa_em  # noqa: E402

#: (image, row, column, side): crops with a faint particle, touching ones and large dark ones
CROPS = [("image_3", 140, 0, 200), ("image_13", 250, 250, 200), ("image_18", 0, 300, 200)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="msa-em-train folder (default: $TEMSTREAM_REAL_DATA)")
    ap.add_argument("--out", default="docs/outlines.png")
    args = ap.parse_args()
    pairs = {name: (img, lab) for name, img, lab in
             load_msa_em(args.data or default_real_dir())}
    config = load_config()
    models = {rule: load_model(f"default@instances.outline={rule}", config, backend="torch")
              for rule in ("expected-dice", "half-contrast")}
    fig, axes = plt.subplots(1, len(CROPS), figsize=(4.2 * len(CROPS), 4.5))
    for ax, (name, r0, c0, side) in zip(axes, CROPS):
        img, truth = pairs[name]
        probs = models["expected-dice"].probabilities(img[None])[0]
        crop = np.s_[r0:r0 + side, c0:c0 + side]
        ax.imshow(img[crop], cmap="gray")
        for mask, colour in [(truth, "cyan"),
                             (models["expected-dice"].labels(probs, img) > 0, "red"),
                             (models["half-contrast"].labels(probs, img) > 0, "yellow")]:
            ax.contour(mask[crop].astype(float), [0.5], colors=colour, linewidths=1.0)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("hand-drawn (cyan), default (red), half-contrast outlines (yellow)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
