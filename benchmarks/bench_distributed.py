"""Many movies on a local Dask cluster: 2 workers vs 1, identical recordings, 200 small movies.

1. Scaling: the same ``--movies`` simulated movies (``dispersed``, ``--frames`` frames of
   ``--size``², written once as .npy into ``--dir``) processed with ``--model`` by
   ``temstream.process(..., client=...)`` on a local cluster of 1 worker, then of 2 workers
   (one thread each). Throughput = frames / wall time from the first submission to the last
   result (the clusters are started before, their start-up time is listed apart; each worker
   loads the model on its first movie, which is inside the time). Every recording is compared
   with a single-process ``temstream process`` of the same movie, row for row (tables, label
   and frame stacks; clock times and durations excepted).
2. Batch: ``--small`` small movies (10 frames of 64², plus 2 broken files) in one call on a
   local:2 cluster, then the same call again (the done ones are skipped).

The machine's load average (``os.getloadavg``) is printed before and after each part: on a
shared machine, other processes compete for the same cores.

    python benchmarks/bench_distributed.py [--movies 4 --frames 40 --size 256 --model default]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def same_recording(a_path, b_path) -> bool:
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        for name in a["data"]:
            if not np.array_equal(a["data"][name]["data"][()], b["data"][name]["data"][()]):
                return False
        pa, pb = a["particles"][()], b["particles"][()]
        if pa.dtype != pb.dtype or len(pa) != len(pb):
            return False
        if not all(np.array_equal(pa[c], pb[c], equal_nan=pa[c].dtype.kind == "f")
                   for c in pa.dtype.names):
            return False
        fa, fb = a["frames_info"][()], b["frames_info"][()]
        keep = [c for c in fa.dtype.names if c not in ("receive_time",) and not c.endswith("_ms")]
        return all(np.array_equal(fa[c], fb[c], equal_nan=fa[c].dtype.kind == "f") for c in keep)


def make_movies(folder: Path, n: int, frames: int, size: int) -> list[Path]:
    from temstream.sim.movie import simulate

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"movie{i:02d}.npy"
        if not p.exists():
            np.save(p, simulate("dispersed", frames=frames, size=size, seed=i).frames)
        out.append(p)
    return out


def small_movies(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = folder / f"small{i:03d}.npy"
        if p.exists():
            continue
        c = rng.uniform(15, 49, (3, 2))
        movie = []
        for t in range(10):
            img = np.full((64, 64), 1000.0)
            for x, y in c + [t * 0.5, 0]:
                img[(xx - x) ** 2 + (yy - y) ** 2 <= 25] = 400
            movie.append(rng.poisson(img).astype(np.uint16))
        np.save(p, np.stack(movie))
    for name in ("broken-a.npy", "broken-b.npy"):
        (folder / name).write_bytes(b"not a movie")
    return sorted(folder.glob("*.npy"))


def _cpu_seconds() -> float:
    import resource

    return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])


def _warm_worker(tiny: str, root: str, config) -> float:
    """On a worker: the imports, numba kernels and model a first movie would pay for."""
    import contextlib
    import io

    from temstream.cli.process import process_file
    from temstream.distributed.batch import tune_malloc, worker_segmenter

    t0 = time.perf_counter()
    tune_malloc()
    with contextlib.redirect_stdout(io.StringIO()):
        process_file(tiny, f"{root}/tiny-{os.getpid()}.h5", config,
                     segmenter=worker_segmenter(config))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movies", type=int, default=4)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--model", default="default")
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2, help="runs of each, alternating order")
    ap.add_argument("--dir", default=None, help="keep the movies here (default: a temp dir)")
    ap.add_argument("--quick", action="store_true", help="2 movies of 20 frames, 40 small")
    args = ap.parse_args()
    if args.quick:
        args.movies, args.frames, args.small = 2, 20, 40
    from distributed import Client, LocalCluster

    import temstream
    from temstream.cli.process import process_file
    from temstream.config import load_config

    root = Path(args.dir or tempfile.mkdtemp(prefix="temstream-bench-dist-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"# Dask-distributed processing ({os.cpu_count()} CPU cores; {load()})\n")
    movies = make_movies(root / "movies", args.movies, args.frames, args.size)
    single = root / "single"
    single.mkdir(exist_ok=True)
    n_frames = args.movies * args.frames
    tiny = root / "tiny.npy"
    np.save(tiny, np.load(movies[0])[:4])
    config = load_config(None, [f"segment.model={args.model}"])
    ref = config.replace(segment={"threads": 1})

    def single_run(cfg, tag):
        t0 = time.perf_counter()
        for m in movies:
            process_file(str(m), str(single / f"{m.stem}-{tag}.h5"), cfg)
        return time.perf_counter() - t0

    # warm this process as the workers are warmed: imports, numba kernels, the model
    with contextlib.redirect_stdout(io.StringIO()):
        process_file(str(tiny), str(root / "tiny-warm.h5"), config)
    clusters = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
        client = Client(lc)
        t1 = time.perf_counter()
        client.run(_warm_worker, str(tiny), str(root), config)  # imports + model, per worker
        clusters[workers] = (lc, client, t1 - t0, time.perf_counter() - t1)
    times: dict = {k: [] for k in ("all", "one", 1, 2)}
    loads: dict = {k: [] for k in times}
    cpus: dict = {k: [] for k in times}

    def cpu_s(key) -> float:
        """CPU seconds (user + system) used so far by what runs ``key``'s movies."""
        own = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        if key in clusters:
            return own + sum(clusters[key][1].run(_cpu_seconds).values())
        return own
    order = ["all", "one", 1, 2] * args.repeat
    for rep in range(args.repeat):
        for key in (order[:4] if rep % 2 == 0 else order[:4][::-1]):
            before = os.getloadavg()[0]
            c0 = cpu_s(key)
            if key == "all":
                times[key].append(single_run(config, "all"))
            elif key == "one":
                times[key].append(single_run(ref, "one"))
            else:
                r = temstream.process(movies, root / f"dask{key}", model=args.model,
                                      client=clusters[key][1], overwrite=True, progress=False)
                assert not r.failed, r.failed
                times[key].append(r.wall_s)
            loads[key].append((before + os.getloadavg()[0]) / 2)
            cpus[key].append(cpu_s(key) - c0)
    same = {k: all(same_recording(single / f"{m.stem}-one.h5", root / f"dask{k}" /
                                  f"{m.stem}.h5") for m in movies) for k in (1, 2)}
    for lc, client, *_ in clusters.values():
        client.close()
        lc.close()
    best = {k: min(v) for k, v in times.items()}
    base = n_frames / best[1]
    print(f"\n{args.movies} movies × {args.frames} frames of {args.size}², "
          f"`--model {args.model}`, best of {args.repeat} runs in alternating order (all "
          "wall times listed); workers and this process warmed first (imports, numba, model)\n")
    print("| run | start-up: cluster + warm-up (s) | wall (s), best | all runs (s) | mean load "
          "average | CPU s per frame | frames/s | vs 1 worker | recordings vs single process "
          "(1 thread) |")
    print("|---|---|---|---|---|---|---|---|---|")
    names = {"all": "single process, all cores (torch's default)",
             "one": "single process, `segment.threads=1`", 1: "local cluster, 1 worker × 1 thread",
             2: "local cluster, 2 workers × 1 thread"}
    for k in ("all", "one", 1, 2):
        start = (f"{clusters[k][2]:.1f} + {clusters[k][3]:.1f}" if k in clusters else "–")
        fps = n_frames / best[k]
        verdict = ("identical" if same[k] else "DIFFERENT") if k in same else (
            "reference" if k == "one" else "x, y, score differ in the 8th digit")
        print(f"| {names[k]} | {start} | {best[k]:.1f} | "
              f"{', '.join(f'{t:.1f}' for t in times[k])} | "
              f"{np.mean(loads[k]):.1f} | {np.median(cpus[k]) / n_frames:.3f} | {fps:.2f} | "
              f"{fps / base:.2f}× | {verdict} |")

    small = small_movies(root / "small", args.small)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=40) as lc, \
            Client(lc) as client:
        out = root / "small-out"
        first = temstream.process(small, out, model=args.model, client=client,
                                  overwrite=True, progress=False)
        second = temstream.process(small, out, model=args.model, client=client,
                                   progress=False)
    print(f"\n{len(small)} small movies (10 frames of 64², 2 of them broken) in one call, "
          f"local:2, `--model {args.model}` ({load()})\n")
    print("| call | done | skipped | failed | wall (s) |")
    print("|---|---|---|---|---|")
    for name, r in (("first", first), ("second (same call again)", second)):
        print(f"| {name} | {len(r.done)} | {len(r.skipped)} | {len(r.failed)} | "
              f"{r.wall_s:.1f} |")
    print(f"\nfailures reported: {sorted(Path(x.input).name for x in first.failed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
