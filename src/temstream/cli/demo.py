"""``temstream demo``: a simulated detector streams into the live pipeline, which records."""

from __future__ import annotations

import threading
import time

from temstream.cli._common import add_denoise_option, config_from_args, new_parser
from temstream.cli._pipeline import (LiveStatus, build_runner, describe_segmenter,
                                     stop_on_signals)


def add_parser(sub) -> None:
    p = new_parser(sub, "demo", "stream a simulated liquid-cell movie through the live pipeline",
                   "temstream demo --frames 300 --out demo.hspy")
    p.add_argument("--frames", type=int, default=200, help="frames to stream (default 200)")
    p.add_argument("--out", default="demo.hspy", metavar="FILE.hspy",
                   help="recording to write (default demo.hspy: .hspy opens in HyperSpy as a "
                        "movie, and in every EMD and HDF5 reader)")
    p.add_argument("--scenario", help="simulator scenario (default: demo.scenario = dispersed)")
    p.add_argument("--size", type=int, help="frame side in pixels (default: demo.size)")
    p.add_argument("--fps", type=float, help="detector frame rate (default: demo.fps)")
    p.add_argument("--model", help="classical | default | bilayer | checkpoint path "
                                   "(default: demo.model = default)")
    add_denoise_option(p)
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--gui", action="store_true", help="show the live dashboard")
    p.add_argument("--snapshot", metavar="FILE.png",
                   help="save the dashboard to FILE.png when the run ends (implies --gui)")
    p.set_defaults(func=run)


class SimulatedDetector(threading.Thread):
    """Publishes a simulated movie on a PUSH socket, paced like a camera."""

    def __init__(self, scenario: str, *, size: int, fps: float, frames: int, seed: int):
        super().__init__(name="temstream-sim-detector", daemon=True)
        from temstream.sim import iter_movie
        from temstream.stream.publish import FramePublisher

        self.publisher = FramePublisher("tcp://127.0.0.1:0", protocol="native", socket="push",
                                        sndhwm=16)
        self.endpoint = self.publisher.endpoint
        self.movie = iter_movie(scenario, size=size, seed=seed, frames=frames)
        self.scenario, self.fps, self.frames = scenario, fps, frames
        self._halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        from temstream.stream.publish import paced

        try:
            first = next(self.movie)
            meta = {"detector": "temstream simulator", "scenario": self.scenario,
                    "frame_time_s": 1.0 / self.fps, "shape": list(first.image.shape),
                    "dtype": first.image.dtype.str,
                    "pixel_size_nm": getattr(first, "pixel_size_nm", None)}
            self.publisher.start_series({k: v for k, v in meta.items() if v is not None})
            t0 = time.time()

            def frames():
                yield first
                yield from self.movie

            for sim_frame in paced(frames(), self.fps):
                if self._halt.is_set():
                    break
                self.publisher.send(sim_frame.image, frame=sim_frame.index,
                                    timestamp=t0 + sim_frame.index / self.fps)
            self.publisher.end_series()
        except BaseException as exc:  # noqa: BLE001 - reported by the demo
            self.error = exc
        finally:
            self.publisher.close(linger_ms=2000)

    def stop(self) -> None:
        self._halt.set()


def run(args) -> int:
    import numpy as np

    from temstream.stream.sources import ZmqSource

    config = config_from_args(
        args, demo={"scenario": args.scenario, "size": args.size, "fps": args.fps,
                    "model": args.model},
        segment={"backend": args.backend})
    config = config.replace(segment={"model": config.demo.model})
    d = config.demo
    detector = SimulatedDetector(d.scenario, size=d.size, fps=d.fps, frames=args.frames,
                                 seed=d.seed)
    source = ZmqSource(detector.endpoint, protocol="native", socket="pull",
                       rcvhwm=config.source.rcvhwm)
    gui = args.gui or args.snapshot
    runner = build_runner(config, source, out=args.out, sinks=None if gui else [LiveStatus()])
    print(f"simulated detector: scenario {d.scenario}, {d.size}x{d.size} px, {d.fps:g} fps, "
          f"{args.frames} frames on {detector.endpoint}", flush=True)
    print(f"pipeline: model {config.segment.model}, flow {config.pipeline.flow}, "
          f"recording to {args.out}; Ctrl-C to stop", flush=True)
    # build what the first frame would build (compiled network, sessions) before it comes
    runner.warm_up((d.size, d.size), np.uint16)
    detector.start()
    try:
        if gui:
            from temstream.gui import run_with_dashboard

            summary = run_with_dashboard(runner, config=config, snapshot=args.snapshot)
        else:
            with stop_on_signals(runner):
                summary = runner.run()
    finally:
        detector.stop()
        detector.join(5)
    if detector.error is not None:
        raise RuntimeError(f"simulated detector failed: {detector.error}") from detector.error
    print(summary.format())
    print(describe_segmenter(runner))
    print(f"recorded to {args.out}  (inspect with: temstream info {args.out})")
    return 0
