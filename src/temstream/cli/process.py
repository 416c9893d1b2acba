"""``temstream process``: run the pipeline stages on a file, no network, lossless."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import add_denoise_option, config_from_args, new_parser
from temstream.cli._pipeline import build_runner, describe_segmenter, stop_on_signals


def add_parser(sub) -> None:
    p = new_parser(sub, "process", "segment, track and record a movie file (offline, lossless)",
                   "temstream process movie.tif --out movie.hspy --frame-time 0.05")
    p.add_argument("input", nargs="+",
                   help="movie: temstream recording (.h5), EMD (Berkeley/Velox), MRC, TIFF "
                        "stack, DM3/DM4, SER/EMI or .npy; several movies (or folders of them) "
                        "go into --out DIR, one recording each")
    p.add_argument("--out", required=True, metavar="FILE.hspy|DIR",
                   help="recording to write (one input; .hspy: HyperSpy opens it as a movie), "
                        "or a folder for one recording per input (DIR/<name>.h5; done ones "
                        "are skipped when run again)")
    p.add_argument("--model", help="default (the U-Net, the default) | classical | bilayer | "
                                   "checkpoint path")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--tta", type=int, choices=[1, 2, 4, 8],
                   help="U-Nets: average over N rotations/mirrors of each frame (N network "
                        "passes; default segment.tta = 1)")
    add_denoise_option(p)
    p.add_argument("--frame-time", type=float, metavar="SECONDS",
                   help="frame period for inputs that do not record one (the input's own "
                        "wins; without either the time axis counts frames)")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="pixel size in nm for inputs without a calibration (the input's own "
                        "wins)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_batch_options(p)
    p.set_defaults(func=run)


class _Progress:
    """A sink that moves a tqdm bar."""

    def __init__(self, total: int, disable: bool):
        self.total, self.disable, self.bar = total, disable, None

    def series_start(self, event) -> None:
        if self.bar is None:  # drawn once frames flow, not before a setup error
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="frame", disable=self.disable, leave=False)

    def write(self, result) -> None:
        self.bar.update(1)

    def dropped(self, row) -> None:
        self.bar.update(int(row.get("count", 1)))

    def close(self, summary) -> None:
        if self.bar is not None:
            self.bar.close()


def _positive(value, option: str) -> float | None:
    from temstream.cli import UsageError

    if value is None:
        return None
    if not (value > 0 and value < float("inf")):
        raise UsageError(f"{option} must be a positive number, got {value!r}")
    return float(value)


def run(args) -> int:
    import time

    meta = {"frame_time_s": _positive(args.frame_time, "--frame-time"),
            "pixel_size_nm": _positive(args.pixel_size, "--pixel-size")}
    config = config_from_args(args, segment={"model": args.model, "backend": args.backend,
                                             "tta": args.tta})
    # a file has an end: whatever a preset says about live series, the run stops there
    config = config.replace(pipeline={"stop_at_series_end": True, "frames": 0})
    if is_batch(args):
        return run_batch(args, config, meta)
    args.input = args.input[0]
    if Path(args.input).resolve() == Path(args.out).resolve():
        raise ValueError("--out must differ from the input file")
    t0 = time.perf_counter()
    runner, summary = process_file(args.input, args.out, config, meta=meta, verbose=True,
                                   sinks=[_Progress(None, args.no_progress)])
    took = time.perf_counter() - t0
    print(f"processed {args.input} -> {args.out}")
    print(summary.format_offline(took))
    print(describe_segmenter(runner))
    return 0


def process_file(input, out, config, *, segmenter=None, sinks=None, meta=None,
                 verbose=False):
    """One movie file -> one recording, lossless: what ``temstream process`` runs for each
    input, in this process or on a Dask worker (:mod:`temstream.distributed`).

    Parameters
    ----------
    input, out : str or Path
        The movie and the recording to write.
    config : Config
    segmenter : optional
        A segmenter already loaded for ``config`` (a Dask worker keeps one per model);
        loaded from the configuration when None.
    sinks : list or "progress", optional
        Further sinks; ``"progress"`` shows a progress bar. A sink with a ``total`` of
        None learns the movie's length.
    meta : dict, optional
        ``frame_time_s`` (s) and ``pixel_size_nm`` (nm) for inputs that do not record them
        (the input's own values win).
    verbose : bool
        Say what is processed and which calibrations are unknown.

    Returns
    -------
    (Runner, RunSummary)
    """
    import numpy as np

    from temstream.cli._common import open_input_movie
    from temstream.stream.sources import MemorySource

    fallback = meta or {}
    with open_input_movie(input) as movie:
        meta = {"pixel_size_nm": movie.pixel_size_nm or fallback.get("pixel_size_nm"),
                "frame_time_s": movie.frame_time_s or fallback.get("frame_time_s"),
                "source_file": str(input)}
        if meta["frame_time_s"] is None:
            meta["time_units"] = "frame"  # the time axis counts frames
        if verbose:
            _say_what(input, out, movie, meta, np)
        if sinks == "progress":
            sinks = [_Progress(len(movie), False)]
        for sink in sinks or []:
            if isinstance(sink, _Progress) and sink.total is None:
                sink.total = len(movie)
        source = MemorySource(movie, meta={k: v for k, v in meta.items() if v is not None})
        runner = build_runner(config, source, out=out, flow="lossless", sinks=sinks,
                              segmenter=segmenter)
        with stop_on_signals(runner):
            summary = runner.run()
    return runner, summary


def _say_what(input, out, movie, meta, np) -> None:
    print(f"processing {input}: {len(movie)} frames of {movie.shape[0]}x{movie.shape[1]} "
          f"{np.dtype(movie.dtype).name} -> {out}")
    if meta["pixel_size_nm"] is None:
        print("pixel size unknown (give --pixel-size NM): positions in pixels, the nm "
              "columns are NaN")
    if meta["frame_time_s"] is None:
        print("frame time unknown (give --frame-time SECONDS): the time axis counts frames")


# -- several inputs, a folder of recordings, a Dask cluster (temstream.distributed) ----------
def add_batch_options(p) -> None:
    g = p.add_argument_group(
        "several movies", "With several inputs (or a folder --out, or a cluster) each movie "
        "becomes DIR/<name>.h5, written as <name>.partial.h5 until it is complete; a movie "
        "whose recording is complete with the same settings is skipped, one that fails is "
        "reported and the others go on. See docs/distributed.md.")
    c = g.add_mutually_exclusive_group()
    c.add_argument("--cluster", metavar="local[:N]",
                   help="process the movies on a local Dask cluster of N worker processes "
                        "(default: one per core); each worker loads the model once")
    c.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="process the movies on the workers of a running Dask scheduler (they "
                        "need temstream and the files at the same paths)")
    g.add_argument("--overwrite", action="store_true",
                   help="process every movie again, also those whose recording is complete")


def is_batch(args) -> bool:
    """Several inputs, a folder input or ``--out``, or a cluster: the batch path."""
    out = Path(args.out)
    return (len(args.input) > 1 or bool(args.cluster or args.scheduler) or out.is_dir()
            or out.suffix.lower() not in (".h5", ".hdf5", ".hspy", ".emd")
            or any(Path(i).is_dir() for i in args.input))


def run_batch(args, config, meta: dict) -> int:
    from functools import partial

    from temstream.distributed import plan_jobs, run_jobs

    jobs = plan_jobs(args.input, args.out, config, overwrite=args.overwrite)
    result = run_jobs(jobs, partial(process_file, meta=meta), config, cluster=args.cluster,
                      scheduler=args.scheduler, progress=not args.no_progress)
    print(result.format(each=args.no_progress))  # the progress bar showed each movie
    return 1 if result.failed else 0
