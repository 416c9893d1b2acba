"""Liquid-cell TEM movie simulator with ground truth (numpy/scipy/numba, no torch).

Public API::

    SCENARIOS                         # name -> parameter dict
    simulate(scenario, *, frames, size, seed, **overrides) -> Movie
    iter_movie(scenario, *, size, seed, frames=None, **overrides) -> iterator of SimFrame
    training.training_pairs(seed, *, size=256, task="particles") -> (image, target) iterator

See docs/simulator.md for the physical model.
"""

from temstream.sim.movie import TRUTH_COLUMNS, Movie, SimFrame, iter_movie, simulate
from temstream.sim.particles import MATERIALS, SHAPES
from temstream.sim.scenarios import PHYSICS, SCENARIOS, scenario_params

__all__ = ["SCENARIOS", "PHYSICS", "SHAPES", "MATERIALS", "TRUTH_COLUMNS", "Movie", "SimFrame",
           "iter_movie", "simulate", "scenario_params"]
