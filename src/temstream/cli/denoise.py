"""``temstream denoise``: a low-dose movie file -> its expected counts, frame by frame."""

from __future__ import annotations

import time
from pathlib import Path

from temstream.cli._common import new_parser

#: output formats by suffix
FORMATS = (".npy", ".tif", ".tiff", ".h5")


def add_parser(sub):
    p = new_parser(
        sub, "denoise", "denoise a low-dose movie (each frame with the two before it)",
        "temstream denoise movie.tif --out movie_denoised.tif --model denoise",
        description="Denoise a movie file causally, frame by frame, with a network trained on "
                    "simulated low-dose movies (0.3-25 counts/px/frame; docs/denoise.md). The "
                    "output is float32 (N, H, W) expected counts: .npy, .tif (multi-page) or "
                    ".h5 (dataset /data/denoised/data, an EMD v0.2 group). The input is only "
                    "read.")
    p.add_argument("input", help="movie: .h5/.emd recording or EMD, .mrc, .tif, .dm3/.dm4, "
                                 ".ser, .npy")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="output file: .npy, .tif or .h5 (never the input)")
    p.add_argument("--model", default="denoise",
                   help="denoise (shipped, the default) or a checkpoint of "
                        "`temstream train --preset denoise`")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: torch's own choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _check_paths(src: Path, out: Path) -> None:
    from temstream.cli import UsageError

    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"--out {out}: write .npy, .tif or .h5, not {out.suffix or 'no suffix'}")
    if not src.exists():
        raise FileNotFoundError(2, "No such file", str(src))
    if out.exists() and out.resolve() == src.resolve():
        raise UsageError(f"--out {out} is the input: the input is never written")


def run(args) -> int:
    import numpy as np

    from temstream.cli import UsageError
    from temstream.cli._common import open_input_movie
    from temstream.models.checkpoints import CheckpointError

    src, out = Path(args.input), Path(args.out)
    _check_paths(src, out)
    from temstream.models.denoise import load_denoiser

    try:
        den = load_denoiser(args.model, threads=args.threads)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    with open_input_movie(src) as movie:
        n, (h, w) = len(movie), movie.shape
        print(f"denoising {src}: {n} frames of {h}x{w} {np.dtype(movie.dtype).name} with "
              f"{den.name} -> {out}", flush=True)
        frames = _progress(range(n), not args.no_progress)
        stream = den.stream()
        write = _writer(out, n, (h, w), movie)
        t0 = time.perf_counter()
        with write as put:
            for i in frames:
                put(i, stream(np.asarray(movie[i])))
        took = time.perf_counter() - t0
    print(f"wrote {out}: {n} frames of {h}x{w} float32 expected counts per pixel in "
          f"{took:.1f} s ({1e3 * took / max(n, 1):.0f} ms per frame)")
    return 0


def _progress(it, show: bool):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, unit="frame", desc="denoise")


class _writer:
    """Frame-by-frame writing of a float32 (N, H, W) stack: ``with _writer(...) as put:
    put(i, frame)``; an output left half-written by an error is removed."""

    def __init__(self, path: Path, n: int, shape, movie):
        self.path, self.n, self.shape, self.movie = path, n, tuple(shape), movie

    def __enter__(self):
        import numpy as np

        kind = self.path.suffix.lower()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if kind == ".npy":
            arr = np.lib.format.open_memmap(self.path, mode="w+", dtype=np.float32,
                                            shape=(self.n, *self.shape))
            self._close = arr.flush

            def put(i, frame):
                arr[i] = frame
        elif kind in (".tif", ".tiff"):
            import tifffile

            tw = tifffile.TiffWriter(self.path, bigtiff=4 * self.n * np.prod(self.shape) > 2**31)
            self._close = tw.close

            def put(i, frame):
                tw.write(np.asarray(frame, np.float32), contiguous=True)
        else:
            put = self._h5()
        return put

    def _h5(self):
        import h5py
        import numpy as np

        f = h5py.File(self.path, "w")
        f.attrs.update(version_major=0, version_minor=2)
        g = f.create_group("data/denoised")
        g.attrs["emd_group_type"] = 1
        ds = g.create_dataset("data", (self.n, *self.shape), np.float32,
                              chunks=(1, *self.shape))
        ds.attrs["units"] = "expected counts"
        dt = self.movie.frame_time_s or 1.0
        px = self.movie.pixel_size_nm or 1.0
        for k, (name, step, units) in enumerate(
                [("time", dt, "s" if self.movie.frame_time_s else "frame"),
                 ("y", px, "nm" if self.movie.pixel_size_nm else "px"),
                 ("x", px, "nm" if self.movie.pixel_size_nm else "px")], start=1):
            size = (self.n, *self.shape)[k - 1]
            dim = g.create_dataset(f"dim{k}", data=np.arange(size) * step)
            dim.attrs.update(name=name, units=units)
        self._close = f.close

        def put(i, frame):
            ds[i] = frame
        return put

    def __exit__(self, exc_type, *exc):
        self._close()
        if exc_type is not None:
            self.path.unlink(missing_ok=True)
        return False
