"""Detection on frames rendered independently of temstream.sim (``benchmarks/independent.py``):
sizes, empty fields and a large faint particle.

Tables (each model through the stages a live run builds, ``temstream.evaluation.load_model``):

1. particles of one shape (spheres, cubes, hexagonal platelets, rods) at a moderate and a low
   dose: pixel Dice, object F1 (IoU >= 0.5), area bias (mean predicted / true area - 1 over the
   matched particles; the truth is each particle's projected extent);
2. empty fields (liquid and noise; diffuse contamination; a counting detector at 0-4 counts
   per pixel): false particles per frame;
3. one rod of ~70 x 25 px at a per-pixel contrast-to-noise of ~0.9 in 1024^2 frames: object
   F1 and false particles per frame.

    python benchmarks/score_detection.py [--frames 6] [--model default ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from independent import Particle, random_particles, render  # noqa: E402

from temstream.config import load_config  # noqa: E402
from temstream.evaluation import load_model  # noqa: E402


def matched_areas(pred, truth):
    """(true area, predicted area) of every true particle matched at IoU >= 0.5."""
    out = []
    for t in np.unique(truth[truth > 0]):
        mask = truth == t
        ids, counts = np.unique(pred[mask], return_counts=True)
        keep = ids > 0
        if not keep.any():
            continue
        p = ids[keep][np.argmax(counts[keep])]
        inter = counts[keep].max()
        pa = np.count_nonzero(pred == p)
        if inter / (mask.sum() + pa - inter) >= 0.5:
            out.append((mask.sum(), pa))
    return out


def score(model, frames, truths):
    """Pooled Dice, object F1 and area bias of one model over frames."""
    tp = fp = fn = 0
    otp = ofp = ofn = 0
    areas = []
    for frame, truth in zip(frames, truths):
        probs = model.probabilities(frame[None])[0]
        pred = model.labels(probs, frame)
        a, b = pred > 0, truth > 0
        tp += np.count_nonzero(a & b)
        fp += np.count_nonzero(a & ~b)
        fn += np.count_nonzero(~a & b)
        m = matched_areas(pred, truth)
        areas += m
        n_pred = len(np.unique(pred[pred > 0]))
        n_true = len(np.unique(truth[truth > 0]))
        otp += len(m)
        ofp += n_pred - len(m)
        ofn += n_true - len(m)
    dice = 2 * tp / max(2 * tp + fp + fn, 1)
    f1 = 2 * otp / max(2 * otp + ofp + ofn, 1)
    bias = float(np.mean([p / t for t, p in areas]) - 1) if areas else float("nan")
    return dice, f1, bias


def shape_sets(n_frames, size=256):
    for shape in ("sphere", "cube", "platelet", "rod"):
        for dose_name, dose in (("moderate", 200.0), ("low", 20.0)):
            frames, truths = [], []
            for k in range(n_frames):
                rng = np.random.default_rng(1000 + k)
                ps = random_particles(rng, (size, size), 14, shapes=(shape,))
                f, t = render((size, size), ps, dose=dose, seed=k,
                              sigma=rng.uniform(0.7, 1.8), tail=rng.uniform(1.0, 4.0),
                              detector="integrating" if k % 2 else "counting")
                frames.append(f)
                truths.append(t)
            yield f"{shape}s", dose_name, frames, truths


def empty_sets(n_frames, size=256):
    sets = {"liquid + noise": dict(dose=200.0, detector="integrating"),
            "diffuse contamination": dict(dose=200.0, detector="integrating", blobs=3),
            "counting, 0-4 counts/px": dict(dose=1.5, detector="counting")}
    for name, kw in sets.items():
        frames = [render((size, size), [], seed=k, sigma=1.2, **kw)[0] for k in range(n_frames)]
        yield name, frames


def faint_rod_frames(n_frames, size=1024):
    frames, truths = [], []
    for k in range(n_frames):
        rng = np.random.default_rng(50 + k)
        rod = Particle("rod", rng.uniform(300, 700), rng.uniform(300, 700), 12.5,
                       rng.uniform(0, np.pi), 22.5, mfp=110.0)
        f, t = render((size, size), [rod], dose=24.0, seed=k, sigma=1.0,
                      detector="counting", variation=0.03)
        frames.append(f)
        truths.append(t)
    return frames, truths


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6, help="frames per set")
    ap.add_argument("--model", action="append", default=[],
                    help="NAME[@KEY=VALUE] as for temstream evaluate (default: classical, "
                         "default, default@instances.outline=half-contrast)")
    args = ap.parse_args()
    names = args.model or ["classical", "default", "default@instances.outline=half-contrast"]
    config = load_config()
    models = {n: load_model(n, config, backend="torch") for n in names}
    print("| particles | dose | model | Dice | object F1 | area bias |")
    print("|---|---|---|---|---|---|")
    for shape, dose, frames, truths in shape_sets(args.frames):
        for name, m in models.items():
            d, f1, b = score(m, frames, truths)
            print(f"| {shape} | {dose} | {name} | {d:.3f} | {f1:.3f} | {b:+.1%} |")
    print("\n| empty field | model | false particles per frame |")
    print("|---|---|---|")
    for field, frames in empty_sets(args.frames):
        for name, m in models.items():
            n = [len(np.unique(m.labels(m.probabilities(f[None])[0], f))) - 1 for f in frames]
            print(f"| {field} | {name} | {np.mean(n):.2f} |")
    print("\n| large faint rod, 1024² | model | object F1 | false particles per frame |")
    print("|---|---|---|---|")
    frames, truths = faint_rod_frames(max(2, args.frames // 2))
    for name, m in models.items():
        _, f1, _ = score(m, frames, truths)
        false = []
        for f, t in zip(frames, truths):
            pred = m.labels(m.probabilities(f[None])[0], f)
            false.append(len(np.unique(pred[pred > 0])) - len(matched_areas(pred, t)))
        print(f"| CNR ~0.9 | {name} | {f1:.3f} | {np.mean(false):.2f} |")


if __name__ == "__main__":
    main()
