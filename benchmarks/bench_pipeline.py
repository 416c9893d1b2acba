"""End-to-end pipeline benchmark: throughput and latency of the threaded runner.

Ceiling (peer measured in the same run): the same stages called one after another in a plain
loop, no threads, no queues, no recording. The ratio runner/ceiling shows what the threading,
accounting and recording cost (or gain by overlapping stages).

    python benchmarks/bench_pipeline.py [--quick] [--model classical] [--size 512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from temstream.config import load_config
from temstream.cli._pipeline import build_runner
from temstream.pipeline.assemble import build_stages, load_segmenter_from_config
from temstream.sim import simulate
from temstream.stream.publish import FramePublisher, paced
from temstream.stream.sources import MemorySource, ZmqSource


def plain_loop(config, frames) -> float:
    """Frames/s of the runner's stages called one after another, warmed up first (the runner
    prepares its kernels and model before its first frame too)."""
    stages = build_stages(config, load_segmenter_from_config(config))  # what the runner runs
    pre, seg, inst, reg, link = (stages[k] for k in ("preprocess", "segment", "instances",
                                                      "register", "link"))

    def run(movie):
        for i, f in enumerate(movie):
            table = inst(seg(pre(f)), f)[1]
            r = reg(f, table, i)
            link(table, i, bridge=r.quality)

    run(frames[:3])  # compile / load every kernel, then start afresh
    reg.reset()
    link.reset()
    t0 = time.perf_counter()
    run(frames)
    return len(frames) / (time.perf_counter() - t0)


def lossless(config, frames, out: Path) -> tuple[float, float, float]:
    runner = build_runner(config, MemorySource(frames, meta={"pixel_size_nm": 0.8}), out=out,
                          flow="lossless")
    s = runner.run()
    return s.fps, s.latency_ms(50), s.latency_ms(99)


def live(config, frames, fps: float, out: Path) -> dict:
    import threading

    pub = FramePublisher("tcp://127.0.0.1:0", sndhwm=64)
    src = ZmqSource(pub.endpoint, rcvhwm=64)
    runner = build_runner(config, src, out=out, flow="live")

    def send():
        pub.start_series({"pixel_size_nm": 0.8})
        for i, f in enumerate(paced(frames, fps)):
            pub.send(f, frame=i, timestamp=time.time())
        pub.end_series()

    t = threading.Thread(target=send)
    t.start()
    s = runner.run()
    t.join()
    pub.close()
    return {"processed": s.processed, "dropped": sum(s.dropped.values()), "fps": s.fps,
            "p50": s.latency_ms(50), "p99": s.latency_ms(99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="classical")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--fps", type=float, default=20.0, help="detector rate for the live run")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="configuration overrides, e.g. register.enabled=false")
    args = ap.parse_args()
    n = 30 if args.quick else 100
    config = load_config(overrides=[f"segment.model={args.model}", *args.overrides])
    movie = simulate("dispersed", frames=n, size=args.size, seed=0)
    frames = list(movie.frames)
    ceiling = plain_loop(config, frames)
    with tempfile.TemporaryDirectory() as tmp:
        fps, p50, p99 = lossless(config, frames, Path(tmp) / "a.h5")
        lv = live(config, frames, args.fps, Path(tmp) / "b.h5")
    extra = "".join(f", `{o}`" for o in args.overrides)
    print(f"### Pipeline, model `{args.model}`{extra}, {args.size}² uint16, {n} frames, "
          "recording on\n")
    print("| run | frames/s | ratio to plain loop | latency p50 ms | latency p99 ms | dropped |")
    print("|---|---|---|---|---|---|")
    print(f"| plain loop (ceiling, no threads/recording) | {ceiling:.1f} | 1.00 | | | |")
    print(f"| runner, lossless | {fps:.1f} | {fps / ceiling:.2f} | {p50:.1f} | {p99:.1f} | 0 |")
    print(f"| runner, live, detector at {args.fps:g} fps over ZeroMQ | {lv['fps']:.1f} | "
          f"(paced by the detector) | {lv['p50']:.1f} | {lv['p99']:.1f} | {lv['dropped']} |")
    print("\nLossless latency includes the wait in the queue (the file is read as fast as "
          "possible); the live row is the latency a microscopist sees.")


if __name__ == "__main__":
    main()
