"""Instance extraction ms/frame against its peers (2-core CPU).

Random filled disks (r 3-12 px, ~15 % foreground) in 2-class probabilities at
512^2, 1024^2, 2048^2. The first table times the labelling alone (temstream's ``label_mask``,
OpenCV components + a numba pass for the boxes, against ``scipy.ndimage.label`` +
``find_objects``) and the whole extraction against the plain scikit-image route (label +
regionprops_table with area, centroid, perimeter, eccentricity; fewer properties, no n-fold
angle). Prints a Markdown table; a second one
times the boundary-class route (seeded growth) with and without merging seed fragments
(``merge_below``) and the confidence filter (``min_score``), on the same disks with a speckled
P(particle); a third the pipeline's Instances stage with the per-frame expected-Dice outline
(``instances.outline``) and the half-contrast outlines redrawn from the frame (a noisy image of
the same disks) against outlines at the threshold, on those disks in a ring of unsure pixels;
a fourth the half-contrast stage with and without the test that keeps faint particles the
frame shows clearly (``instances.faint_contrast_z``), with a third of the disks below
``min_score``; a fifth the same stage with and without the search for particles the network
saw only below its threshold (``instances.faint_threshold`` = 0.1), with a third of the disks
at P(particle) = 0.2.

    python benchmarks/bench_instances.py [--quick]
"""

import argparse
import time

import numpy as np
from scipy import ndimage
from skimage.draw import disk
from skimage.measure import label, regionprops_table

from temstream.config.schema import InstancesConfig
from temstream.pipeline.stages import Instances
from temstream.tracking.instances import extract_instances, label_mask


def frame(size, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), bool)
    n = int(0.15 * size * size / (np.pi * 7.5 ** 2) * 1.15)
    for _ in range(n):
        rr, cc = disk(rng.uniform(0, size, 2), rng.uniform(3, 12), shape=mask.shape)
        mask[rr, cc] = True
    p = np.empty((2, size, size), np.float32)
    p[1] = np.where(mask, 0.9, 0.05) + rng.uniform(-0.04, 0.04, mask.shape)
    p[0] = 1 - p[1]
    return p


def boundary_frame(size, seed=0):
    """3-class (background, particle, boundary) probabilities of the same disks, P(particle)
    speckled inside them so that the confident seeds fragment."""
    rng = np.random.default_rng(seed)
    fg = frame(size, seed)[1] > 0.5
    p = np.zeros((3, size, size), np.float32)
    dips = ndimage.gaussian_filter(rng.normal(size=fg.shape), 2.0) < -0.1   # blotches ~5 px
    p[1] = np.where(fg, np.where(dips, 0.7, 0.95), 0)
    p[2] = np.where(fg, 0.03, 0)
    p[0] = 1 - p[1] - p[2]
    return p


def ringed_frame(size, seed=0):
    """:func:`boundary_frame` with a 1-px ring at P(particle) = 0.36 around every disk (the
    too-wide edge the expected-Dice outline trims)."""
    p = boundary_frame(size, seed)
    fg = p[0] < 0.5
    ring = ndimage.binary_dilation(fg) & ~fg
    p[1][ring], p[2][ring] = 0.36, 0.02
    p[0] = 1 - p[1] - p[2]
    return p


def _every_third_at(p, p_particle):
    """``p`` with every third disk at P(particle) = ``p_particle``."""
    labels, n = ndimage.label(p[0] < 0.5)
    third = (labels % 3 == 0) & (labels > 0)
    p[1][third], p[2][third] = p_particle, 0.02
    p[0] = 1 - p[1] - p[2]
    return p


def faint_frame(size, seed=0):
    """:func:`ringed_frame` with every third disk at P(particle) = 0.5 (below ``min_score``)."""
    return _every_third_at(ringed_frame(size, seed), 0.5)


def unseen_frame(size, seed=0):
    """:func:`ringed_frame` with every third disk at P(particle) = 0.2 (below the threshold)."""
    return _every_third_at(ringed_frame(size, seed), 0.2)


def disks_image(p, seed=0):
    """A Poisson frame of the particles in ``p``: dark soft-edged disks on 1,000 counts."""
    fg = ndimage.gaussian_filter((p[0] < 0.5).astype(np.float32), 1.5)
    return np.random.default_rng(seed).poisson(1000.0 - 400.0 * fg).astype(np.uint16)


def best(fn, repeat):
    t = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512^2 and 1024^2 only, fewer repeats")
    args = ap.parse_args()
    plain = InstancesConfig(outline="threshold", min_area=8, min_score=0.0, seed_threshold=0.0,
                            min_seed_area=0, merge_below=0.0)
    extract_instances(frame(64), plain)                # load the numba cache
    print("| size | particles | label_mask ms | scipy label + find_objects ms "
          "| extract_instances ms | skimage label + regionprops_table ms "
          "| speed-up of extract_instances vs regionprops |")
    print("|---|---|---|---|---|---|---|")
    for size in (512, 1024) if args.quick else (512, 1024, 2048):
        p = frame(size)
        rep = (3 if args.quick else 10) if size < 2048 else 3
        n = len(extract_instances(p, plain)[1]["x"])
        t_label = best(lambda: label_mask(p[1] > 0.5), rep)

        def scipy_label():
            lab, _ = ndimage.label(p[1] > 0.5, structure=np.ones((3, 3)))
            ndimage.find_objects(lab)
        t_scipy = best(scipy_label, rep)
        t_ours = best(lambda: extract_instances(p, plain), rep)

        def sk():
            lab = label(p[1] > 0.5, connectivity=2)
            regionprops_table(lab, properties=("area", "centroid", "perimeter", "eccentricity"))
        t_sk = best(sk, max(1, rep // 3))
        print(f"| {size}² | {n} | {t_label:.2f} | {t_scipy:.2f} | {t_ours:.2f} | {t_sk:.1f} "
              f"| {t_sk / t_ours:.0f}x |")
    print()
    print("| size | seeded growth ms (instances) | + merging fragments ms (instances) | cost "
          "| + min_score 0.65 ms | cost |")
    print("|---|---|---|---|---|---|")
    kw = dict(classes=("background", "particle", "boundary"), threshold=0.35)
    seeded = plain.replace(seed_threshold=0.85, min_seed_area=10, min_area=24)
    merged = seeded.replace(merge_below=0.5, merge_share=0.2)
    scored = merged.replace(min_score=0.65)
    for size in (512, 1024) if args.quick else (512, 1024, 2048):
        p = boundary_frame(size)
        rep = (3 if args.quick else 10) if size < 2048 else 3
        n0 = len(extract_instances(p, seeded, **kw)[1]["x"])
        n1 = len(extract_instances(p, merged, **kw)[1]["x"])
        t0 = best(lambda: extract_instances(p, seeded, **kw), rep)
        t1 = best(lambda: extract_instances(p, merged, **kw), rep)
        t2 = best(lambda: extract_instances(p, scored, **kw), rep)
        print(f"| {size}² | {t0:.2f} ({n0}) | {t1:.2f} ({n1}) | +{t1 - t0:.2f} ms "
              f"| {t2:.2f} | +{t2 - t1:.2f} ms |")
    print()
    print("| size | Instances stage, outlines at the threshold ms | expected-Dice outlines ms "
          "| cost | foreground px kept | half-contrast outlines (faint dropped) ms | cost |")
    print("|---|---|---|---|---|---|---|")
    at_threshold = Instances(scored.replace(outline="threshold"), **kw)
    expected_dice = Instances(scored.replace(outline="expected-dice"), **kw)
    half_contrast = Instances(scored.replace(outline="half-contrast", faint_contrast_z=0.0),
                              **kw)  # 4th table
    expected_dice(ringed_frame(64))                    # load the numba cache
    for size in (512, 1024) if args.quick else (512, 1024, 2048):
        p = ringed_frame(size)
        rep = (3 if args.quick else 10) if size < 2048 else 3
        kept = np.count_nonzero(expected_dice(p)[0]) / np.count_nonzero(at_threshold(p)[0])
        t0 = best(lambda: at_threshold(p), rep)
        t1 = best(lambda: expected_dice(p), rep)
        image = disks_image(p)
        t2 = best(lambda: half_contrast(p, image), rep)
        print(f"| {size}² | {t0:.2f} | {t1:.2f} | +{t1 - t0:.2f} ms | {kept:.0%} "
              f"| {t2:.2f} | +{t2 - t0:.2f} ms |")
    print()
    print("| size | particles (faint) | half-contrast, faint dropped ms | faint kept when z >= 5 "
          "ms | cost | faint kept |")
    print("|---|---|---|---|---|---|")
    rescue = Instances(scored.replace(outline="half-contrast", faint_contrast_z=5.0), **kw)
    _compare(half_contrast, rescue, half_contrast, faint_frame, disks_image, args)
    print()
    print("| size | particles (seen below the threshold) | half-contrast ms | + search below the "
          "threshold (0.1) ms | cost | found |")
    print("|---|---|---|---|---|---|")
    search = Instances(scored.replace(outline="half-contrast", faint_contrast_z=5.0,
                                      faint_threshold=0.1), **kw)
    _compare(rescue, search, half_contrast, unseen_frame,
             lambda p: disks_image(ringed_frame(p.shape[-1])), args)  # every disk in the frame


def _compare(before, after, reference, make_frame, image_of, args):
    """One row per size: particles in all (missing from ``before``), ms of each stage, and
    how many more particles ``after`` finds."""
    for size in (512, 1024) if args.quick else (512, 1024, 2048):
        p = make_frame(size)
        image = image_of(p)
        rep = (3 if args.quick else 10) if size < 2048 else 3
        n_all = len(reference(ringed_frame(size), image)[1]["x"])
        n0 = len(before(p, image)[1]["x"])
        n1 = len(after(p, image)[1]["x"])
        t0 = best(lambda: before(p, image), rep)
        t1 = best(lambda: after(p, image), rep)
        print(f"| {size}² | {n_all} ({n_all - n0}) | {t0:.2f} | {t1:.2f} | +{t1 - t0:.2f} ms "
              f"| {n1 - n0} |")

if __name__ == "__main__":
    main()
