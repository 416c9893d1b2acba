"""``temstream sim``: simulate a liquid-cell TEM movie with ground truth, or emulate a detector."""

from __future__ import annotations

import json
import logging
import pathlib

from temstream.cli._common import new_parser

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = new_parser(
        sub, "sim", "simulate a liquid-cell TEM movie with ground truth, or emulate a detector",
        "temstream sim dispersed --frames 100 --size 512 --seed 1 --out sim.h5\n"
        "  temstream sim assembly --publish tcp://127.0.0.1:5555 --fps 100 --frames 1000\n"
        "  temstream sim moire dose_e_per_A2=10 twist_deg=4 --frames 20 --npy moire.npy",
        description="Simulate a movie (scenarios: dispersed, assembly, etching, hex-lattice, "
                    "cube-lattice, moire, flow, sparse-large). KEY=VALUE pairs right after "
                    "SCENARIO (or --set KEY=VALUE anywhere) override simulator parameters "
                    "(values as JSON, e.g. stage_drift_nm_per_s=[0,0]); --config FILE reads "
                    "them from the [sim] table of a TOML file.")
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name")
    p.add_argument("--frames", type=int, default=None,
                   help="number of frames (default 100; endless when publishing)")
    p.add_argument("--size", type=int, default=512, help="frame side in px (default 512)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", metavar="FILE.h5", help="write the recording layout with truth")
    out.add_argument("--tiff", metavar="FILE.tif",
                     help="write frames as a TIFF stack (+ labels and truth CSV beside it)")
    out.add_argument("--npy", metavar="FILE.npy",
                     help="write frames as .npy (+ labels and truth CSV beside it)")
    out.add_argument("--publish", metavar="ENDPOINT",
                     help="stream frames over ZeroMQ like a detector, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="simulator parameter override (repeatable)")
    p.add_argument("--fps", type=float, default=100.0, help="publishing rate (default 100)")
    p.add_argument("--protocol", default="native", help="native | dectris-v2 (default native)")
    p.add_argument("--socket", default="push", choices=["push", "pub"])
    p.add_argument("--buffer", type=int, default=100,
                   help="frames rendered ahead and cycled when publishing (default 100)")
    p.set_defaults(func=run)


def _split_overrides(args) -> tuple[str, dict]:
    """The scenario name and KEY=VALUE simulator overrides (the tokens may come in any order)."""
    tokens = list(args.overrides or []) + [args.scenario] + list(args.set or [])
    names = [t for t in tokens if "=" not in t]
    if len(names) != 1:
        from temstream.cli import UsageError
        raise UsageError(f"give exactly one SCENARIO and KEY=VALUE overrides; got {tokens}")
    over = {}
    for t in tokens:
        if "=" in t:
            k, v = t.split("=", 1)
            k = k.removeprefix("sim.")
            try:
                over[k] = json.loads(v)
            except json.JSONDecodeError:
                over[k] = v
    return names[0], over


def _config_table(name) -> dict:
    """Simulator parameters from the ``[sim]`` table of a TOML file (a path or a shipped preset)."""
    import tomllib

    from temstream.cli import UsageError
    from temstream.config import ConfigError
    from temstream.config.schema import resolve_preset

    try:
        with open(resolve_preset(name), "rb") as f:
            table = tomllib.load(f).get("sim", {})
    except (ConfigError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"--config {name}: {exc}") from None
    if not isinstance(table, dict):
        raise UsageError(f"--config {name}: [sim] must be a table of simulator parameters")
    return table


def _summary(movie) -> str:
    t = movie.truth
    n = movie.frames.shape[0]
    per = t.groupby("frame").size()
    return (f"{movie.params['scenario']}: {n} frames of {movie.frames.shape[1]}x"
            f"{movie.frames.shape[2]} {movie.frames.dtype}, {movie.pixel_size_nm:g} nm/px, "
            f"{movie.frame_time_s:g} s/frame, dose {movie.params['dose_e_per_A2']:g} e/A^2; "
            f"counts mean {movie.frames.mean():.1f}; particles/frame "
            f"{per.mean() if len(per) else 0:.1f}, tracks {t.particle.nunique()}")


def run(args) -> int:
    from temstream.cli import UsageError

    if args.size < 32:
        raise UsageError(f"--size must be at least 32 px, got {args.size}")
    if args.frames is not None and args.frames < 1:
        raise UsageError(f"--frames must be at least 1, got {args.frames}")
    if not args.fps > 0:
        raise UsageError(f"--fps must be a number > 0, got {args.fps}")
    scenario, over = _split_overrides(args)
    if args.config:
        over = {**_config_table(args.config), **over}  # the command line wins
    if args.publish:
        import signal
        import threading

        from temstream.stream.emulator import emulate

        print(f"rendering {min(args.buffer, args.frames or args.buffer)} frames of {scenario} "
              f"({args.size}x{args.size} px) to stream on {args.publish}...", flush=True)
        stop = threading.Event()

        def on_signal(signum, _frame):
            if stop.is_set():
                raise KeyboardInterrupt
            print(f"{signal.Signals(signum).name}: stopping the stream", flush=True)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            stats = emulate(scenario, endpoint=args.publish, fps=args.fps, frames=args.frames,
                            protocol=args.protocol, size=args.size, seed=args.seed,
                            buffer=args.buffer, socket=args.socket, stop=stop,
                            announce=lambda line: print(line + "; Ctrl-C to stop", flush=True),
                            **over)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        print(f"sent {stats.frames_sent} frames: requested {stats.requested_fps:g} fps, "
              f"achieved {stats.achieved_fps:.2f} fps, lateness mean {stats.mean_late_ms:.3f} "
              f"ms, max {stats.max_late_ms:.3f} ms")
        return 0

    from temstream.sim import simulate

    frames = args.frames or 100
    try:
        movie = simulate(scenario, frames=frames, size=args.size, seed=args.seed,
                         progress=frames * args.size**2 > 20 * 512**2, **over)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(_summary(movie))
    if args.out:
        from temstream.record import write_movie

        # two-layer scenarios: the truth's per-layer labels in the layout a two-layer model
        # records (/data/layer_labels), and the per-layer masks
        extra = ({"layers": movie.layers, "layer_labels": movie.layer_labels}
                 if movie.layers is not None else None)
        path = write_movie(args.out, movie.frames, movie.labels, movie.truth,
                           pixel_size_nm=movie.pixel_size_nm, frame_time_s=movie.frame_time_s,
                           attrs={"simulation": json.dumps(movie.params), "seed": args.seed},
                           extra=extra)
        print(f"wrote {path}")
    elif args.tiff or args.npy:
        path = pathlib.Path(args.tiff or args.npy)
        stem = path.with_suffix("")
        if args.tiff:
            import tifffile

            tifffile.imwrite(path, movie.frames, imagej=True,
                             resolution=(1 / movie.pixel_size_nm, 1 / movie.pixel_size_nm),
                             metadata={"unit": "nm", "finterval": movie.frame_time_s})
            tifffile.imwrite(f"{stem}_labels.tif", movie.labels)
        else:
            import numpy as np

            np.save(path, movie.frames)
            np.save(f"{stem}_labels.npy", movie.labels)
            if movie.layers is not None:
                np.save(f"{stem}_layers.npy", movie.layers)
                np.save(f"{stem}_layer_labels.npy", movie.layer_labels)
        movie.truth.to_csv(f"{stem}_truth.csv", index=False)
        pathlib.Path(f"{stem}_params.json").write_text(json.dumps(movie.params, indent=1))
        print(f"wrote {path}, {stem}_labels{path.suffix}, {stem}_truth.csv, "
              f"{stem}_params.json")
    return 0
