"""Linking throughput: temstream.tracking.linking vs trackpy.link, measured in the same run.

Random walks on a jittered square lattice (spacing 20 px, sigma 1 px/frame per axis,
search_range 5 px), and trackpy's contracting-grid worst case (441 points, sr 2).
Prints a Markdown table; ratios are trackpy time / our time.

    python benchmarks/bench_tracking.py [--quick]
"""

import argparse
import time

import numpy as np
import pandas as pd
import trackpy

from temstream.tracking.linking import Linker, link

trackpy.quiet()


def walks(n, frames, spacing=20.0, sigma=1.0, seed=0):
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    g = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n]
    pos = g * spacing + rng.uniform(0, spacing / 2, (n, 2))
    pos = pos + np.cumsum(rng.normal(0, sigma, (frames, n, 2)), axis=0)
    return pd.DataFrame({"frame": np.repeat(np.arange(frames), n),
                         "x": pos[..., 0].ravel(), "y": pos[..., 1].ravel()})


def best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stream(df, sr):
    frames = [(g["x"].to_numpy(), g["y"].to_numpy()) for _, g in df.groupby("frame")]

    def run():
        lk = Linker(sr)
        for x, y in frames:
            lk._step(x, y, None, None)
    return run


def contracting_grid():
    g = np.stack(np.meshgrid(np.arange(-20, 21, 2.0), np.arange(-20, 21, 2.0)), -1).reshape(-1, 2)
    rng = np.random.default_rng(0)
    a = g + 200 + rng.normal(0, 1e-6, g.shape)
    b = g * 0.9 + 200 + rng.normal(0, 1e-6, g.shape)
    return pd.DataFrame({"frame": np.repeat([0, 1], len(g)), "x": np.r_[a[:, 0], b[:, 0]],
                         "y": np.r_[a[:, 1], b[:, 1]]})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer frames")
    args = ap.parse_args()
    sr = 5.0
    cases = [(100, 200), (1000, 50), (10000, 8)] if args.quick else [(100, 500), (1000, 100),
                                                                      (10000, 20)]
    link(walks(50, 3), sr)                                  # compile / load the numba cache
    rows = []
    for n, frames in cases:
        df = walks(n, frames)
        rep = 3 if n < 10000 else 1
        t_stream = best_of(stream(df, sr), rep) / frames
        t_batch = best_of(lambda: link(df, sr), rep) / frames
        rtp = 2 if n < 10000 else 1
        t_def = best_of(lambda: trackpy.link(df, sr), rtp) / frames
        t_nb = best_of(lambda: trackpy.link(df, sr, link_strategy="numba"), rtp) / frames
        rows.append((f"random walks, {n} particles/frame, {frames} frames", t_stream, t_batch,
                     t_def, t_nb))
    g = contracting_grid()
    t_grid = best_of(lambda: link(g, 2.0), 5)
    t_grid_tp = best_of(lambda: trackpy.link(g, 2.0, adaptive_stop=0.64, adaptive_step=0.8), 2)
    print("| case | Linker.step ms/frame | link() ms/frame | trackpy default ms/frame "
          "| trackpy numba ms/frame | speed-up vs default | speed-up vs numba |")
    print("|---|---|---|---|---|---|---|")
    for name, a, b, c, d in rows:
        print(f"| {name} | {a * 1e3:.3f} | {b * 1e3:.3f} | {c * 1e3:.2f} | {d * 1e3:.2f} "
              f"| {c / a:.0f}x | {d / a:.0f}x |")
    print(f"| contracting grid 441 pts, sr 2 (total ms; trackpy needs adaptive search 0.8/0.64) "
          f"| - | {t_grid * 1e3:.2f} | {t_grid_tp * 1e3:.1f} | - | {t_grid_tp / t_grid:.0f}x | - |")


if __name__ == "__main__":
    main()
