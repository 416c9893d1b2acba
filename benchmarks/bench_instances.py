"""Instance extraction: ms per frame at 512^2, 1024^2, 2048^2 for each candidate.

Frames: random filled disks (radius 3-12 px, ~15 % foreground) as 2-class
probabilities. Candidates, all giving the same labels and properties:

- ``extract_instances`` with each labeller (OpenCV / scipy / scikit-image
  connected components) + the numba per-box property kernel;
- scikit-image ``label`` + ``regionprops_table`` (area, centroid, perimeter,
  eccentricity, orientation) -- the usual reference;
- OpenCV ``connectedComponentsWithStats`` alone (area + centroid only, a floor).

Prints a Markdown table. Run: ``python benchmarks/bench_instances.py``.
"""

import argparse
import time

import numpy as np

from temstream.tracking.instances import LABELLERS, extract_instances


def frame(size, seed=0, fraction=0.15):
    import cv2

    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    mean_area = np.pi * 7.5 ** 2
    for _ in range(int(fraction * size * size / mean_area * 1.1)):
        cv2.circle(mask, (int(rng.integers(size)), int(rng.integers(size))),
                   int(rng.integers(3, 13)), 1, -1)
    p1 = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 1.0) * 0.98 + 0.01
    return np.stack([1 - p1, p1]).astype(np.float32)


def best_of(fn, repeats):
    fn()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import cv2
    from skimage.measure import label, regionprops_table

    sizes = [int(s) for s in args.sizes.split(",")]
    rows = {}
    counts = {}
    for size in sizes:
        p = frame(size)
        fg = p[1] > 0.5
        lab, t = extract_instances(p, min_area=1)
        counts[size] = len(t["x"])
        r = args.repeats if size < 2048 else max(2, args.repeats // 2)
        for lb in LABELLERS:
            rows.setdefault(f"extract_instances, {lb} labels + numba properties", {})[size] = \
                best_of(lambda: extract_instances(p, min_area=1, labeller=lb), r)
        rows.setdefault("extract_instances, opencv, n_fold=4, min_area=8 (pipeline default)", {})[size] = \
            best_of(lambda: extract_instances(p), r)

        def sk():
            lb_ = label(fg, connectivity=2)
            return regionprops_table(lb_, properties=("area", "centroid", "perimeter",
                                                      "eccentricity", "orientation"))
        rows.setdefault("skimage label + regionprops_table (reference)", {})[size] = best_of(sk, max(1, r // 2))
        rows.setdefault("cv2.connectedComponentsWithStats only (area, centroid; floor)", {})[size] = \
            best_of(lambda: cv2.connectedComponentsWithStats(fg.view(np.uint8), connectivity=8,
                                                             ltype=cv2.CV_32S), r)
        # same answer as the reference
        ref = regionprops_table(label(fg, connectivity=2), properties=("area", "perimeter"))
        assert np.allclose(np.sort(ref["area"]), np.sort(t["area"]))
        assert np.allclose(np.sort(ref["perimeter"]), np.sort(t["perimeter"]))
    head = " | ".join(f"{s}² ({counts[s]} particles) ms" for s in sizes)
    print(f"| candidate | {head} |")
    print("|---|" + "---|" * len(sizes))
    ref = rows["skimage label + regionprops_table (reference)"]
    for name, v in rows.items():
        print(f"| {name} | " + " | ".join(f"{v[s]:.2f} ({ref[s] / v[s]:.1f}x)" for s in sizes) + " |")
    print("\n(x) = speed-up against skimage label + regionprops_table in the same run.")


if __name__ == "__main__":
    main()
