"""Instance-stage settings compared on the same network outputs: real labelled folders,
temstream's simulated movies and the independent renderer (``benchmarks/independent.py``).

The network runs once per frame; each variant of ``[instances]`` then extracts the particles
from the same probabilities. Pooled Dice, object F1 (IoU >= 0.5) and the area bias of the
matched particles (mean predicted / true area - 1) per data set.

    python benchmarks/compare_instance_settings.py --real DIR [--real DIR] \\
        --variant outline=expected-dice --variant outline=edge-model,min_contrast_z=5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from independent import random_particles, render  # noqa: E402
from score_detection import matched_areas  # noqa: E402

from temstream.config import load_config  # noqa: E402
from temstream.config.schema import parse_overrides  # noqa: E402
from temstream.models import load_segmenter  # noqa: E402
from temstream.models.training.realdata import load_msa_em  # noqa: E402
from temstream.pipeline.stages import Instances  # noqa: E402


def datasets(args):
    for folder in args.real:
        pairs = load_msa_em(folder)
        yield f"real {Path(folder).name}", [p[1] for p in pairs], [p[2] for p in pairs]
    from temstream.sim import simulate

    frames, truths = [], []
    for scen in ("dispersed", "assembly", "etching", "hex-lattice", "cube-lattice",
                 "sparse-large", "flow"):
        for seed in range(7, 7 + args.movies):
            mv = simulate(scen, frames=2, size=256, seed=seed)
            frames += list(mv.frames)
            truths += list(mv.labels)
    yield "temstream.sim moderate", frames, truths
    frames, truths = [], []
    for k in range(args.movies * 4):
        rng = np.random.default_rng(2000 + k)
        ps = random_particles(rng, (256, 256), 14)
        f, t = render((256, 256), ps, dose=200.0, seed=k, sigma=rng.uniform(0.7, 1.8),
                      tail=rng.uniform(1.0, 4.0),
                      detector="integrating" if k % 2 else "counting")
        frames.append(f)
        truths.append(t)
    yield "independent renderer", frames, truths


def score(labels_list, truths):
    tp = fp = fn = 0
    otp = ofp = ofn = 0
    areas = []
    for pred, truth in zip(labels_list, truths):
        truth = np.asarray(truth)
        if truth.dtype == bool:
            from scipy import ndimage
            truth, _ = ndimage.label(truth, structure=np.ones((3, 3)))
        a, b = pred > 0, truth > 0
        tp += np.count_nonzero(a & b)
        fp += np.count_nonzero(a & ~b)
        fn += np.count_nonzero(~a & b)
        m = matched_areas(pred, truth)
        areas += m
        otp += len(m)
        ofp += len(np.unique(pred[pred > 0])) - len(m)
        ofn += len(np.unique(truth[truth > 0])) - len(m)
    bias = np.mean([p / t - 1 for t, p in areas]) if areas else np.nan
    return 2 * tp / max(2 * tp + fp + fn, 1), 2 * otp / max(2 * otp + ofp + ofn, 1), bias


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--real", action="append", default=[], help="labelled folder")
    ap.add_argument("--movies", type=int, default=2)
    ap.add_argument("--variant", action="append", default=[],
                    help="comma-separated [instances] KEY=VALUE (default: the defaults)")
    args = ap.parse_args()
    base = load_config().instances
    variants = {v: base.replace(**parse_overrides(v.split(","))) if v else base
                for v in (args.variant or [""])}
    seg = load_segmenter(args.model, backend="torch")
    print("| data | variant | Dice | object F1 | area bias |")
    print("|---|---|---|---|---|")
    for name, frames, truths in datasets(args):
        probs = [seg(f) for f in frames]
        for v, settings in variants.items():
            stage = Instances(settings, classes=seg.classes, threshold=seg.threshold)
            labels = [stage(p, f)[0] for p, f in zip(probs, frames)]
            d, f1, b = score(labels, truths)
            print(f"| {name} | {v or 'defaults'} | {d:.3f} | {f1:.3f} | {b:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
