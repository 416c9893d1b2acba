"""Recording throughput of raw frames + labels per compression choice, and pipeline stalls.

Feeds ``RecorderSink`` (its own writer thread, compression in worker threads) with 2048²
uint16 frames (smooth background, dark particles, Gaussian noise σ 40: an integrating camera)
plus uint32 instance labels, as fast as it takes them. MB/s counts raw frame + label bytes
(uncompressed) from the first ``write`` until ``close`` returned. "Stall" is the time the
pipeline's link thread spent blocked in ``write`` (queue full): near 100 % means the recorder
sets the pace. The peer is a plain memory copy of the same bytes in the same run.

    python benchmarks/bench_record.py [--frames 40] [--dir /dev/shm]
    python benchmarks/bench_record.py --defaults   # the default recording before and after
                                                   # issue 22 (labels blosc2-zstd -> gzip)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from temstream.pipeline.runner import FrameResult
from temstream.record import RecorderSink
from temstream.stream.events import Frame


def movie(n: int, size: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    background = 2000 + 300 * np.sin(xx / 300.0) * np.cos(yy / 250.0)
    frames, labels = [], []
    centres = rng.uniform(20, size - 20, (200, 2))
    for t in range(n):
        img = background.copy()
        lab = np.zeros((size, size), np.uint32)
        for k, (x, y) in enumerate(centres + t):
            x0, y0 = int(x) % (size - 16), int(y) % (size - 16)
            img[y0:y0 + 12, x0:x0 + 12] -= 800
            lab[y0:y0 + 12, x0:x0 + 12] = k + 1
        frames.append((img + rng.normal(0, 40, img.shape)).astype(np.uint16))
        labels.append(lab)
    return frames, labels


def record(folder: Path, compression: str, frames, labels, repeat: int,
           labels_compression: str = "gzip", flush_interval_s: float = 0.25
           ) -> tuple[float, float, float]:
    path = folder / f"bench-{compression}-{labels_compression}.h5"
    sink = RecorderSink(path, frames_compression=compression, queue_size=8,
                        labels_compression=labels_compression,
                        flush_interval_s=flush_interval_s, compress_threads=2)
    nbytes, blocked = 0, 0.0
    t0 = time.perf_counter()
    i = 0
    for _ in range(repeat):
        for img, lab in zip(frames, labels):
            res = FrameResult(frame=Frame(image=img, series=1, index=i, timestamp=float(i)),
                              labels=lab, table={}, stamps={"received": 0.0})
            t = time.perf_counter()
            sink.write(res)
            blocked += time.perf_counter() - t
            nbytes += img.nbytes + lab.nbytes
            i += 1
    sink.close({})
    dt = time.perf_counter() - t0
    size = path.stat().st_size
    path.unlink()
    return nbytes / dt / 1e6, blocked / dt, nbytes / size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16, help="distinct frames (cycled)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").exists() else None)
    ap.add_argument("--quick", action="store_true", help="1024² frames, one repeat")
    ap.add_argument("--defaults", action="store_true",
                    help="compare the default recording before issue 22 (raw frames, labels "
                         "blosc2-zstd, flush 1 s) with today's (labels gzip, flush 0.25 s)")
    args = ap.parse_args()
    if args.quick:
        args.size, args.repeat = 1024, 1
    frames, labels = movie(args.frames, args.size)
    per = frames[0].nbytes + labels[0].nbytes
    src, dst = np.ones(per, np.uint8), np.empty(per, np.uint8)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 1.0:
        np.copyto(dst, src)
        n += 1
    copy = n * per / (time.perf_counter() - t0) / 1e6
    if args.defaults:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            print(f"## Default recording, {args.size}² uint16 frames + uint32 labels to "
                  f"{args.dir or 'tmp'} ({args.frames * args.repeat} frames, twice each, "
                  "interleaved)\n")
            print("| defaults | MB/s (raw+labels) | file ratio | link thread blocked |")
            print("|---|---|---|---|")
            rows = {"old: labels blosc2-zstd, flush 1 s": ("blosc2-zstd", 1.0),
                    "new: labels gzip, flush 0.25 s": ("gzip", 0.25)}
            results = {k: [] for k in rows}
            for _ in range(2):
                for name, (labels_c, flush) in rows.items():
                    results[name].append(record(Path(folder), "none", frames, labels,
                                                args.repeat, labels_c, flush))
            for name, runs in results.items():
                rate = max(r[0] for r in runs)
                print(f"| {name} | {rate:.0f} | {runs[0][2]:.2f} | "
                      f"{100 * min(r[1] for r in runs):.0f} % |")
        print(f"\nmemcpy of the same bytes: {copy:.0f} MB/s (best of two runs each)")
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        print(f"## Recording {args.size}² uint16 frames + uint32 labels to {args.dir or 'tmp'} "
              f"({args.frames * args.repeat} frames, labels gzip)\n")
        print("| frames compression | MB/s (raw+labels) | ratio to memcpy | file ratio | "
              "link thread blocked |")
        print("|---|---|---|---|---|")
        for comp in ("none", "blosc2-lz4", "blosc2-zstd", "bitshuffle-lz4", "gzip"):
            rate, stall, ratio = record(Path(folder), comp, frames, labels, args.repeat)
            print(f"| {comp} | {rate:.0f} | {rate / copy:.3f} | {ratio:.2f} | "
                  f"{100 * stall:.0f} % |")
    print(f"\nmemcpy of the same bytes: {copy:.0f} MB/s")


if __name__ == "__main__":
    main()
