"""Many movies at once: ``temstream process A B C --out DIR [--cluster local:N | --scheduler]``.

A movie is the unit of work. Each one is processed by the same stages and the same code path as a
single-process ``temstream process`` (segmentation, instances *and* linking, in frame order, on
the worker that holds it), so its recording is identical row for row; each worker process loads
the model once and keeps it for every movie it gets (:func:`worker_segmenter`).

- :mod:`~temstream.distributed.jobs`     :func:`plan_jobs`: inputs -> outputs, what is done
- :mod:`~temstream.distributed.batch`    :func:`run_jobs`: in this process or on Dask, progress,
  failures per file, :class:`BatchResult`
- :mod:`~temstream.distributed.cluster`  :func:`dask_client`: ``local[:N]`` or a scheduler address

How it scales (one GPU per worker, where the bottleneck moves): ``docs/distributed.md``.
"""

from __future__ import annotations

from temstream.distributed.batch import BatchResult, JobResult, run_jobs, worker_segmenter
from temstream.distributed.cluster import dask_client, parse_cluster
from temstream.distributed.jobs import Job, find_movies, is_done, plan_jobs

__all__ = ["Job", "JobResult", "BatchResult", "plan_jobs", "find_movies", "is_done",
           "run_jobs", "worker_segmenter", "dask_client", "parse_cluster"]
