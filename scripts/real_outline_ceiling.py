"""How close can outlines drawn from the image come to the hand-drawn msa-em labels?

Each rule below redraws the *labelled* particles themselves (perfect detection: every particle
found, nothing else) and is scored against the labels, pooled over the 20 images. That is the
most any pipeline using the rule can reach on these images, however good its network; the
shipped pipeline (`default`, half-contrast outlines, faint-particle rule) is printed beside it.

- ``dilate/erode 1 px``: the labels themselves, one pixel wider or narrower all round (what a
  one-pixel edge error costs);
- ``half-contrast``: :func:`temstream.tracking.edges.half_contrast_outlines`, the rule behind
  ``instances.outline = "half-contrast"``, at the shipped level and smoothing, and the best of a
  grid of levels and smoothings (chosen on these same images: an optimistic bound);
- ``Chan-Vese``: scikit-image's morphological Chan-Vese active contour (20 iterations, contour
  smoothing 4, on the unsmoothed frame; settings chosen on these images) started from each
  label on a crop 12 px around it, and the same started from the shipped pipeline's particles
  (an active contour settles near where it starts: how much of its score is the start);
- ``gradient watershed``: a marker watershed on the gradient magnitude, markers the labels
  eroded by 3 px and the background beyond 3 px of them.

Takes about a minute on two CPU cores.

Usage: python scripts/real_outline_ceiling.py [--data MSA_EM_FOLDER]  (default: $TEMSTREAM_REAL_DATA)
"""

from __future__ import annotations

import argparse
import itertools

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import morphological_chan_vese, watershed

from temstream.config import load_config
from temstream.evaluation import load_model
from temstream.models.training.realdata import default_real_dir, load_msa_em
from temstream.tracking.edges import LEVEL, SMOOTH_PX, half_contrast_outlines

LEVELS = (0.4, 0.45, 0.5, 0.55)
SMOOTHINGS = (3.0, 4.0, 5.0, 6.0)
MARGIN_PX = 12


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def chan_vese(image: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Each labelled particle's Chan-Vese contour, started from its label, on a crop around it."""
    image = image.astype(np.float64)
    out = np.zeros(labels.shape, bool)
    for j, box in enumerate(ndi.find_objects(labels, n), start=1):
        if box is None:  # ids need not be consecutive
            continue
        crop = tuple(slice(max(s.start - MARGIN_PX, 0), s.stop + MARGIN_PX) for s in box)
        own = labels[crop] == j
        drawn = morphological_chan_vese(image[crop], 20, init_level_set=own, smoothing=4)
        drawn = drawn.astype(bool)
        pieces, k = ndi.label(drawn)
        if k:  # the piece that overlaps the label most; the rest is other particles or texture
            overlap = np.bincount(pieces[own], minlength=k + 1)
            overlap[0] = 0
            drawn = pieces == overlap.argmax()
        out[crop] |= drawn & ~((labels[crop] > 0) & ~own)
    return out


def gradient_watershed(image: np.ndarray, labels: np.ndarray, n: int, band_px: int = 3):
    """Marker watershed on the gradient magnitude between each label's core and the far
    background."""
    gradient = ndi.gaussian_gradient_magnitude(image.astype(np.float64), 2.0)
    fg = (labels > 0).astype(np.uint8)
    markers = np.where(cv2.erode(fg, _disk(band_px)) > 0, labels, 0)
    markers[cv2.dilate(fg, _disk(band_px)) == 0] = n + 1
    lost = np.setdiff1d(np.arange(1, n + 1), markers)  # too thin for a core: kept as labelled
    thin = np.isin(labels, lost)
    markers[thin] = labels[thin]
    drawn = watershed(gradient, markers)
    return (drawn > 0) & (drawn <= n)


def pooled_dice(masks, truths) -> float:
    tp = sum(int((m & t).sum()) for m, t in zip(masks, truths))
    total = sum(int(m.sum()) + int(t.sum()) for m, t in zip(masks, truths))
    return 2 * tp / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="msa-em-train folder (default: $TEMSTREAM_REAL_DATA)")
    args = ap.parse_args()
    pairs = load_msa_em(args.data or default_real_dir())
    images = [img.astype(np.float32) for _, img, _ in pairs]
    truths = [lab > 0 for _, _, lab in pairs]
    labelled = [ndi.label(t) for t in truths]
    rows = []

    def add(rule, masks, start="the labels", note=""):
        rows.append((rule, start, pooled_dice(masks, truths), note))
        print(f"  {rule} from {start}: {rows[-1][2]:.4f}", flush=True)

    model = load_model("default@instances.outline=half-contrast", load_config(), backend="torch")
    found = [model.labels(model.probabilities(img[None])[0], img) for img in images]
    pipeline = "the pipeline's particles"
    add("shipped pipeline (`default`, half-contrast, faint rule)", [f > 0 for f in found],
        pipeline)
    add("dilated 1 px", [cv2.dilate(t.view(np.uint8), _disk(1)) > 0 for t in truths])
    add("eroded 1 px", [cv2.erode(t.view(np.uint8), _disk(1)) > 0 for t in truths])
    grid = {}
    for level, smooth in itertools.product(LEVELS, SMOOTHINGS):
        grid[level, smooth] = pooled_dice(
            [half_contrast_outlines(img, lab, level=level, smooth_px=smooth) > 0
             for img, (lab, _) in zip(images, labelled)], truths)
    add(f"half-contrast, shipped (level {LEVEL}, smoothing {SMOOTH_PX} px)",
        [half_contrast_outlines(img, lab) > 0 for img, (lab, _) in zip(images, labelled)])
    (level, smooth), best = max(grid.items(), key=lambda kv: kv[1])
    rows.append((f"half-contrast, best of the grid (level {level}, smoothing {smooth} px)",
                 "the labels", best,
                 f"levels {LEVELS} x smoothings {SMOOTHINGS} px, chosen on these images"))
    print(f"  {rows[-1][0]}: {best:.4f}")
    add("Chan-Vese",
        [chan_vese(img, lab, n) for img, (lab, n) in zip(images, labelled)])
    add("Chan-Vese", [chan_vese(img, f, int(f.max())) for img, f in zip(images, found)],
        pipeline)
    add("gradient watershed (± 3 px)",
        [gradient_watershed(img, lab, n) for img, (lab, n) in zip(images, labelled)])
    print("\n| outline rule | started from | pooled Dice vs labels | note |")
    print("|---|---|---|---|")
    for rule, start, dice, note in rows:
        print(f"| {rule} | {start} | {dice:.3f} | {note} |")


if __name__ == "__main__":
    main()
