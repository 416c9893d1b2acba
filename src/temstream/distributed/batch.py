"""Running a batch of jobs: in this process, or one task per movie on Dask workers.

:func:`run_jobs` submits every movie that is not done, shows one progress bar for the batch,
reports each movie as it finishes (a failure is reported with its error and the others go on)
and returns a :class:`BatchResult`. The task (:func:`_run_job`) runs the caller's
``process(input, out, config, segmenter=...)``, the same function a single-process
``temstream process`` runs, with the model the worker keeps (:func:`worker_segmenter`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from temstream.config import Config
from temstream.distributed.jobs import COMPLETE, Job

log = logging.getLogger(__name__)

_SEGMENTERS: dict[tuple[str, str], object] = {}  # per process (a Dask worker): key -> model
_SEGMENTERS_LOCK = threading.Lock()


_MALLOC_TUNED = False


def tune_malloc() -> bool:
    """Undo, in this process, what Dask's nanny does to glibc's allocator for its workers.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which switches off glibc's
    adaptive mmap threshold: every array over 128 kB (a probability map, a label image) is then
    mapped, zero-filled by page faults and unmapped again, frame after frame. Measured on the
    default U-Net at 256²: a worker took 2–3× as long per movie as the same single-threaded
    process; with 32 MiB mmap and 256 MiB trim thresholds (``mallopt``) it takes the same.
    Does nothing where that variable is not set or the C library is not glibc. Returns
    whether the thresholds were set.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return _MALLOC_TUNED
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and \
            bool(libc.mallopt(m_trim_threshold, 256 << 20))
    except (OSError, AttributeError):
        ok = False
    _MALLOC_TUNED = ok
    return ok


def worker_segmenter(config: Config):
    """The segmenter ``config`` names, loaded once per process and kept (a Dask worker
    processes every movie it gets with the one model; threads share it)."""
    from temstream.pipeline.assemble import load_segmenter_from_config

    key = (repr(config.segment), repr(config.classical))
    with _SEGMENTERS_LOCK:
        if key not in _SEGMENTERS:
            _SEGMENTERS[key] = load_segmenter_from_config(config)
        return _SEGMENTERS[key]


@dataclass
class JobResult:
    """What became of one movie.

    Attributes
    ----------
    input, out : str
    status : {"done", "skipped", "failed"}
    error : str
        Why it failed.
    frames : int
        Frames processed.
    seconds : float
        Time the worker spent on it.
    worker : str
        Where it ran (host:pid).
    """

    input: str
    out: str
    status: str
    error: str = ""
    frames: int = 0
    seconds: float = 0.0
    worker: str = ""

    def line(self) -> str:
        if self.status == "done":
            fps = self.frames / self.seconds if self.seconds else 0.0
            return (f"done     {self.input} -> {self.out} ({self.frames} frames, "
                    f"{self.seconds:.1f} s, {fps:.1f} frames/s)")
        if self.status == "skipped":
            return f"skipped  {self.input}: {self.out} is complete (--overwrite to redo)"
        return f"FAILED   {self.input}: {self.error}"


@dataclass
class BatchResult:
    """The outcome of :func:`run_jobs`: one :class:`JobResult` per movie, in input order."""

    results: list[JobResult] = field(default_factory=list)
    wall_s: float = 0.0
    workers: int = 1

    def _with(self, status: str) -> list[JobResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[JobResult]:
        return self._with("done")

    @property
    def skipped(self) -> list[JobResult]:
        return self._with("skipped")

    @property
    def failed(self) -> list[JobResult]:
        return self._with("failed")

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.done)

    @property
    def fps(self) -> float:
        """Frames processed per second of wall time, over the whole batch."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def format(self, each: bool = True) -> str:
        """Totals; with ``each``, first a line per failed movie."""
        lines = [r.line() for r in self.failed] if each else []
        lines.append(f"movies            {len(self.results)}: done {len(self.done)}, skipped "
                     f"{len(self.skipped)}, failed {len(self.failed)}")
        if not self.done:
            lines.append("frames processed  0 (nothing left to process)")
        else:
            lines.append(f"frames processed  {self.frames} in {self.wall_s:.1f} s "
                         f"({self.fps:.1f} frames/s, {self.workers} worker"
                         f"{'s' if self.workers != 1 else ''})")
        return "\n".join(lines)


def _run_job(process: Callable, job: Job, config: Config) -> JobResult:
    """One movie, on whichever process runs it; exceptions become a failed result."""
    import socket

    where = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    partial = Path(job.partial)
    try:
        from temstream.record.lazy import close_handles

        close_handles(job.out)  # a recording about to be replaced must not stay open here
        tune_malloc()
        segmenter = worker_segmenter(config)
        _, summary = process(job.input, str(partial), config, segmenter=segmenter)
        if summary.stopped_by in ("SIGINT", "SIGTERM", "interrupted"):
            raise KeyboardInterrupt  # Ctrl-C in this process: stop the batch, keep no partial
        if summary.stopped_by not in COMPLETE:
            raise RuntimeError(f"the run stopped early: {summary.stopped_by}")
        os.replace(partial, job.out)
        return JobResult(job.input, job.out, "done", frames=int(summary.processed),
                         seconds=time.perf_counter() - t0, worker=where)
    except BaseException as exc:  # noqa: BLE001 - reported per file; the batch goes on
        partial.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return JobResult(job.input, job.out, "failed", error=f"{type(exc).__name__}: {exc}",
                         seconds=time.perf_counter() - t0, worker=where)


class _Bar:
    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="movie", disable=not enabled, leave=False)
        self.frames = 0
        self.t0 = time.perf_counter()

    def update(self, r: JobResult) -> None:
        self.frames += r.frames
        dt = time.perf_counter() - self.t0
        self.bar.set_postfix_str(f"{self.frames} frames, {self.frames / dt:.1f}/s"
                                 if dt > 0 else "")
        self.bar.update(1)
        if not self.bar.disable:
            self.bar.write(r.line())

    def close(self) -> None:
        self.bar.close()


def run_jobs(jobs: list[Job], process: Callable, config: Config, *, cluster: str | None = None,
             scheduler: str | None = None, client=None, progress: bool = True) -> BatchResult:
    """Process the jobs that are not done; report every movie as it finishes.

    Parameters
    ----------
    jobs : list of Job
        From :func:`~temstream.distributed.jobs.plan_jobs`.
    process : callable
        ``process(input, out, config, segmenter=...) -> (runner, RunSummary)``: one movie to
        one recording (``temstream.cli.process.process_file``). Pickled by reference for
        Dask workers, which must be able to import it.
    config : Config
    cluster, scheduler, client
        Where to run: ``local[:N]``, a scheduler address or a ``distributed.Client``; all
        None: one movie after the other in this process.
    progress : bool
        A progress bar over the batch, and a line per movie.

    Returns
    -------
    BatchResult
    """
    results: dict[int, JobResult] = {i: JobResult(j.input, j.out, "skipped")
                                     for i, j in enumerate(jobs) if j.skip}
    todo = [(i, j) for i, j in enumerate(jobs) if not j.skip]
    bar = _Bar(len(jobs), progress)
    for r in results.values():
        bar.update(r)
    t0 = time.perf_counter()
    workers = 1
    try:
        if not todo:
            pass
        elif cluster is None and scheduler is None and client is None:
            for i, job in todo:
                results[i] = _run_job(process, job, config)
                bar.update(results[i])
        else:
            from temstream.distributed.cluster import dask_client

            with dask_client(cluster, scheduler, client=client) as c:
                workers = max(1, len(c.scheduler_info(n_workers=-1)["workers"]))
                _on_dask(c, todo, process, config, results, bar)
    finally:
        bar.close()
    return BatchResult([results[i] for i in range(len(jobs))], time.perf_counter() - t0,
                       workers)


def _on_dask(client, todo, process, config, results: dict, bar: _Bar) -> None:
    from distributed import as_completed

    index = {}
    futures = []
    for priority, (i, job) in enumerate(todo):
        fut = client.submit(_run_job, process, job, config, pure=False,
                            key=f"temstream-process-{i}-{os.getpid()}-{time.monotonic_ns()}",
                            priority=-priority)  # in input order where workers are free
        index[fut.key] = (i, job)
        futures.append(fut)
    for fut in as_completed(futures):
        i, job = index[fut.key]
        try:
            r = fut.result()
        except Exception as exc:  # noqa: BLE001 - a worker died (KilledWorker) or the like
            Path(job.partial).unlink(missing_ok=True)
            r = JobResult(job.input, job.out, "failed", error=f"{type(exc).__name__}: {exc}")
        results[i] = r
        bar.update(r)
        fut.release()
