"""Scoring segmentation models beside the classical baseline, from Python or the command line.

>>> import temstream
>>> report = temstream.evaluate(["default"], ["sim:dispersed"], doses=["moderate"],
...                             movies=2, frames=2, size=128)      # doctest: +SKIP
>>> print(report.to_markdown())                                    # doctest: +SKIP
>>> report.figure("eval.png")                                      # doctest: +SKIP

Each model is scored through the very stages a live run builds from the same configuration
(:func:`temstream.pipeline.assemble.build_stages`); ``temstream evaluate`` is this function
behind argparse, and ``docs/eval.md`` is its report.
"""

from __future__ import annotations

import logging

from temstream.config import Config, load_config
from temstream.evaluation.data import DOSES, TRUTHS, simulated_sets, split_data
from temstream.evaluation.models import Model, load_model, load_models
from temstream.evaluation.report import Report
from temstream.evaluation.scoring import evaluate_real, evaluate_simulated, score_frames

__all__ = ["evaluate", "Report", "Model", "load_model", "load_models", "DOSES", "TRUTHS",
           "evaluate_real", "evaluate_simulated", "score_frames"]

log = logging.getLogger(__name__)


def evaluate(models=("default",), data=("sim", "real"), *, config: Config | None = None,
             doses=("low", "moderate", "high"), frames: int = 4, movies: int = 8,
             size: int = 256, seed: int = 2024, truth: str = "extent",
             backend: str | None = None, tta: int | None = None,
             progress: bool = False) -> Report:
    """Score ``models`` (always beside ``classical``) on simulated movies and labelled images.

    Parameters
    ----------
    models : sequence of str
        ``NAME[@KEY=VALUE...]`` (:mod:`temstream.evaluation.models`): a shipped model, a
        checkpoint folder, each optionally with settings of its own.
    data : sequence of str
        ``"sim"``, ``"sim:NAME[,NAME]"``, ``"real"`` or a labelled folder
        (:mod:`temstream.evaluation.data`).
    config : Config, optional
        The configuration the stages are built from (its defaults when None).
    doses : sequence of str
        Keys of :data:`DOSES`.
    frames, movies, size, seed : int
        Frames per simulated movie, independent movies per (scenario, dose) (seeds ``seed``,
        ``seed + 1``...), frame edge (px).
    truth : {"extent", "half-contrast"}
        The simulated truth's convention (:data:`TRUTHS`).
    backend : str, optional
        Inference backend for the U-Nets (``segment.backend`` when None).
    tta : int, optional
        Test-time augmentation passes for the U-Nets (``segment.tta`` when None).
    progress : bool
        A progress bar over the simulated sets.

    Returns
    -------
    Report

    Raises
    ------
    ValueError
        For unknown data items, doses or truths, or fewer than one movie or frame
        (:class:`~temstream.config.ConfigError`, a ValueError, for bad settings).
    """
    config = load_config() if config is None else config
    scenarios, real = split_data(list(data))
    bad = [d for d in doses if d not in DOSES]
    if bad:
        raise ValueError(f"unknown doses {bad}; choose from {list(DOSES)}")
    if movies < 1 or frames < 1:
        raise ValueError("movies and frames must be at least 1")
    loaded = load_models(models, config, backend=backend, tta=tta)
    rows, examples = [], []
    if scenarios:
        from tqdm import tqdm

        sets = simulated_sets(scenarios, {d: DOSES[d] for d in doses}, frames=frames,
                              movies=movies, size=size, seed=seed, truth=truth)
        sets = tqdm(sets, total=len(scenarios) * len(doses), unit="set", desc="evaluate",
                    disable=not progress)
        r, e = evaluate_simulated(loaded, sets, progress=progress)
        rows, examples = rows + r, examples + e
    for label, folder in real:
        from temstream.models.training.realdata import load_msa_em

        r, e = evaluate_real(loaded, load_msa_em(folder), label=label)
        rows, examples = rows + r, examples + e
    settings = ", ".join(f"{k} = {v}" for k, v in vars(config.instances).items())
    header = {"Instances": f"the pipeline's ([instances] {settings}); a model's "
                           "instances.* settings after @ are its own",
              "Thresholds": ", ".join(m.describe() for m in loaded.values())}
    if scenarios:
        header["Simulated truth"] = TRUTHS[truth]
    return Report(rows, examples, loaded, header)
