"""Trajectory analysis on a recording's particle table.

Input everywhere: a pandas DataFrame with one row per particle per frame and
columns ``frame``, ``particle``, ``x``, ``y`` (pixels) and, where needed,
``angle`` (radians, unwrapped along the track) and ``area`` (pixels**2) --
the table :func:`temstream.read_particles` returns. ``mpp`` (microns, or any
length unit, per pixel) and ``fps`` (frames per second) convert units as in
trackpy.

The mean-squared displacements reuse trackpy (``tp.emsd``/``tp.imsd``);
trackpy is imported lazily inside those functions and is needed only there
(``pip install trackpy``). Everything else needs numpy, scipy and pandas.
"""

import numpy as np
import pandas as pd

__all__ = [
    "imsd", "emsd", "angular_msd", "diffusion_coefficient", "rotational_diffusion_coefficient",
    "compute_drift", "subtract_drift", "step_sizes", "van_hove", "non_gaussian_parameter",
    "vibration_rms", "lindemann_dynamic", "neighbour_pairs", "psi_k", "pair_distances",
    "area_rates",
]


def _trackpy():
    try:
        import trackpy
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("this function reuses trackpy's MSD code: pip install trackpy") from err
    return trackpy


def _check(traj, cols):
    missing = [c for c in cols if c not in traj.columns]
    if missing:
        raise ValueError(f"the particle table lacks columns {missing}; it needs {list(cols)}")


def imsd(traj, mpp=1.0, fps=1.0, max_lagtime=100):
    """Mean-squared displacement of each track (trackpy's ``imsd``; needs trackpy).

    Parameters
    ----------
    traj : DataFrame
        ``frame``, ``particle``, ``x``, ``y``.
    mpp : float
        Length units per pixel.
    fps : float
        Frames per second.
    max_lagtime : int
        Largest lag, frames.

    Returns
    -------
    DataFrame
        Index: lag time (s); one column per particle; MSD in units**2.
    """
    _check(traj, ("frame", "particle", "x", "y"))
    return _trackpy().imsd(traj, mpp, fps, max_lagtime=max_lagtime)


def emsd(traj, mpp=1.0, fps=1.0, max_lagtime=100):
    """Ensemble mean-squared displacement (trackpy's ``emsd``; needs trackpy).

    Parameters
    ----------
    traj : DataFrame
        ``frame``, ``particle``, ``x``, ``y``.
    mpp, fps : float
        Length units per pixel, frames per second.
    max_lagtime : int
        Largest lag, frames.

    Returns
    -------
    Series
        MSD (units**2) indexed by lag time (s).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> t = np.arange(5.0)
    >>> tr = pd.DataFrame({"frame": t.astype(int), "particle": 0, "x": 2 * t, "y": 0.0})
    >>> emsd(tr, max_lagtime=2).round(6).tolist()   # ballistic: (2 t)**2
    [4.0, 16.0]
    """
    _check(traj, ("frame", "particle", "x", "y"))
    return _trackpy().emsd(traj, mpp, fps, max_lagtime=max_lagtime)


def angular_msd(traj, fps=1.0, max_lagtime=100, column="angle"):
    """Ensemble mean-squared angular displacement (radians**2; needs trackpy).

    ``angle`` must be unwrapped along each track (the linker does that).
    In 2-D, MSAD(tau) = 2 D_r tau for free rotational diffusion.

    Returns
    -------
    Series
        MSAD indexed by lag time (s).
    """
    _check(traj, ("frame", "particle", column))
    return _trackpy().emsd(traj, 1.0, fps, max_lagtime=max_lagtime, pos_columns=[column])


def diffusion_coefficient(msd, fit_range=None, ndim=2):
    """Fit MSD = 2 ndim D t + c over a range of lag times.

    Parameters
    ----------
    msd : Series
        MSD indexed by lag time (from :func:`emsd`, or one column of
        :func:`imsd`).
    fit_range : (float, float), optional
        Lag-time interval (same unit as the index) to fit; default: the
        first quarter of the lags (at least 2 points).
    ndim : int
        Dimensions (2 for positions, 1 for an angle).

    Returns
    -------
    D : float
        Diffusion coefficient, units**2 / s.
    offset : float
        Intercept c (twice ndim times the localisation variance, minus
        motion blur).

    Examples
    --------
    >>> import pandas as pd
    >>> diffusion_coefficient(pd.Series([4.0, 8.0, 12.0], index=[1, 2, 3]), fit_range=(1, 3))
    (1.0, 0.0)
    """
    t = np.asarray(msd.index, dtype=np.float64)
    v = np.asarray(msd, dtype=np.float64)
    if fit_range is None:
        sel = np.arange(len(t)) < max(2, len(t) // 4)
    else:
        sel = (t >= fit_range[0]) & (t <= fit_range[1])
    sel &= np.isfinite(v)
    if sel.sum() < 2:
        raise ValueError(f"fit_range {fit_range} holds fewer than 2 finite lags; widen it")
    slope, offset = np.polyfit(t[sel], v[sel], 1)
    return float(round(slope / (2 * ndim), 12)), float(round(offset, 12))


def rotational_diffusion_coefficient(traj, fps=1.0, fit_range=None, max_lagtime=100,
                                     column="angle"):
    """Rotational diffusion coefficient D_r (rad**2/s) from MSAD = 2 D_r tau."""
    return diffusion_coefficient(angular_msd(traj, fps, max_lagtime, column),
                                 fit_range, ndim=1)[0]


def compute_drift(traj, degree=1, reference=None):
    """Drift of the field of view per frame, robust with few particles.

    trackpy's ``compute_drift`` sums the mean step of the particles, so with
    few particles it follows (and later removes) their own Brownian motion.
    Here the summed mean step is fitted by a polynomial in time of
    ``degree`` (1 = constant drift velocity), which removes only
    ``degree + 1`` degrees of freedom and keeps the diffusion; or, with
    ``reference``, the drift is the mean motion of particles known to be
    fixed (e.g. pinned lattice sites, substrate features).

    Parameters
    ----------
    traj : DataFrame
        ``frame``, ``particle``, ``x``, ``y``.
    degree : int or None
        Polynomial degree of the fit; None = no fit (trackpy's estimate).
    reference : sequence of int, optional
        Particle ids of immobile references; ``degree`` still applies.

    Returns
    -------
    DataFrame
        Index ``frame`` (every frame from first to last), columns ``x``,
        ``y``: displacement of the field relative to the first frame, pixels.
    """
    _check(traj, ("frame", "particle", "x", "y"))
    t = traj if reference is None else traj[traj.particle.isin(reference)]
    t = t.sort_values(["particle", "frame"])
    same = (t.particle.to_numpy()[1:] == t.particle.to_numpy()[:-1]) & \
        (np.diff(t.frame.to_numpy()) == 1)
    steps = pd.DataFrame({"frame": t.frame.to_numpy()[1:][same],
                          "x": np.diff(t.x.to_numpy())[same],
                          "y": np.diff(t.y.to_numpy())[same]})
    frames = np.arange(traj.frame.min(), traj.frame.max() + 1)
    mean = steps.groupby("frame")[["x", "y"]].mean().reindex(frames[1:]).fillna(0.0)
    cum = np.vstack([np.zeros((1, 2)), np.cumsum(mean.to_numpy(), axis=0)])
    if degree is not None and len(frames) > degree + 1:
        tt = frames - frames[0]
        for k in range(2):
            coef = np.polyfit(tt, cum[:, k], degree)
            cum[:, k] = np.polyval(coef, tt) - np.polyval(coef, 0)
    return pd.DataFrame(cum, index=pd.Index(frames, name="frame"), columns=["x", "y"])


def subtract_drift(traj, drift=None, **kw):
    """Copy of ``traj`` with the drift removed (``drift`` from :func:`compute_drift`)."""
    if drift is None:
        drift = compute_drift(traj, **kw)
    out = traj.copy()
    d = drift.reindex(out.frame.to_numpy())
    out["x"] = out.x.to_numpy() - d.x.to_numpy()
    out["y"] = out.y.to_numpy() - d.y.to_numpy()
    return out


def _displacements(traj, lagtime):
    """(dx, dy) of every particle between frames f and f + lagtime."""
    a = traj[["particle", "frame", "x", "y"]]
    b = a.assign(frame=a.frame - lagtime)
    m = a.merge(b, on=["particle", "frame"], suffixes=("0", "1"))
    return (m.x1 - m.x0).to_numpy(), (m.y1 - m.y0).to_numpy()


def step_sizes(traj, lagtime=1, mpp=1.0):
    """Displacement lengths |r(t + lag) - r(t)| of all particles (units).

    Returns
    -------
    (K,) ndarray
    """
    _check(traj, ("frame", "particle", "x", "y"))
    dx, dy = _displacements(traj, lagtime)
    return np.hypot(dx, dy) * mpp


def van_hove(traj, lagtime=1, bins=50, mpp=1.0, range=None):
    """Self part of the van Hove function: density of 1-D displacements.

    Pools dx and dy of all particles over ``lagtime`` frames.

    Returns
    -------
    centers : (bins,) ndarray
        Displacement (units).
    density : (bins,) ndarray
        Probability density (integrates to 1). A Gaussian of variance
        2 D lagtime / fps for free diffusion.
    """
    _check(traj, ("frame", "particle", "x", "y"))
    dx, dy = _displacements(traj, lagtime)
    d = np.concatenate([dx, dy]) * mpp
    h, edges = np.histogram(d, bins=bins, range=range, density=True)
    return 0.5 * (edges[1:] + edges[:-1]), h


def non_gaussian_parameter(traj, lagtime=1):
    """alpha_2 = <dr**4> / (2 <dr**2>**2) - 1 in 2-D (0 for Gaussian steps)."""
    dx, dy = _displacements(traj, lagtime)
    r2 = dx * dx + dy * dy
    return float(np.mean(r2 ** 2) / (2 * np.mean(r2) ** 2) - 1)


def vibration_rms(traj, mpp=1.0):
    """Root-mean-square vibration of each particle about its mean position.

    Subtract the drift first (:func:`subtract_drift`) for a moving field.

    Returns
    -------
    DataFrame
        Index ``particle``; columns ``x``, ``y`` (mean site, pixels),
        ``rms`` (sqrt <|r - <r>|**2>, units), ``n`` (frames).
    """
    _check(traj, ("frame", "particle", "x", "y"))
    g = traj.groupby("particle")
    mean = g[["x", "y"]].transform("mean")
    r2 = (traj.x - mean.x) ** 2 + (traj.y - mean.y) ** 2
    out = g[["x", "y"]].mean()
    out["rms"] = np.sqrt(r2.groupby(traj.particle).mean()) * mpp
    out["n"] = g.size()
    return out


def neighbour_pairs(x, y, cutoff=None):
    """Nearest-neighbour pairs of points: Delaunay edges, optionally <= cutoff.

    Parameters
    ----------
    x, y : (N,) array
    cutoff : float, optional
        Longest pair distance kept.

    Returns
    -------
    (P, 2) int64 ndarray
        Index pairs i < j.
    """
    from scipy.spatial import Delaunay

    pts = np.c_[np.asarray(x, float), np.asarray(y, float)]
    if len(pts) < 3:
        pairs = np.array([[0, 1]], np.int64) if len(pts) == 2 else np.zeros((0, 2), np.int64)
    else:
        tri = Delaunay(pts)
        s = tri.simplices
        e = np.vstack([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]])
        e.sort(axis=1)
        pairs = np.unique(e, axis=0).astype(np.int64)
    if cutoff is not None and len(pairs):
        d = np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T)
        pairs = pairs[d <= cutoff]
    return pairs


def lindemann_dynamic(traj, lattice_constant, lagtimes=(1, 2, 5, 10), cutoff=None):
    """2-D dynamic Lindemann parameter gamma_L(tau) (Zahn & Maret 2000).

    gamma_L(tau) = <|du_i(tau) - du_j(tau)|**2> / (2 a**2) over
    nearest-neighbour pairs (Delaunay edges of the mean sites, optionally
    <= ``cutoff``), where du is a particle's displacement over tau frames.
    Relative displacements make it immune to drift and to the logarithmic
    divergence of the plain 2-D Lindemann ratio. Melting criterion:
    gamma_L ~ 0.033 (stays bounded in a crystal).

    Parameters
    ----------
    traj : DataFrame
        ``frame``, ``particle``, ``x``, ``y`` (pixels).
    lattice_constant : float
        a, pixels.
    lagtimes : sequence of int
        tau values, frames.
    cutoff : float, optional
        Longest neighbour distance, pixels (default 1.5 a).

    Returns
    -------
    Series
        gamma_L indexed by lag (frames).
    """
    _check(traj, ("frame", "particle", "x", "y"))
    sites = traj.groupby("particle")[["x", "y"]].mean()
    pairs = neighbour_pairs(sites.x, sites.y, 1.5 * lattice_constant if cutoff is None else cutoff)
    ids = sites.index.to_numpy()
    pos = traj.pivot_table(index="frame", columns="particle", values=["x", "y"])
    px = pos["x"].reindex(columns=ids).to_numpy()
    py = pos["y"].reindex(columns=ids).to_numpy()
    out = {}
    for tau in lagtimes:
        dux = px[tau:] - px[:-tau]
        duy = py[tau:] - py[:-tau]
        rx = dux[:, pairs[:, 0]] - dux[:, pairs[:, 1]]
        ry = duy[:, pairs[:, 0]] - duy[:, pairs[:, 1]]
        out[tau] = np.nanmean(rx * rx + ry * ry) / (2 * lattice_constant ** 2)
    return pd.Series(out, name="gamma_L").rename_axis("lag")


def psi_k(x, y, k=6, cutoff=None):
    """Bond-orientational order psi_k of each point (k = 6 hexagonal, 4 square).

    psi_k(i) = (1/n_i) sum_j exp(i k theta_ij) over Delaunay neighbours j
    (optionally only those <= ``cutoff``).

    Parameters
    ----------
    x, y : (N,) array
        Positions of one frame, pixels.
    k : int
    cutoff : float, optional

    Returns
    -------
    (N,) complex ndarray
        NaN for points without neighbours. ``abs(psi.mean())`` is the global
        order, ``abs(psi)`` the local one.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    pairs = neighbour_pairs(x, y, cutoff)
    i, j = pairs[:, 0], pairs[:, 1]
    th = np.arctan2(y[j] - y[i], x[j] - x[i])
    e = np.exp(1j * k * th)
    n = len(x)
    # the bond j -> i has angle theta + pi; exp(i k pi) = (-1)**k
    s = np.bincount(i, e.real, n) + 1j * np.bincount(i, e.imag, n)
    s += (-1) ** k * (np.bincount(j, e.real, n) + 1j * np.bincount(j, e.imag, n))
    cnt = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / cnt


def pair_distances(traj, cutoff=None, mpp=1.0):
    """Distances between neighbouring particles in every frame.

    Neighbours are Delaunay edges per frame, optionally <= ``cutoff``
    (pixels).

    Returns
    -------
    DataFrame
        Columns ``frame``, ``particle_i``, ``particle_j`` (i < j), ``r``
        (units). ``r.describe()`` or ``np.histogram(r)`` give the pair
        statistics; ``groupby(['particle_i', 'particle_j'])`` the time
        series of each pair.
    """
    _check(traj, ("frame", "particle", "x", "y"))
    parts = []
    for f, g in traj.groupby("frame", sort=True):
        pairs = neighbour_pairs(g.x, g.y, cutoff)
        if not len(pairs):
            continue
        p = g.particle.to_numpy()
        a, b = p[pairs[:, 0]], p[pairs[:, 1]]
        r = np.hypot(g.x.to_numpy()[pairs[:, 0]] - g.x.to_numpy()[pairs[:, 1]],
                     g.y.to_numpy()[pairs[:, 0]] - g.y.to_numpy()[pairs[:, 1]])
        parts.append(pd.DataFrame({"frame": f, "particle_i": np.minimum(a, b),
                                   "particle_j": np.maximum(a, b), "r": r * mpp}))
    if not parts:
        return pd.DataFrame({"frame": [], "particle_i": [], "particle_j": [], "r": []})
    return pd.concat(parts, ignore_index=True)


def area_rates(traj, fps=1.0, mpp=1.0, column="area", min_frames=3):
    """Growth (> 0) or etching (< 0) rate of each particle's area.

    Least-squares slope of area against time per track.

    Returns
    -------
    DataFrame
        Index ``particle``; ``rate`` (units**2 / s), ``area0`` (fitted area
        at the first frame, units**2), ``n`` (frames).

    Examples
    --------
    >>> import pandas as pd
    >>> tr = pd.DataFrame({"frame": [0, 1, 2, 3], "particle": 7,
    ...                    "area": [100.0, 90.0, 80.0, 70.0]})
    >>> area_rates(tr, fps=2.0).rate.tolist()
    [-20.0]
    """
    _check(traj, ("frame", "particle", column))
    t = traj.frame.to_numpy(float) / fps
    a = traj[column].to_numpy(float) * mpp ** 2
    df = pd.DataFrame({"p": traj.particle.to_numpy(), "t": t, "a": a})
    g = df.groupby("p")
    n = g.size()
    mt, ma = g.t.transform("mean"), g.a.transform("mean")
    sxy = ((df.t - mt) * (df.a - ma)).groupby(df.p).sum()
    sxx = ((df.t - mt) ** 2).groupby(df.p).sum()
    rate = sxy / sxx.replace(0, np.nan)
    t0 = g.t.min()
    area0 = g.a.mean() - rate * (g.t.mean() - t0)
    out = pd.DataFrame({"rate": rate.round(12), "area0": area0, "n": n})
    out.index.name = "particle"
    return out[out.n >= min_frames]
