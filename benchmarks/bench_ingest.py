"""Ingest throughput over loopback TCP, publisher in a separate process.

Prints Markdown tables: native frames in GB/s with the ratio to a plain memory copy of the same
bytes measured in the same run, and DECTRIS Stream V2 bslz4 frames/s at 2048² with
decompression inline vs in decode threads.

    python benchmarks/bench_ingest.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np


def memcpy_gbps(nbytes: int, seconds: float = 1.0) -> float:
    src = np.ones(nbytes // 2, np.uint16)
    dst = np.empty_like(src)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(dst, src)
        n += 1
    return n * nbytes / (time.perf_counter() - t0) / 1e9


def _publisher(endpoint: str, protocol: str, size: int, count: int, ready) -> None:
    import zmq

    from temstream.stream.publish import FramePublisher

    rng = np.random.default_rng(0)
    if protocol == "native":
        frames = [np.full((size, size), i, np.uint16) for i in range(4)]
    else:
        frames = [rng.poisson(1.5, (size, size)).astype(np.uint16) for _ in range(4)]
    pub = FramePublisher(endpoint, protocol=protocol, sndhwm=4, context=zmq.Context())
    if protocol != "native":  # pre-encode: measure the receiver, not our encoder
        encoded = [pub._encoder.frame(f, 1, i, None, {}) for i, f in enumerate(frames)]
    ready.set()
    pub.start_series({}, series=1)
    for i in range(count):
        if protocol == "native":
            pub.send(frames[i % 4], frame=i)
        else:
            pub._send(encoded[i % 4])
    pub.end_series()
    pub.close(linger_ms=-1)


def ingest(protocol: str, size: int, count: int, decode_threads: int = 0) -> tuple[float, float]:
    """(frames/s, GB/s of decoded pixels) receiving ``count`` frames."""
    import zmq

    from temstream.stream.events import Frame, SeriesEnd
    from temstream.stream.sources import ZmqSource

    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = ctx.Process(target=_publisher, args=(endpoint, protocol, size, count, ready))
    proc.start()
    ready.wait(120)
    src = ZmqSource(endpoint, protocol=protocol, rcvhwm=4, context=zmq.Context(),
                    decode_threads=decode_threads)
    frames = nbytes = 0
    t0 = None
    while True:
        ev = src.receive(timeout_ms=10000)
        if ev is None or isinstance(ev, SeriesEnd):
            break
        if isinstance(ev, Frame):
            if t0 is None:
                t0 = time.perf_counter()  # timing starts at the first frame
            else:
                frames += 1
                nbytes += ev.image.nbytes
    dt = time.perf_counter() - t0
    src.close()
    proc.join(30)
    return frames / dt, nbytes / dt / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames-4k", type=int, default=200)
    ap.add_argument("--frames-2k", type=int, default=600)
    ap.add_argument("--frames-bslz4", type=int, default=600)
    ap.add_argument("--quick", action="store_true", help="a quarter of the frames")
    args = ap.parse_args()
    if args.quick:
        args.frames_4k, args.frames_2k, args.frames_bslz4 = 50, 150, 150
    print("## Native ingest over loopback TCP (PUSH -> PULL, publisher in another process)\n")
    print("| frame | frames/s | GB/s | memcpy GB/s (same bytes) | ratio to memcpy |")
    print("|---|---|---|---|---|")
    for size, count in ((4096, args.frames_4k), (2048, args.frames_2k)):
        fps, gbps = ingest("native", size, count)
        copy = memcpy_gbps(size * size * 2)
        print(f"| {size}² uint16 | {fps:.0f} | {gbps:.2f} | {copy:.2f} | {gbps / copy:.2f} |")
    print("\n## DECTRIS Stream V2 bslz4, 2048² uint16 Poisson(1.5) counts\n")
    print("| decompression | frames/s | GB/s decoded |")
    print("|---|---|---|")
    for threads in (0, 1, 2):
        fps, gbps = ingest("dectris-v2", 2048, args.frames_bslz4, decode_threads=threads)
        where = "inline (receive thread)" if threads == 0 else f"{threads} decode thread(s)"
        print(f"| {where} | {fps:.0f} | {gbps:.2f} |")


if __name__ == "__main__":
    main()
