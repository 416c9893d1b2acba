"""Particle dynamics of the scenarios (overdamped Langevin steps on a ParticleSet)."""

from __future__ import annotations

import numpy as np


def hex_sites(shape, a_px: float, theta: float, origin_px, margin_px: float = 0.0) -> np.ndarray:
    """Sites of a hexagonal lattice covering a frame (plus a margin).

    Parameters
    ----------
    shape : (H, W)
    a_px : float
        Lattice constant (px).
    theta : float
        Lattice orientation (rad).
    origin_px : (2,)
        Position of one site (x, y) px.

    Returns
    -------
    (n, 2) float64 sites (x, y) in px.
    """
    return _lattice_sites(shape, a_px, theta, origin_px, margin_px,
                          np.array([[1.0, 0.0], [0.5, np.sqrt(3) / 2]]))


def square_sites(shape, a_px: float, theta: float, origin_px, margin_px: float = 0.0):
    """Sites (n, 2) px of a square lattice covering a frame; see :func:`hex_sites`."""
    return _lattice_sites(shape, a_px, theta, origin_px, margin_px, np.eye(2))


def _lattice_sites(shape, a_px, theta, origin_px, margin_px, basis):
    h, w = shape
    c, s = np.cos(theta), np.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    vec = basis @ rot.T * a_px
    reach = int(np.ceil((np.hypot(h, w) + 2 * margin_px) / (a_px * 0.8))) + 2
    i, j = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    centre = np.array([w / 2, h / 2])
    o = np.asarray(origin_px, float)
    o = o + np.round((centre - o) @ np.linalg.inv(vec)) @ vec
    pts = o + i.reshape(-1, 1) * vec[0] + j.reshape(-1, 1) * vec[1]
    ok = ((pts[:, 0] > -margin_px) & (pts[:, 0] < w + margin_px)
          & (pts[:, 1] > -margin_px) & (pts[:, 1] < h + margin_px))
    return pts[ok]
