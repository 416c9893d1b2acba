"""``temstream process``: run the pipeline stages on a file, no network, lossless."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import config_from_args, new_parser
from temstream.cli._pipeline import build_runner, describe_segmenter, stop_on_signals


def add_parser(sub) -> None:
    p = new_parser(sub, "process", "segment, track and record a movie file (offline, lossless)",
                   "temstream process movie.tif --out movie.hspy --frame-time 0.05")
    p.add_argument("input", help="movie: temstream recording (.h5), EMD (Berkeley/Velox), MRC, "
                                 "TIFF stack, DM3/DM4, SER/EMI or .npy")
    p.add_argument("--out", required=True, metavar="FILE.hspy",
                   help="recording to write (.hspy: HyperSpy opens it as a movie)")
    p.add_argument("--model", help="default (the U-Net, the default) | classical | bilayer | "
                                   "checkpoint path")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--tta", type=int, choices=[1, 2, 4, 8],
                   help="U-Nets: average over N rotations/mirrors of each frame (N network "
                        "passes; default segment.tta = 1)")
    p.add_argument("--frame-time", type=float, metavar="SECONDS",
                   help="frame period for inputs that do not record one (the input's own "
                        "wins; without either the time axis counts frames)")
    p.add_argument("--pixel-size", type=float, metavar="NM",
                   help="pixel size in nm for inputs without a calibration (the input's own "
                        "wins)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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

    import numpy as np

    from temstream.cli._common import open_input_movie
    from temstream.stream.sources import MemorySource

    frame_time = _positive(args.frame_time, "--frame-time")
    pixel_size = _positive(args.pixel_size, "--pixel-size")
    config = config_from_args(args, segment={"model": args.model, "backend": args.backend,
                                             "tta": args.tta})
    # a file has an end: whatever a preset says about live series, the run stops there
    config = config.replace(pipeline={"stop_at_series_end": True, "frames": 0})
    if Path(args.input).resolve() == Path(args.out).resolve():
        raise ValueError("--out must differ from the input file")
    with open_input_movie(args.input) as movie:
        print(f"processing {args.input}: {len(movie)} frames of {movie.shape[0]}x"
              f"{movie.shape[1]} {np.dtype(movie.dtype).name} -> {args.out}")
        meta = {"pixel_size_nm": movie.pixel_size_nm or pixel_size,
                "frame_time_s": movie.frame_time_s or frame_time,
                "source_file": str(args.input)}
        if meta["pixel_size_nm"] is None:
            print("pixel size unknown (give --pixel-size NM): positions in pixels, the nm "
                  "columns are NaN")
        if meta["frame_time_s"] is None:
            print("frame time unknown (give --frame-time SECONDS): the time axis counts frames")
            meta["time_units"] = "frame"
        source = MemorySource(movie, meta={k: v for k, v in meta.items() if v is not None})
        runner = build_runner(config, source, out=args.out, flow="lossless",
                              sinks=[_Progress(len(movie), args.no_progress)])
        t0 = time.perf_counter()
        with stop_on_signals(runner):
            summary = runner.run()
        took = time.perf_counter() - t0
    print(f"processed {args.input} -> {args.out}")
    print(summary.format_offline(took))
    print(describe_segmenter(runner))
    return 0
