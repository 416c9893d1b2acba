"""Two-layer model end to end: frames/s of the whole pipeline at 512² (issue 23: >= 10 on two
CPU cores), beside the stages called in a plain loop (no threads, no recording).

The runner records to a temporary file (raw frames, the single-plane view, both layer planes,
the particle table) exactly as ``temstream process MOVIE --model bilayer --out REC.h5`` does.
The machine's load average is printed: on a shared machine the numbers are lower bounds.

    python benchmarks/bench_bilayer.py [--quick] [--size 512] [--frames 60] [--model bilayer]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from temstream.cli._pipeline import build_runner
from temstream.config import load_config
from temstream.pipeline.assemble import build_stages, load_segmenter_from_config
from temstream.record import read_frames_info
from temstream.sim import simulate
from temstream.stream.sources import MemorySource


def plain_loop(config, frames) -> float:
    stages = build_stages(config, load_segmenter_from_config(config))
    seg, inst, link = stages["segment"], stages["instances"], stages["link"]
    link(inst(seg(frames[0]), frames[0])[1])
    t0 = time.perf_counter()
    for f in frames:
        link(inst(seg(f), f)[1])
    return len(frames) / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 frames")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--model", default="bilayer")
    args = p.parse_args(argv)
    n = 20 if args.quick else args.frames
    load0 = os.getloadavg()[0]
    movie = simulate("moire", frames=n, size=args.size, seed=77, vacancy_fraction=0.03)
    config = load_config(overrides={"segment": {"model": args.model}})
    ceiling = plain_loop(config, movie.frames)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        runner = build_runner(config, MemorySource(movie.frames, meta={"pixel_size_nm": 0.5}),
                              out=out, flow="lossless")
        runner.warm_up(movie.frames.shape[1:], movie.frames.dtype)
        s = runner.run()
        info = read_frames_info(out)
        size_mb = out.stat().st_size / 1e6
    load1 = os.getloadavg()[0]
    med = {k: float(np.nanmedian(info[f"{k}_ms"])) for k in ("segment", "instances", "link")}
    print(f"## Two-layer model `{args.model}`, {args.size}², {n} frames of `sim moire` "
          f"({os.cpu_count()} CPU threads, load average {load0:.1f} before, {load1:.1f} after)\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| end to end, runner + recording (frames/s) | {s.fps:.1f} |")
    print(f"| stages in a plain loop, no threads, no recording (frames/s) | {ceiling:.1f} |")
    print(f"| ratio runner / plain loop | {s.fps / ceiling:.2f} |")
    print(f"| latency p50 / p99 (ms) | {s.latency_ms(50):.0f} / {s.latency_ms(99):.0f} |")
    print(f"| segment / instances / link, median ms per frame | {med['segment']:.1f} / "
          f"{med['instances']:.1f} / {med['link']:.1f} |")
    print(f"| particles per frame | {s.as_dict()['particles_per_frame']:.0f} |")
    print(f"| recording size (MB) | {size_mb:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
