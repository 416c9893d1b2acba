"""``temstream run``: the live pipeline on a ZeroMQ stream."""

from __future__ import annotations

from temstream.cli._common import add_denoise_option, config_from_args, new_parser
from temstream.cli._pipeline import (LiveStatus, build_runner, describe_segmenter,
                                     stop_on_signals, zmq_source)


def add_parser(sub) -> None:
    p = new_parser(sub, "run", "segment, track and record a live detector stream",
                   "temstream run --connect tcp://127.0.0.1:5555 --out live.h5 "
                   "tracking.search_range=12")
    p.add_argument("--connect", metavar="ENDPOINT",
                   help="where the detector/replay publishes (default tcp://127.0.0.1:5555)")
    p.add_argument("--protocol", choices=["native", "dectris-v2", "dectris-v1"])
    p.add_argument("--out", metavar="FILE.hspy",
                   help="record to this file (.hspy: HyperSpy opens it as a movie)")
    p.add_argument("--frames", type=int, help="stop after N frames")
    p.add_argument("--model", help="default (the U-Net, the default) | classical | bilayer | "
                                   "checkpoint path")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--tta", type=int, choices=[1, 2, 4, 8],
                   help="U-Nets: average over N rotations/mirrors of each frame (N network "
                        "passes; default segment.tta = 1)")
    add_denoise_option(p)
    p.add_argument("--flow", choices=["live", "lossless"], help="drop oldest, or back-pressure")
    p.add_argument("--gui", action="store_true", help="show the live dashboard")
    p.add_argument("--snapshot", metavar="FILE.png",
                   help="save the dashboard to FILE.png when the run ends (implies --gui)")
    p.set_defaults(func=run)


def run(args) -> int:
    config = config_from_args(
        args, source={"connect": args.connect, "protocol": args.protocol},
        pipeline={"frames": args.frames, "flow": args.flow},
        segment={"model": args.model, "backend": args.backend, "tta": args.tta})
    s = config.source
    gui = args.gui or args.snapshot
    runner = build_runner(config, None, out=args.out, sinks=None if gui else [LiveStatus()])
    print(f"preparing the pipeline ({config.segment.model} model)...", flush=True)
    runner.prepare()  # compile before connecting: no frame waits for a compiler
    runner.source = zmq_source(config)
    print(f"listening on {s.connect} ({s.protocol}, {config.pipeline.flow}); Ctrl-C to stop",
          flush=True)
    if gui:
        from temstream.gui import run_with_dashboard

        summary = run_with_dashboard(runner, config=config, snapshot=args.snapshot)
    else:
        with stop_on_signals(runner):
            summary = runner.run()
    print(summary.format())
    print(describe_segmenter(runner))
    if args.out:
        print(f"recorded to {args.out}" if summary.received else
              f"nothing recorded to {args.out}: no frame arrived")
    return 0
