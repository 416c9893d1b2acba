"""The pipeline on frames held in memory: labels and the linked particle table, no recording.

What a notebook or the napari widget calls to run a model, the instances and the linker on a
stack: the same stages as ``temstream process`` (:func:`~temstream.pipeline.assemble.build_stages`),
run by the same :class:`~temstream.pipeline.runner.Runner` (lossless), collected in memory.
"""

from __future__ import annotations

import numpy as np

from temstream.config import Config
from temstream.pipeline.assemble import build_stages, load_segmenter_from_config
from temstream.pipeline.runner import Runner


class _Collect:
    """A sink keeping every frame's labels and table."""

    def __init__(self, shape: tuple[int, int], n: int):
        self.labels = np.zeros((n,) + tuple(shape), np.int32)
        self.tables: list[dict] = []

    def series_start(self, event) -> None:
        pass

    def write(self, result) -> None:
        self.labels[result.index] = result.labels
        t = {k: np.asarray(v) for k, v in result.table.items() if np.ndim(v) == 1}
        t["frame"] = np.full(len(t.get("x", ())), result.index, np.int64)
        self.tables.append(t)

    def dropped(self, row) -> None:
        pass

    def close(self, summary) -> None:
        pass


def run_on_frames(frames, config: Config | None = None, *, segmenter=None,
                  pixel_size_nm: float | None = None):
    """Segment, measure and link a stack of frames.

    Parameters
    ----------
    frames : array-like (N, H, W) or (H, W)
        Raw frames (a NumPy or Dask array, or a sequence of 2-D arrays).
    config : Config, optional
        Settings (``segment.model``, ``instances``, ``tracking``...); the defaults when None.
    segmenter : optional
        A segmenter already loaded for ``config``.
    pixel_size_nm : float, optional
        Passed to the stages as series metadata, and kept in ``particles.attrs``.

    Returns
    -------
    labels : ndarray (N, H, W) int32
        Instance labels per frame, 0 = background.
    particles : pandas.DataFrame
        One row per particle per frame: ``frame``, ``particle`` (track id), ``x``, ``y``,
        ``area``, ``angle``, ``layer``, ``score``, ...
    summary : RunSummary
    """
    import pandas as pd

    from temstream.config import Config as _Config
    from temstream.stream.sources import MemorySource

    config = config or _Config()
    if np.ndim(frames) == 2:
        frames = np.asarray(frames)[None]
    n = len(frames)
    shape = tuple(np.shape(frames[0]))
    segmenter = segmenter or load_segmenter_from_config(config)
    sink = _Collect(shape, n)
    meta = {"pixel_size_nm": pixel_size_nm} if pixel_size_nm else {}
    source = MemorySource((np.asarray(frames[i]) for i in range(n)), meta=meta)
    runner = Runner(source, **build_stages(config, segmenter), sinks=[sink], flow="lossless",
                    queue_size=config.pipeline.queue_size)
    summary = runner.run()
    tables = [pd.DataFrame(t) for t in sink.tables if len(t.get("x", ()))]
    df = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["frame", "particle", "x", "y", "area"])
    if pixel_size_nm:
        df.attrs["pixel_size_nm"] = pixel_size_nm
    return sink.labels, df, summary
