"""Write docs/sim_scenarios.png: one frame of each simulator scenario beside its ground truth.

Usage: python scripts/make_sim_figure.py [--size 512] [--frame 5] [--out docs/sim_scenarios.png]
"""

from __future__ import annotations

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.color import label2rgb  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from temstream.sim import SCENARIOS, iter_movie  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frame", type=int, default=5, help="which frame of each movie to show")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="docs/sim_scenarios.png")
    args = ap.parse_args()
    names = list(SCENARIOS)
    fig, axes = plt.subplots(len(names), 2, figsize=(8, 4 * len(names)))
    for row, name in zip(axes, names):
        for f in iter_movie(name, size=args.size, seed=args.seed, frames=args.frame + 1):
            pass
        img = f.image.astype(np.float32)
        lo, hi = np.percentile(img, [0.5, 99.5])
        row[0].imshow(img, cmap="gray", vmin=lo, vmax=hi)
        p = SCENARIOS[name]["pixel_size_nm"]
        row[0].set_title(f"{name}: frame {f.index}, {p:g} nm/px, "
                         f"{SCENARIOS[name]['dose_e_per_A2']:g} e/Å²", fontsize=9)
        if f.layers is not None:
            rgb = np.zeros(f.labels.shape + (3,))
            rgb[..., 0] = f.layers[0]
            rgb[..., 2] = f.layers[1]
            rgb[..., 1] = 0.3 * (f.layers[0] & f.layers[1])
        else:
            rgb = label2rgb(f.labels, bg_label=0)
            rgb[find_boundaries(f.labels, mode="inner")] = 0.0
        row[1].imshow(rgb)
        row[1].plot(f.truth.x, f.truth.y, "w+", ms=4)
        row[1].set_xlim(-0.5, img.shape[1] - 0.5)
        row[1].set_ylim(img.shape[0] - 0.5, -0.5)
        row[1].set_title(f"truth: {len(f.truth)} particles"
                         + (" (red A, blue B)" if f.layers is not None else ""), fontsize=9)
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    fig.tight_layout()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
