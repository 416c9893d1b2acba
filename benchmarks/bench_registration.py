"""Registration cost per frame (``temstream.tracking.registration.Registrar``), beside OpenCV's
own phase correlation on the same frames (the peer).

Frames: ``temstream.sim`` hex-lattice movies (a dense field of small vibrating particles, the
kind a stage jump tears tracks apart in) at 512² and 1024², with a stage jump. Rows: the image
alone (quality test and phase correlation against the last good frame and a key frame), and
with the frame's particles (their displacement vote too). CPU time of this process per frame
(``time.process_time``: on a shared machine wall time measures the neighbours) and wall time.

    python benchmarks/bench_registration.py [--quick] [--model default]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from temstream.sim import simulate
from temstream.tracking.registration import Registrar


def timed(fn, frames, extra):
    fn(frames[0], extra[0])
    c0, w0 = time.process_time(), time.perf_counter()
    for f, e in zip(frames[1:], extra[1:]):
        fn(f, e)
    n = len(frames) - 1
    return 1e3 * (time.process_time() - c0) / n, 1e3 * (time.perf_counter() - w0) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="", help="also time every stage of the pipeline with "
                                                 "this segmenter (e.g. default)")
    args = ap.parse_args()
    n = 12 if args.quick else 40
    print("### Registration per frame (one core)\n")
    print("| frame | particles | what | CPU ms | wall ms | ratio to cv2.phaseCorrelate (CPU) |")
    print("|---|---|---|---|---|---|")
    for size in (512, 1024):
        movie = simulate("hex-lattice", frames=n, size=size, seed=0,
                         stage_jumps=[[n // 2, 25.0, -9.0]])
        frames = [f.astype(np.float32) for f in movie.frames]
        t = movie.truth
        xy = [t[t["frame"] == i][["x", "y"]].to_numpy() for i in range(n)]
        window = cv2.createHanningWindow(frames[0].shape[::-1], cv2.CV_32F)
        prev = {"f": None}

        def peer(f, _):
            if prev["f"] is not None:
                cv2.phaseCorrelate(prev["f"], f, window)
            prev["f"] = f

        peer_cpu, peer_wall = timed(peer, frames, xy)
        print(f"| {size}² | {len(xy[0])} | cv2.phaseCorrelate, previous frame (peer) | "
              f"{peer_cpu:.1f} | {peer_wall:.1f} | 1.00 |")
        for what, with_xy in (("image", False), ("image + particles", True)):
            reg = Registrar()
            cpu, wall = timed(lambda f, e: reg(f, e if with_xy else None), frames, xy)
            print(f"| {size}² | {len(xy[0])} | Registrar: {what} | {cpu:.1f} | {wall:.1f} | "
                  f"{cpu / peer_cpu:.2f} |")
    print("\nFrames are registered at most 256² (``register.max_side``): 512² at half size, "
          "1024² at a quarter; the peer works at full size and registers against the previous "
          "frame only.")
    if args.model:
        stage_shares(args.model, n)


def stage_shares(model: str, n: int) -> None:
    """CPU per frame of each stage of the pipeline at 512² (what registration adds)."""
    from temstream.config import load_config
    from temstream.pipeline.assemble import build_stages, load_segmenter_from_config

    config = load_config(overrides=[f"segment.model={model}"])
    stages = build_stages(config, load_segmenter_from_config(config))
    movie = simulate("dispersed", frames=n, size=512, seed=1)
    names = ("preprocess", "segment", "instances", "register", "link")
    cpu = dict.fromkeys(names, 0.0)
    for i, f in enumerate(movie.frames):
        t = time.process_time()
        x = stages["preprocess"](f)
        t1 = time.process_time()
        p = stages["segment"](x)
        t2 = time.process_time()
        _, table = stages["instances"](p, f)
        t3 = time.process_time()
        r = stages["register"](f, table)
        t4 = time.process_time()
        stages["link"](table, i, bridge=r.quality)
        t5 = time.process_time()
        if i:  # the first frame compiles
            for k, a, b in zip(names, (t, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                cpu[k] += b - a
    total = sum(cpu.values())
    print(f"\n### CPU per frame of each stage, model `{model}`, 512² dispersed, {n - 1} frames "
          "(all threads of this process)\n")
    print("| stage | CPU ms | share |")
    print("|---|---|---|")
    for k in names:
        print(f"| {k} | {1e3 * cpu[k] / (n - 1):.1f} | {cpu[k] / total:.1%} |")
    print(f"| all | {1e3 * total / (n - 1):.1f} | 100 % |")


if __name__ == "__main__":
    main()
