"""What an evaluation scores on: simulated test movies with their truth, and labelled images.

Data items are named as on the command line: ``"sim"`` (every particle scenario), ``"sim:NAME[,
NAME...]"``, ``"real"`` (the folder in ``$TEMSTREAM_REAL_DATA``), or a folder with
``images/image_K.png`` and ``labels/label_K.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: dose levels as multiples of the scenario's default dose per frame
DOSES = {"low": 0.1, "moderate": 1.0, "high": 10.0}

#: conventions of the simulated truth, and what each means
TRUTHS = {
    "extent": "each particle's projected extent (the simulator's labels)",
    "half-contrast": "each particle where the noise-free frame is half-way between its "
                     "background and its core (the hand-drawn convention; --truth half-contrast)",
}

#: the half-contrast truth is drawn on the noise-free frame, smoothed this little (px)
TRUTH_SMOOTH_PX = 0.5


def split_data(items) -> tuple[list[str], list[tuple[str, Path]]]:
    """Data items -> (scenario names, [(label, folder)]).

    Raises
    ------
    ValueError
        For an unknown scenario or item, or ``"real"`` without ``$TEMSTREAM_REAL_DATA``.
    """
    from temstream.models.training.realdata import REAL_DATA_ENV, default_real_dir
    from temstream.sim import SCENARIOS

    scen, real = [], []
    for item in items or ["sim", "real"]:
        if item == "sim":
            scen += [s for s in SCENARIOS if s != "moire"]
        elif item.startswith("sim:"):
            names = item[4:].split(",")
            bad = [n for n in names if n not in SCENARIOS]
            if bad:
                raise ValueError(f"unknown scenarios {bad}; choose from {sorted(SCENARIOS)}")
            scen += names
        elif item == "real":
            d = default_real_dir()
            if d is None:
                raise ValueError(f"'real' needs ${REAL_DATA_ENV} (a folder with images/ and "
                                 "labels/); or give the folder itself")
            real.append((d.name, d))
        elif Path(item).is_dir():
            real.append((Path(item).name, Path(item)))
        else:
            raise ValueError(f"data {item!r} is not 'sim', 'sim:NAME', 'real' or a folder")
    return list(dict.fromkeys(scen)), real


def simulated_sets(scenarios, doses: dict, *, frames: int, movies: int, size: int, seed: int,
                   truth: str = "extent"):
    """Simulated test movies, ``movies`` independent ones per (scenario, dose), made lazily.

    Parameters
    ----------
    scenarios : list of str
    doses : dict of label -> multiple of the scenario's default dose
    frames, movies, size, seed : int
        Frames per movie, movies per set (seeds ``seed``, ``seed + 1``, ...), frame edge (px).
    truth : {"extent", "half-contrast"}
        See :data:`TRUTHS`.

    Yields
    ------
    (scenario, dose_label, dose_e_per_A2, list of Movie)
    """
    from temstream.sim import simulate
    from temstream.sim.scenarios import scenario_params

    if truth not in TRUTHS:
        raise ValueError(f"truth must be one of {list(TRUTHS)}, not {truth!r}")
    for scen in scenarios:
        base = scenario_params(scen)["dose_e_per_A2"]
        for label, mult in doses.items():
            group = [simulate(scen, frames=frames, size=size, seed=seed + k,
                              dose_e_per_A2=base * mult) for k in range(movies)]
            if truth == "half-contrast":
                group = [half_contrast_truth(m, scen, seed=seed + k, dose=base * mult)
                         for k, m in enumerate(group)]
            yield scen, label, base * mult, group


def half_contrast_truth(movie, scenario: str, *, seed: int, dose: float):
    """``movie`` with its labels redrawn on its noise-free twin (same seed and scene, no shot
    or read noise) at half of each particle's contrast: the hand-drawn convention, from the
    simulator (:func:`temstream.tracking.edges.half_contrast_outlines`)."""
    from temstream.sim import simulate
    from temstream.tracking.edges import half_contrast_outlines

    frames, size = movie.frames.shape[0], movie.frames.shape[1:]
    clean = simulate(scenario, frames=frames, size=size, seed=seed, dose_e_per_A2=dose,
                     noise=False)
    labels = np.stack([half_contrast_outlines(f, lab, smooth_px=TRUTH_SMOOTH_PX)
                       for f, lab in zip(clean.frames, movie.labels)])
    return dataclasses.replace(movie, labels=labels)
