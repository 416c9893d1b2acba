"""Hexagonal (or square) lattices fitted to particle positions.

:func:`fit_lattice` finds the lattice that most of a set of points sit on: the lattice constant
from the nearest-neighbour distances, the orientation from the mode of the bond angles (so a
second grain or stray points do not pull it), the origin from the points' fractional
coordinates, then a linear least-squares refinement of the two lattice vectors and the origin on
the points within ``inlier`` lattice constants of a site (a slightly strained lattice is fitted
as it is). :func:`fit_grains` fits a second lattice to the points the first one leaves out.

The instance stage of two-layer models (:mod:`temstream.tracking.layers`) uses these fits to
check and complete its detections, and the lattice analysis of a recording
(:mod:`temstream.tracking.analysis`) to measure lattice constants, orientations, twist angles,
sites, vibrations and defects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["Lattice", "fit_lattice", "fit_grains", "two_lattices", "wrap_angle"]


def wrap_angle(angle, period):
    """``angle`` wrapped into ``(-period / 2, period / 2]`` (any units).

    Examples
    --------
    >>> float(wrap_angle(50.0, 60.0)), float(wrap_angle(-30.0, 60.0))
    (-10.0, 30.0)
    """
    a = np.mod(np.asarray(angle, float) + period / 2, period)
    return np.where(a == 0, period / 2, a - period / 2)


@dataclass
class Lattice:
    """A fitted 2-D lattice.

    Attributes
    ----------
    origin : (2,) float64
        One site (x, y), px.
    vectors : (2, 2) float64
        Rows: the two lattice vectors (px); for a hexagonal lattice 60 deg apart.
    symmetry : int
        6 (hexagonal) or 4 (square).
    inliers : (N,) bool
        Which of the fitted points sit within the inlier distance of a site.
    rms : float
        RMS distance of the inliers from their sites (px).
    """

    origin: np.ndarray
    vectors: np.ndarray
    symmetry: int
    inliers: np.ndarray
    rms: float

    @property
    def a(self) -> float:
        """Lattice constant (px): the mean length of the two lattice vectors."""
        return float(np.mean(np.hypot(*self.vectors.T)))

    @property
    def theta(self) -> float:
        """Orientation (deg) in ``[0, 360 / symmetry)``: the direction of the lattice row
        nearest to +x, measured towards +y (clockwise on screen, rows point down)."""
        period = 360.0 / self.symmetry
        angles = np.degrees(np.arctan2(self.vectors[:, 1], self.vectors[:, 0]))
        step = np.array([0.0, period])  # the second vector is one period further on
        z = np.exp(2j * np.pi * (angles - step) / period).mean()
        t = float(np.mod(np.degrees(np.angle(z)) * period / 360.0, period))
        return 0.0 if period - t < 1e-9 else t

    def indices(self, points) -> np.ndarray:
        """Fractional lattice coordinates of ``points`` (N, 2): round them for the site."""
        return (np.asarray(points, float) - self.origin) @ np.linalg.inv(self.vectors)

    def sites_of(self, points) -> tuple[np.ndarray, np.ndarray]:
        """The nearest site of each point: integer indices (N, 2) and the site positions
        (N, 2), px."""
        ij = np.rint(self.indices(points))
        return ij.astype(np.int64), self.origin + ij @ self.vectors

    def residuals(self, points) -> np.ndarray:
        """Distance (px) of each point from its nearest site, (N,)."""
        _, sites = self.sites_of(points)
        return np.hypot(*(np.asarray(points, float) - sites).T)

    def sites_in(self, shape, margin: float = 0.0) -> np.ndarray:
        """Every site (N, 2) px inside a frame of ``shape`` (H, W), ``margin`` px from its
        edges."""
        h, w = shape
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], float)
        f = self.indices(corners)
        lo, hi = np.floor(f.min(0)) - 1, np.ceil(f.max(0)) + 1
        i, j = np.mgrid[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1]
        pts = self.origin + np.c_[i.ravel(), j.ravel()] @ self.vectors
        ok = ((pts[:, 0] >= margin) & (pts[:, 0] < w - margin)
              & (pts[:, 1] >= margin) & (pts[:, 1] < h - margin))
        return pts[ok]

    def moved_to(self, origin) -> "Lattice":
        """The same lattice with its origin on the site nearest ``origin`` (keeps site indices
        the same from frame to frame)."""
        f = np.rint((np.asarray(origin, float) - self.origin) @ np.linalg.inv(self.vectors))
        return Lattice(self.origin + f @ self.vectors, self.vectors, self.symmetry,
                       self.inliers, self.rms)


def _basis(a, theta_rad, symmetry):
    step = 2 * np.pi / symmetry if symmetry == 6 else np.pi / 2
    return a * np.array([[np.cos(theta_rad), np.sin(theta_rad)],
                         [np.cos(theta_rad + step), np.sin(theta_rad + step)]])


def fit_lattice(points, symmetry: int = 6, *, a: float | None = None,
                inlier: float = 0.3, min_points: int = 7,
                theta: float | None = None) -> Lattice | None:
    """Fit one lattice to the points most of which sit on it.

    Parameters
    ----------
    points : (N, 2) array_like
        Positions (x, y), px.
    symmetry : {6, 4}
        Hexagonal or square lattice.
    a : float, optional
        Lattice constant to start from (default: from the nearest-neighbour distances).
    inlier : float
        Points within ``inlier * a`` of a site are fitted; the others are outliers (another
        grain, another layer, interstitials, false detections).
    min_points : int
        Fewer points (or inliers) than this: no fit.
    theta : float, optional
        Orientation (deg) to start from (default: from the bond angles); with ``a``, e.g.
        from :func:`two_lattices`.

    Returns
    -------
    Lattice or None

    Examples
    --------
    >>> i, j = np.mgrid[-8:9, -8:9]
    >>> th = np.radians(12.0)
    >>> v = 20.0 * np.array([[np.cos(th), np.sin(th)], [np.cos(th + np.pi / 3),
    ...                                                   np.sin(th + np.pi / 3)]])
    >>> pts = np.c_[i.ravel(), j.ravel()] @ v + [200.0, 150.0]
    >>> lat = fit_lattice(pts)
    >>> round(lat.a, 6), round(lat.theta, 6), int(lat.inliers.sum())
    (20.0, 12.0, 289)
    """
    if symmetry not in (4, 6):
        raise ValueError(f"symmetry must be 6 (hexagonal) or 4 (square), not {symmetry!r}")
    pts = np.asarray(points, float).reshape(-1, 2)
    n = len(pts)
    if n < min_points:
        return None
    tree = cKDTree(pts)
    # twice the coordination: where two lattices overlap, a point's nearest neighbours are
    # often the other lattice's
    k = min(2 * symmetry, n - 1)
    dist, idx = tree.query(pts, k + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]
    if a is None:
        a = float(np.median(dist[:, 0]))
        # the typical bond among the k nearest (robust to a few close pairs)
        near = dist[(dist > 0.7 * a) & (dist < 1.3 * a)]
        if near.size:
            a = float(np.median(near))
    if not a > 0:
        return None
    if theta is not None:
        theta = np.radians(theta)
    else:
        ok = (dist > 0.75 * a) & (dist < 1.25 * a)
        if ok.sum() < min_points:
            return None
        d = pts[idx[ok]] - np.repeat(pts, k, axis=0).reshape(n, k, 2)[ok]
        phase = np.mod(symmetry * np.arctan2(d[:, 1], d[:, 0]), 2 * np.pi)
        hist, edges = np.histogram(phase, bins=72, range=(0, 2 * np.pi))
        hist = hist + np.roll(hist, 1) + np.roll(hist, -1)  # circular smoothing
        peak = 0.5 * (edges[np.argmax(hist)] + edges[np.argmax(hist) + 1])
        near = np.abs(wrap_angle(phase - peak, 2 * np.pi)) < np.pi / 12
        theta = (peak + np.angle(np.exp(1j * (phase[near] - peak)).mean())) / symmetry
    vectors = _basis(a, theta, symmetry)
    # origin: the circular mean of the fractional parts, around the point nearest the middle
    ref = pts[np.argmin(np.hypot(*(pts - pts.mean(0)).T))]
    f = (pts - ref) @ np.linalg.inv(vectors)
    shift = np.angle(np.exp(2j * np.pi * f).mean(0)) / (2 * np.pi)
    origin = ref + shift @ vectors
    inliers = np.zeros(n, bool)
    for _ in range(4):
        f = (pts - origin) @ np.linalg.inv(vectors)
        ij = np.rint(f)
        res = np.hypot(*((f - ij) @ vectors).T)
        inliers = res < inlier * a
        if inliers.sum() < min_points:
            return None
        # refine on the points within 3 sigma of their sites (Rayleigh: median = 1.177 sigma),
        # so that points of another grain or layer that happen to lie near a site weigh little
        tight = res < np.clip(3.0 * np.median(res[inliers]) / 1.177, 0.02 * a, inlier * a)
        use = tight if tight.sum() >= min_points else inliers
        # points = origin + i v1 + j v2: linear in (origin, v1, v2)
        A = np.c_[np.ones(int(use.sum())), ij[use]]
        sol, *_ = np.linalg.lstsq(A, pts[use], rcond=None)
        origin, vectors = sol[0], sol[1:]
        a = float(np.mean(np.hypot(*vectors.T)))
    f = (pts - origin) @ np.linalg.inv(vectors)
    res = np.hypot(*((f - np.rint(f)) @ vectors).T)
    inliers = res < inlier * a
    rms = float(np.sqrt(np.mean(res[inliers] ** 2))) if inliers.any() else float("nan")
    lat = Lattice(origin, vectors, symmetry, inliers, rms)
    return lat.moved_to(pts[inliers].mean(0)) if inliers.any() else lat


def fit_grains(points, symmetry: int = 6, *, max_grains: int = 2, min_share: float = 0.15,
               inlier: float = 0.3, min_points: int = 7, a: float | None = None) -> list[Lattice]:
    """Lattices of up to ``max_grains`` grains: each one fitted to the points the previous
    ones leave out, kept when it holds at least ``min_share`` of the points.

    a : float, optional
        Lattice constant to start each fit from (needed where the points are two overlapping
        lattices, whose nearest neighbours are not lattice neighbours).

    Returns
    -------
    list of Lattice
        Largest grain first; each ``inliers`` is over all of ``points``.

    Examples
    --------
    >>> i, j = np.mgrid[0:12, 0:12]
    >>> def grain(th, shift):
    ...     t = np.radians(th)
    ...     v = 10 * np.array([[np.cos(t), np.sin(t)],
    ...                        [np.cos(t + np.pi / 3), np.sin(t + np.pi / 3)]])
    ...     return np.c_[i.ravel(), j.ravel()] @ v + shift
    >>> left, right = grain(0.0, [0, 0]), grain(20.0, [300, 0])
    >>> [round(g.theta, 3) for g in fit_grains(np.r_[left, right])]
    [0.0, 20.0]
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    out: list[Lattice] = []
    left = np.ones(len(pts), bool)
    for _ in range(max_grains):
        if left.sum() < max(min_points, min_share * len(pts)):
            break
        lat = fit_lattice(pts[left], symmetry, a=a, inlier=inlier, min_points=min_points)
        if lat is None or lat.inliers.sum() < max(min_points, min_share * len(pts)):
            break
        full = np.zeros(len(pts), bool)
        full[np.flatnonzero(left)[lat.inliers]] = True
        out.append(Lattice(lat.origin, lat.vectors, lat.symmetry, full, lat.rms))
        left &= ~full
    return out


def two_lattices(points, a: float, *, min_twist: float = 1.0, min_ratio: float = 0.15,
                 inlier: float = 0.15, min_points: int = 12) -> list[Lattice]:
    """The lattices of two overlapping hexagonal layers, from all their points at once.

    The structure factor ``|sum_j exp(i k . r_j)|^2`` of the points, on a polar grid of wave
    vectors around the first reciprocal-lattice ring of a lattice of constant ``a`` (folded
    over the 60-degree symmetry), peaks once per lattice, however the points are split: the
    strongest peak and the strongest one at least ``min_twist`` degrees away from it (with at
    least ``min_ratio`` of its height) give each lattice's orientation and constant, which
    :func:`fit_lattice` then refines on the points within ``inlier`` lattice constants of its
    sites.

    Parameters
    ----------
    points : (N, 2) array_like
        Positions of the particles of both layers (x, y), px.
    a : float
        Approximate lattice constant (px; within about 15 %).

    Returns
    -------
    list of Lattice
        The stronger lattice first; one when the points show only one, none when they show none.

    Examples
    --------
    >>> i, j = np.mgrid[-7:8, -7:8]
    >>> def layer(th, shift):
    ...     t = np.radians(th)
    ...     v = 20 * np.array([[np.cos(t), np.sin(t)],
    ...                        [np.cos(t + np.pi / 3), np.sin(t + np.pi / 3)]])
    ...     return np.c_[i.ravel(), j.ravel()] @ v + shift
    >>> both = np.r_[layer(10.0, [0, 0]), layer(17.0, [3.0, 5.0])]
    >>> sorted(round(lat.theta, 3) for lat in two_lattices(both, 21.0))
    [10.0, 17.0]
    """
    pts = np.asarray(points, float).reshape(-1, 2)
    if len(pts) < 2 * min_points:
        return []
    # the points binned at a/8 and Fourier transformed: |F|^2 is the structure factor
    step = a / 8.0
    lo = pts.min(0)
    size = int(min(1024, 2 ** np.ceil(np.log2(np.ptp(pts, axis=0).max() / step + 2))))
    ij = np.clip(((pts - lo) / step).astype(int), 0, size - 1)
    grid = np.bincount(ij[:, 1] * size + ij[:, 0], minlength=size * size).reshape(size, size)
    spec = np.fft.fftshift(np.abs(np.fft.fft2(grid.astype(np.float64))) ** 2)
    k0 = 4 * np.pi / (np.sqrt(3) * a)
    phi = np.radians(np.arange(0.0, 60.0, 0.25))
    kr = k0 * np.linspace(0.85, 1.15, 13)
    dk = 2 * np.pi / (size * step)
    power = np.zeros((len(kr), len(phi)))
    from scipy.ndimage import map_coordinates

    for m in range(3):  # fold: directions phi, phi + 60, phi + 120 (and their opposites)
        ang = phi + m * np.pi / 3
        kx = kr[:, None] * np.cos(ang)[None]
        ky = kr[:, None] * np.sin(ang)[None]
        coords = np.stack([ky / dk + size // 2, kx / dk + size // 2])
        power += map_coordinates(spec, coords.reshape(2, -1), order=1).reshape(kx.shape)
    profile = power.max(0)
    smooth = (profile + np.roll(profile, 1) + np.roll(profile, -1)) / 3
    # local maxima (over +-1 deg), strongest first; the second at least max(min_twist,
    # 2.5 deg) from the first (the transform resolves a few degrees over a frame)
    window = [np.roll(smooth, s) for s in range(-4, 5) if s]
    maxima = np.flatnonzero(np.all([smooth >= w for w in window], axis=0))
    maxima = maxima[np.argsort(-smooth[maxima])]
    if not len(maxima):
        return []
    first = int(maxima[0])
    peaks = [first]
    apart = max(min_twist, 2.5)
    for m in maxima[1:]:
        if abs(float(wrap_angle(np.degrees(phi[m] - phi[first]), 60.0))) >= apart:
            if smooth[m] >= min_ratio * smooth[first]:
                peaks.append(int(m))
            break
    out = []
    for p in peaks:
        kk = kr[int(np.argmax(power[:, p]))]
        theta = np.mod(np.degrees(phi[p]) + 30.0, 60.0)  # real-space rows are 30 deg off
        lat = fit_lattice(points, a=4 * np.pi / (np.sqrt(3) * kk), theta=theta,
                          inlier=inlier, min_points=min_points)
        if lat is not None and all(abs(float(wrap_angle(lat.theta - o.theta, 60.0)))
                                   >= min_twist for o in out):
            out.append(lat)
    return out
