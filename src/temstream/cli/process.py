"""``temstream process``: run the pipeline stages on a file, no network, lossless."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import config_from_args, new_parser
from temstream.cli._pipeline import build_runner, describe_segmenter, stop_on_signals


def add_parser(sub) -> None:
    p = new_parser(sub, "process", "segment, track and record a movie file (offline, lossless)",
                   "temstream process movie.tif --out movie.h5 --model classical")
    p.add_argument("input", help="movie: temstream recording (.h5), EMD (Berkeley/Velox), MRC, "
                                 "TIFF stack, DM3/DM4, SER/EMI or .npy")
    p.add_argument("--out", required=True, metavar="FILE.h5", help="recording to write")
    p.add_argument("--model", help="classical | default | bilayer | checkpoint path")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--tta", type=int, choices=[1, 2, 4, 8],
                   help="U-Nets: average over N rotations/mirrors of each frame (N network "
                        "passes; default segment.tta = 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class _Progress:
    """A sink that moves a tqdm bar."""

    def __init__(self, total: int, disable: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", disable=disable, leave=False)

    def series_start(self, event) -> None:
        pass

    def write(self, result) -> None:
        self.bar.update(1)

    def dropped(self, row) -> None:
        self.bar.update(1)

    def close(self, summary) -> None:
        self.bar.close()


def run(args) -> int:
    from temstream.cli._common import open_input_movie
    from temstream.stream.sources import MemorySource

    config = config_from_args(args, segment={"model": args.model, "backend": args.backend,
                                             "tta": args.tta})
    if Path(args.input).resolve() == Path(args.out).resolve():
        raise ValueError("--out must differ from the input file")
    with open_input_movie(args.input) as movie:
        meta = {"pixel_size_nm": movie.pixel_size_nm, "frame_time_s": movie.frame_time_s,
                "source_file": str(args.input)}
        source = MemorySource(movie, meta={k: v for k, v in meta.items() if v is not None})
        runner = build_runner(config, source, out=args.out, flow="lossless",
                              sinks=[_Progress(len(movie), args.no_progress)])
        with stop_on_signals(runner):
            summary = runner.run()
    print(f"processed {args.input} -> {args.out}")
    print(summary.format())
    print(describe_segmenter(runner))
    return 0
