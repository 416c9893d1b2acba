"""``temstream replay``: play a recorded movie file as a detector stream (file -> ZeroMQ)."""

from __future__ import annotations

import sys
import time

import numpy as np

from temstream.cli._common import add_denoise_option, new_parser


def add_parser(sub) -> None:
    p = new_parser(sub, "replay", "stream a movie file over ZeroMQ like a detector",
                   "temstream replay movie.dm4 --publish tcp://127.0.0.1:5555 "
                   "--protocol dectris-v2 --fps 50 --loop")
    p.add_argument("input", help="movie: .h5/.emd recording or EMD, .mrc, .tif, .dm3/.dm4, "
                                 ".ser/.emi or .npy")
    p.add_argument("--publish", default="tcp://127.0.0.1:5555", metavar="ENDPOINT",
                   help="endpoint to bind (default tcp://127.0.0.1:5555; port 0 picks one)")
    p.add_argument("--protocol", default="native", choices=["native", "dectris-v2", "dectris-v1"])
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=float, help="frame rate (default: from the file, else 25)")
    rate.add_argument("--as-fast-as-possible", action="store_true",
                      help="no pacing; with PUSH the receiver sets the pace")
    p.add_argument("--loop", action="store_true",
                   help="repeat the movie (frame numbers keep increasing) until Ctrl-C")
    p.add_argument("--socket", default="push", choices=["push", "pub"],
                   help="push: lossless back-pressure (default); pub: fan-out, drops when slow")
    p.add_argument("--frames", type=int, help="stop after N frames")
    p.add_argument("--sndhwm", type=int, default=16, help="send high-water mark, in messages")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--gui", action="store_true",
                   help="also run the pipeline in this process on the replayed stream and show "
                        "the dashboard")
    p.add_argument("--snapshot", metavar="FILE.png",
                   help="with the dashboard: save it to FILE.png at the end (implies --gui)")
    p.add_argument("--out", metavar="FILE.h5",
                   help="with the dashboard: record the replayed stream to FILE.h5")
    add_denoise_option(p, "segmenting (with the dashboard)")
    p.set_defaults(func=run)


#: dtypes every wire protocol carries; others are converted (see :func:`wire_dtype`)
_WIRE_DTYPES = {"u1", "u2", "u4", "f4"}


def wire_dtype(dtype) -> np.dtype:
    """The dtype a frame of ``dtype`` is sent as: uint8/16/32 and float32 as they are, other
    types (int16 from Velox, int32 from TIA, float64) as float32 (exact up to 2**24)."""
    dtype = np.dtype(dtype)
    if f"{dtype.kind}{dtype.itemsize}" in _WIRE_DTYPES:
        return dtype
    return np.dtype(np.float32)


def replay(movie, publisher, *, fps: float | None, loop: bool = False,
           frames: int | None = None, progress=None, stop=None) -> dict:
    """Send ``movie`` through ``publisher`` as one series.

    Parameters
    ----------
    movie : MovieFile
    publisher : FramePublisher
    fps : float or None
        Pacing on absolute deadlines; None sends as fast as the socket takes them.
    loop : bool
        Start over at the end (frame numbers keep increasing).
    frames : int, optional
        Stop after this many frames.
    progress : callable(sent, elapsed_s), optional
        Called about once a second.
    stop : threading.Event, optional

    Returns
    -------
    dict
        ``frames``, ``elapsed_s``, ``fps``, ``MB_per_s``, ``series``.
    """
    from temstream.stream.publish import paced

    n = len(movie)
    if n == 0:
        raise ValueError(f"{movie.path}: the file holds no frames")
    period = movie.frame_time_s or (1.0 / fps if fps else None)
    send_dtype = wire_dtype(movie.dtype)
    meta = {"detector": "temstream replay", "source_file": str(movie.path),
            "shape": list(movie.shape), "dtype": send_dtype.str}
    if send_dtype != movie.dtype:
        meta["file_dtype"] = movie.dtype.str
    if movie.pixel_size_nm:
        meta["pixel_size_nm"] = movie.pixel_size_nm
    if movie.frame_time_s:
        meta["frame_time_s"] = movie.frame_time_s
    frame_meta = {"pixel_size_nm": movie.pixel_size_nm} if movie.pixel_size_nm else {}
    total = frames if frames is not None else (None if loop else n)

    def indices():
        i = 0
        while total is None or i < total:
            yield i
            i += 1

    series = publisher.start_series(meta)
    t_wall, t0, last = time.time(), time.perf_counter(), time.perf_counter()
    sent = nbytes = 0
    try:
        for i in paced(indices(), fps):
            if stop is not None and stop.is_set():
                break
            image = movie[i % n]
            if image.dtype != send_dtype:
                image = image.astype(send_dtype)
            ts = t_wall + i * period if period else time.time()
            publisher.send(image, frame=i, timestamp=ts, **frame_meta)
            sent += 1
            nbytes += image.nbytes
            now = time.perf_counter()
            if progress is not None and now - last >= 1.0:
                progress(sent, now - t0)
                last = now
    except KeyboardInterrupt:
        pass
    finally:
        publisher.end_series(frames_sent=sent)
    elapsed = time.perf_counter() - t0
    return {"frames": sent, "elapsed_s": elapsed, "fps": sent / elapsed if elapsed else 0.0,
            "MB_per_s": nbytes / elapsed / 1e6 if elapsed else 0.0, "series": series}


def replay_with_dashboard(args, movie, fps: float | None, context) -> int:
    """Replay in a background thread into the live pipeline, shown on the dashboard."""
    import threading

    from temstream.cli._common import config_from_args
    from temstream.cli._pipeline import build_runner, describe_segmenter, zmq_source
    from temstream.gui import run_with_dashboard
    from temstream.stream.publish import FramePublisher

    pub = FramePublisher(args.publish, protocol=args.protocol, socket=args.socket,
                         sndhwm=args.sndhwm, context=context)
    config = config_from_args(args, source={"connect": pub.endpoint, "protocol": args.protocol,
                                            "socket": "sub" if args.socket == "pub" else "pull"})
    runner = build_runner(config, zmq_source(config), out=args.out)
    stop, sent = threading.Event(), {}
    sender = threading.Thread(
        target=lambda: sent.update(replay(movie, pub, fps=fps, loop=args.loop,
                                          frames=args.frames, stop=stop)),
        name="temstream-replay", daemon=True)
    print(f"replaying {args.input} into the pipeline on {pub.endpoint} "
          f"({config.segment.model}, {config.pipeline.flow})", flush=True)
    sender.start()
    try:
        summary = run_with_dashboard(runner, config=config, snapshot=args.snapshot)
    finally:
        stop.set()
        sender.join(10)
        pub.close(linger_ms=0)
    print(summary.format())
    print(describe_segmenter(runner))
    if args.out:
        print(f"recorded to {args.out}")
    return 0


def run(args) -> int:
    import zmq

    from temstream.cli._common import open_input_movie
    from temstream.stream.publish import FramePublisher

    fps = None if args.as_fast_as_possible else args.fps
    ctx = zmq.Context()
    try:
        with open_input_movie(args.input) as movie:
            if fps is None and not args.as_fast_as_possible:
                fps = 1.0 / movie.frame_time_s if movie.frame_time_s else 25.0
            if fps is not None and fps <= 0:
                raise ValueError("--fps must be > 0")
            if args.gui or args.snapshot:
                return replay_with_dashboard(args, movie, fps, ctx)
            pub = FramePublisher(args.publish, protocol=args.protocol, socket=args.socket,
                                 sndhwm=args.sndhwm, context=ctx)
            px = f"{movie.pixel_size_nm:g} nm/px" if movie.pixel_size_nm else "no pixel size"
            rate = "as fast as possible" if fps is None else f"{fps:g} fps"
            print(f"replaying {args.input}: {len(movie)} frames {movie.shape[0]}x"
                  f"{movie.shape[1]} {movie.dtype}, {px}; {args.protocol} {args.socket} on "
                  f"{pub.endpoint} at {rate}" + (", looping" if args.loop else ""), flush=True)
            if args.socket == "push":
                print("(PUSH waits for a receiver: start `temstream run --connect "
                      f"{pub.endpoint} --protocol {args.protocol}`)", flush=True)

            def progress(sent, elapsed):
                if not args.quiet:
                    print(f"  sent {sent} frames in {elapsed:.1f} s ({sent / elapsed:.1f} fps)",
                          file=sys.stderr, flush=True)

            summary = replay(movie, pub, fps=fps, loop=args.loop, frames=args.frames,
                             progress=progress)
            pub.close(linger_ms=-1)  # lossless: deliver what is queued (Ctrl-C abandons it)
    except KeyboardInterrupt:
        ctx.destroy(linger=0)
        raise
    try:
        ctx.term()
    except KeyboardInterrupt:
        ctx.destroy(linger=0)
    print(f"sent {summary['frames']} frames of series {summary['series']} in "
          f"{summary['elapsed_s']:.2f} s ({summary['fps']:.1f} fps, "
          f"{summary['MB_per_s']:.1f} MB/s)")
    return 0
