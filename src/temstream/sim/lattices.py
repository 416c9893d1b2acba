"""Sites of one hexagonal layer of a two-layer (moiré) stack, with its defects.

:func:`layer_sites` draws what real two-layer nanoparticle lattices show: a hexagonal lattice of
any orientation and lattice constant, optionally covering only part of the field (a partial
second layer), split into two grains by a straight boundary (a twin or grain boundary: the
second grain's lattice turned by a misorientation angle), with vacancies (sites left empty) and
interstitials (extra particles at the centres of lattice triangles). Lengths are in any one unit
(px for training pairs, nm for movies); the truth it returns (the sites, which are interstitial,
and the vacant sites) is what the lattice analysis of a recording is scored against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from temstream.sim.dynamics import hex_sites


@dataclass
class LayerSites:
    """One layer's particle positions and defects.

    Attributes
    ----------
    sites : (n, 2) float64
        Occupied positions (x, y): lattice sites, then interstitial positions.
    interstitial : (n,) bool
        Which of ``sites`` are interstitials.
    grain : (n,) int8
        Grain of each site (0, or 1 beyond a grain boundary).
    vacant : (m, 2) float64
        Lattice sites left empty (vacancies), in the kept region.
    """

    sites: np.ndarray
    interstitial: np.ndarray
    grain: np.ndarray
    vacant: np.ndarray

    def __len__(self) -> int:
        return len(self.sites)


def _half_plane(points, point, normal):
    return (points - np.asarray(point)) @ np.asarray(normal) >= 0


def layer_sites(extent, a: float, theta: float, origin, rng: np.random.Generator, *,
                margin: float = 0.0, vacancy_fraction: float = 0.0,
                interstitial_fraction: float = 0.0, coverage: float = 1.0,
                misorientation: float = 0.0) -> LayerSites:
    """Sites of one hexagonal layer covering ``extent`` (plus ``margin``), with defects.

    Parameters
    ----------
    extent : (H, W)
        Field height and width (same unit as ``a``).
    a : float
        Lattice constant.
    theta : float
        Orientation of the lattice (rad).
    origin : (x, y)
        Position of one site.
    rng : numpy Generator
    margin : float
        Sites extend this far beyond the field (particles entering under drift).
    vacancy_fraction : float
        Probability that a lattice site is empty.
    interstitial_fraction : float
        Interstitials per lattice site (Poisson), each at the centre of a lattice triangle
        beside a random site, never closer than ``0.5 a`` to another interstitial.
    coverage : float
        Fraction of the field the layer covers, 1 = all; below 1 the layer ends at a straight
        edge of random direction (a partial layer).
    misorientation : float
        0, or the angle (rad) by which a second grain beyond a straight boundary through the
        field is turned: a grain (twin) boundary.

    Returns
    -------
    LayerSites
    """
    h, w = extent
    centre = np.array([w / 2, h / 2])
    sites = hex_sites((h, w), a, theta, origin, margin)
    grain = np.zeros(len(sites), np.int8)
    if misorientation:
        phi = rng.uniform(0, np.pi)
        normal = np.array([np.cos(phi), np.sin(phi)])
        point = centre + normal * rng.uniform(-0.25, 0.25) * min(h, w)
        other = hex_sites((h, w), a, theta + misorientation, rng.uniform(0, a, 2), margin)
        first = sites[~_half_plane(sites, point, normal)]
        second = other[_half_plane(other, point, normal)]
        if len(first) and len(second):  # no two particles on top of each other at the boundary
            d, _ = cKDTree(first).query(second)
            second = second[d > 0.75 * a]
        sites = np.concatenate([first, second])
        grain = np.r_[np.zeros(len(first), np.int8), np.ones(len(second), np.int8)]
    if coverage < 1.0:
        phi = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(phi), np.sin(phi)])
        # the edge where the covered fraction of the field (a disk's worth) is ``coverage``
        proj = np.sort((rng.uniform(0, 1, (4096, 2)) * [w, h] - centre) @ normal)
        cut = proj[int((1.0 - np.clip(coverage, 0.0, 1.0)) * (len(proj) - 1))]
        keep = (sites - centre) @ normal >= cut
        sites, grain = sites[keep], grain[keep]
    empty = rng.random(len(sites)) < vacancy_fraction
    vacant = sites[empty]
    sites, grain = sites[~empty], grain[~empty]
    n_int = int(rng.poisson(interstitial_fraction * len(sites))) if len(sites) else 0
    extra = np.zeros((0, 2))
    extra_grain = np.zeros(0, np.int8)
    if n_int:
        pick = rng.integers(0, len(sites), n_int)
        turn = theta + misorientation * grain[pick] + np.pi / 6 + \
            np.pi / 3 * rng.integers(0, 6, n_int)
        cand = sites[pick] + a / np.sqrt(3) * np.c_[np.cos(turn), np.sin(turn)]
        kept: list[int] = []
        for i, c in enumerate(cand):
            if all(np.hypot(*(cand[j] - c)) > 0.5 * a for j in kept):
                kept.append(i)
        extra, extra_grain = cand[kept], grain[pick][kept]
    return LayerSites(np.concatenate([sites, extra]),
                      np.r_[np.zeros(len(sites), bool), np.ones(len(extra), bool)],
                      np.r_[grain, extra_grain], vacant)
