"""Simulator benchmarks: frames/s per core per scenario, training pairs/s, emulator rate.

Usage: python benchmarks/bench_sim.py [--quick]

Peers measured in the same run: "floor" = the unavoidable per-frame work at that size (one
Poisson draw + one complex FFT pair of the frame); the ratio says how many floors a frame costs.
Emulator: achieved / requested rate. Run with one thread per process for per-core numbers.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.fft as sfft  # noqa: E402
import zmq  # noqa: E402

from temstream.sim import SCENARIOS, iter_movie  # noqa: E402
from temstream.sim.training import training_pairs  # noqa: E402


def floor_s(n, reps=3):
    rng = np.random.default_rng(0)
    lam = np.full((n, n), 200.0)
    psi = np.ones((n, n), np.complex64)
    t = time.perf_counter()
    for _ in range(reps):
        rng.poisson(lam)
        sfft.ifft2(sfft.fft2(psi, workers=1), workers=1)
    return (time.perf_counter() - t) / reps


def sim_fps(name, n, frames):
    it = iter_movie(name, size=n, seed=0)
    next(it)  # setup + JIT excluded
    t = time.perf_counter()
    for _ in range(frames):
        next(it)
    return frames / (time.perf_counter() - t)


def pairs_per_s(size, n, task="particles"):
    it = training_pairs(0, size=size, task=task)
    next(it)
    t = time.perf_counter()
    for _ in itertools.islice(it, n):
        pass
    return n / (time.perf_counter() - t)


def emulator(fps, count, n=512):
    from temstream.stream.emulator import stream_frames
    from temstream.stream.publish import FramePublisher

    frames = np.random.default_rng(0).integers(0, 4000, (16, n, n), dtype=np.uint16)
    pub = FramePublisher("tcp://127.0.0.1:0", socket="push", sndhwm=1000)
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.connect(pub.endpoint)
    import threading

    def drain():
        while pull.poll(2000):
            pull.recv_multipart(copy=False)

    th = threading.Thread(target=drain, daemon=True)
    th.start()
    s = stream_frames(pub, frames, fps=fps, count=count)
    th.join(5)
    pub.close(0)
    pull.close(0)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    q = a.quick
    print("## Simulator frames/s per core\n")
    print("| scenario | 512² fps | 512² cost / floor | 2048² fps | 2048² cost / floor |")
    print("|---|---|---|---|---|")
    f512, f2k = floor_s(512), floor_s(2048, 1)
    for name in SCENARIOS:
        a512 = sim_fps(name, 512, 3 if q else 10)
        a2k = sim_fps(name, 2048, 1 if q else 3)
        print(f"| {name} | {a512:.1f} | {1 / a512 / f512:.1f} | {a2k:.2f} | "
              f"{1 / a2k / f2k:.1f} |")
    print(f"\nfloor (Poisson + complex FFT pair): 512² {f512 * 1e3:.1f} ms, "
          f"2048² {f2k * 1e3:.1f} ms\n")
    print("## Training pairs/s (one core)\n")
    print("| task | 256² pairs/s | 512² pairs/s |")
    print("|---|---|---|")
    for task in ("particles", "bilayer"):
        print(f"| {task} | {pairs_per_s(256, 10 if q else 40, task):.1f} | "
              f"{pairs_per_s(512, 5 if q else 15, task):.1f} |")
    print("\n## Emulator, 512² uint16, native protocol, PUSH to a local PULL\n")
    print("| requested fps | frames | achieved fps | achieved / requested | mean late ms | "
          "max late ms |")
    print("|---|---|---|---|---|---|")
    for fps, count in ((100, 100 if q else 300), (1000, 500 if q else 3000)):
        s = emulator(fps, count)
        print(f"| {fps} | {s.frames_sent} | {s.achieved_fps:.1f} | "
              f"{s.achieved_fps / fps:.4f} | {s.mean_late_ms:.3f} | {s.max_late_ms:.3f} |")


if __name__ == "__main__":
    main()
