"""Trajectory analysis on a recording's particle table.

Input everywhere: a pandas DataFrame with ``frame``, ``particle``, ``x``, ``y``
(px) and, where needed, ``angle`` (rad, unwrapped along the track) and ``area``
(px^2). Lags and times are in frames and lengths in pixels; multiply by the
frame time / pixel size for physical units. No trackpy at run time: the mean
square displacements use an FFT that handles gaps (missing frames) exactly.

Lattices of one or two layers (moiré recordings of two-layer models): lattice constant and
orientation per frame and layer, the twist angle, sites, per-site vibration, the dynamic
Lindemann parameter per layer, vacancies, interstitials and grain boundaries are in
:mod:`temstream.tracking.layer_analysis` and importable from here.

Drift: :func:`compute_drift` takes the **median** of same-particle steps between
consecutive frames, optionally from a set of ``reference`` particles only (e.g.
particles stuck to the window or a fixed lattice). trackpy's ``compute_drift``
averages all particles' own steps, which with few particles removes real
motion (with one particle its MSD becomes 0). With few particles give a
``reference``, or ``degree=1`` (or 2) to keep only a smooth polynomial drift.
"""

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

__all__ = ["msd", "imsd", "emsd", "msad", "fit_diffusion", "compute_drift", "subtract_drift",
           "van_hove", "step_sizes", "non_gaussian", "vibration_rms", "dynamic_lindemann",
           "bond_order", "pair_distances", "area_rates"]


def _check(traj, cols):
    missing = [c for c in cols if c not in traj.columns]
    if missing:
        raise ValueError(f"the particle table needs columns {missing}; it has {list(traj.columns)}")


def _track_arrays(track, cols):
    """Positions on a regular frame grid with a presence mask (gaps = missing frames)."""
    f = track["frame"].to_numpy(np.int64)
    f0 = f.min()
    n = f.max() - f0 + 1
    mask = np.zeros(n)
    mask[f - f0] = 1.0
    pos = np.zeros((n, len(cols)))
    pos[f - f0] = track[list(cols)].to_numpy(np.float64)
    return pos, mask


def _grid(f, xy):
    """:func:`_track_arrays` of one track given as arrays (frames (n,), values (n, d))."""
    f0 = f.min()
    n = f.max() - f0 + 1
    mask = np.zeros(n)
    mask[f - f0] = 1.0
    pos = np.zeros((n, xy.shape[1]))
    pos[f - f0] = xy
    return pos, mask


def _tracks(traj, cols):
    """Each track's (frames, values of ``cols``), in increasing particle id, without a pandas
    groupby per track (thousands of short tracks: the groupby was most of the time)."""
    pid = traj["particle"].to_numpy()
    keep = ~pd.isna(pid)
    pid = pid[keep]
    order = np.argsort(pid, kind="stable")
    frames = traj["frame"].to_numpy(np.int64)[keep][order]
    values = traj[list(cols)].to_numpy(np.float64)[keep][order]
    cuts = np.flatnonzero(pid[order][1:] != pid[order][:-1]) + 1
    return zip(np.split(frames, cuts), np.split(values, cuts))


def _corr(a, b, nfft):
    """sum_t a(t) b(t + lag) for lag = 0..len-1, via FFT."""
    fa = np.fft.rfft(a, nfft, axis=0)
    fb = np.fft.rfft(b, nfft, axis=0)
    return np.fft.irfft(np.conj(fa) * fb, nfft, axis=0)[:a.shape[0]]


def _msd_sums(pos, mask, max_lag):
    """Numerator sum |r(t+lag) - r(t)|^2 and pair count over present pairs, lag 0..max_lag."""
    n = len(mask)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    mr = pos * mask[:, None]
    r2 = (mr ** 2).sum(1)
    count = _corr(mask, mask, nfft)
    num = _corr(r2, mask, nfft) + _corr(mask, r2, nfft) - 2 * _corr(mr, mr, nfft).sum(1)
    count = np.rint(count[:max_lag + 1])
    return np.maximum(num[:max_lag + 1], 0.0) * (count > 0), count


def msd(track, max_lag=100, pos_columns=("x", "y")):
    """Time-averaged mean square displacement of one track (gaps allowed).

    Parameters
    ----------
    track : pandas.DataFrame
        Rows of one particle: ``frame`` and ``pos_columns``.
    max_lag : int
        Largest lag (frames).
    pos_columns : sequence of str
        Coordinates (px), or e.g. ``("angle",)`` for the mean square angular displacement.

    Returns
    -------
    pandas.DataFrame
        Index ``lag`` (frames, 1..), columns ``msd`` (px^2) and ``n`` (pairs averaged).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2, 4], "x": [0.0, 1, 2, 4], "y": 0.0})
    >>> msd(t, max_lag=2)["msd"].round(9).tolist()
    [1.0, 4.0]
    """
    _check(track, ["frame", *pos_columns])
    pos, mask = _track_arrays(track, pos_columns)
    max_lag = int(min(max_lag, len(mask) - 1))
    num, cnt = _msd_sums(pos, mask, max_lag)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = num / cnt
    out = pd.DataFrame({"msd": val[1:], "n": cnt[1:].astype(np.int64)},
                       index=pd.Index(np.arange(1, max_lag + 1), name="lag"))
    return out[out["n"] > 0]


def imsd(traj, max_lag=100, pos_columns=("x", "y")):
    """MSD of every track: DataFrame indexed by lag (frames), one column per particle (px^2).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 0, 1], "particle": [0, 0, 1, 1],
    ...                   "x": [0.0, 1, 0, 2], "y": 0.0})
    >>> imsd(t, 1).loc[1].tolist()
    [1.0, 4.0]
    """
    _check(traj, ["frame", "particle", *pos_columns])
    cols = {p: msd(g, max_lag, pos_columns)["msd"] for p, g in traj.groupby("particle")}
    return pd.DataFrame(cols).rename_axis("lag").rename_axis("particle", axis=1)


def emsd(traj, max_lag=100, pos_columns=("x", "y")):
    """Ensemble MSD: all displacement pairs of all tracks pooled (weighted by pair counts).

    Returns
    -------
    pandas.DataFrame
        Index ``lag`` (frames), columns ``msd`` (px^2) and ``n`` (pairs).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> steps = rng.normal(0, 1.0, (200, 500, 2))          # D = 0.5 px^2/frame
    >>> xy = np.cumsum(steps, axis=1)
    >>> t = pd.DataFrame({"frame": np.tile(np.arange(500), 200),
    ...                   "particle": np.repeat(np.arange(200), 500),
    ...                   "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    >>> m = emsd(t, 10)["msd"]
    >>> bool(abs(m.loc[10] / (4 * 0.5 * 10) - 1) < 0.05)
    True
    """
    _check(traj, ["frame", "particle", *pos_columns])
    num = np.zeros(max_lag + 1)
    cnt = np.zeros(max_lag + 1)
    for frames, xy in _tracks(traj, pos_columns):
        pos, mask = _grid(frames, xy)
        k = min(max_lag, len(mask) - 1)
        a, b = _msd_sums(pos, mask, k)
        num[:k + 1] += a
        cnt[:k + 1] += b
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({"msd": num[1:] / cnt[1:], "n": cnt[1:].astype(np.int64)},
                           index=pd.Index(np.arange(1, max_lag + 1), name="lag"))
    return out[out["n"] > 0]


def msad(traj, max_lag=100, column="angle"):
    """Ensemble mean square angular displacement (rad^2) of an unwrapped angle column.

    In 2-D, MSAD(lag) = 2 D_r lag for free rotational diffusion.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2], "particle": 0, "angle": [0.0, 0.1, 0.2]})
    >>> [round(v, 6) for v in msad(t, 2)["msd"]]
    [0.01, 0.04]
    """
    return emsd(traj, max_lag, pos_columns=(column,))


def fit_diffusion(m, fit_range=(1, 10), dim=2):
    """Diffusion coefficient from an MSD curve.

    Fits MSD = 2 dim D lag + offset (least squares; offset absorbs localisation
    noise) over ``fit_range`` and the exponent of MSD ~ lag^alpha (log-log).

    Parameters
    ----------
    m : pandas.DataFrame or Series
        Output of :func:`msd` / :func:`emsd` (``msd`` column) or a Series indexed by lag.
    fit_range : (int, int)
        Inclusive lag range (frames).
    dim : int
        Dimensions of the displacement (2 for x, y; 1 for an angle).

    Returns
    -------
    dict
        ``D`` (px^2/frame, or rad^2/frame), ``offset`` (px^2), ``alpha`` (exponent).

    Examples
    --------
    >>> import pandas as pd
    >>> m = pd.Series([4.0 * 0.3 * k + 0.2 for k in range(1, 11)], index=range(1, 11))
    >>> round(fit_diffusion(m)["D"], 6)
    0.3
    """
    s = m["msd"] if isinstance(m, pd.DataFrame) else m
    s = s.loc[fit_range[0]:fit_range[1]].dropna()
    if len(s) < 2:
        raise ValueError(f"need >= 2 lags with data in fit_range {fit_range}; got {len(s)}")
    lag = s.index.to_numpy(float)
    v = s.to_numpy(float)
    slope, offset = np.polyfit(lag, v, 1)
    ok = v > 0
    alpha = np.polyfit(np.log(lag[ok]), np.log(v[ok]), 1)[0] if ok.sum() >= 2 else np.nan
    return {"D": float(slope / (2 * dim)), "offset": float(offset), "alpha": float(alpha)}


def compute_drift(traj, reference=None, smoothing=0, degree=None):
    """Cumulative drift per frame from the median step of the same particles.

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``particle``, ``x``, ``y``.
    reference : sequence of int, optional
        Particle ids that only move with the stage (stuck particles, lattice
        sites). Strongly advised with fewer than ~10 particles.
    smoothing : int
        Rolling-mean window (frames) applied to the per-frame steps; 0 = none.
    degree : int, optional
        Replace the cumulative drift by its least-squares polynomial of this
        degree in frame. Use it with few particles and no reference: a slow,
        smooth drift (degree 1-2) is removed while the particles' own diffusion,
        which a low-order polynomial cannot follow, is kept.

    Returns
    -------
    pandas.DataFrame
        Index ``frame``; columns ``x``, ``y``: drift relative to the first frame (px).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2, 0, 1, 2], "particle": [0, 0, 0, 1, 1, 1],
    ...                   "x": [0, 1, 2, 10, 11, 12.0], "y": 0.0})
    >>> compute_drift(t)["x"].tolist()
    [0.0, 1.0, 2.0]
    """
    _check(traj, ["frame", "particle", "x", "y"])
    t = traj if reference is None else traj[traj["particle"].isin(list(reference))]
    t = t.sort_values(["particle", "frame"])
    same = (t["particle"].to_numpy()[1:] == t["particle"].to_numpy()[:-1])
    consec = np.diff(t["frame"].to_numpy()) == 1
    keep = same & consec
    steps = pd.DataFrame({"frame": t["frame"].to_numpy()[1:][keep],
                          "x": np.diff(t["x"].to_numpy())[keep],
                          "y": np.diff(t["y"].to_numpy())[keep]})
    frames = np.arange(traj["frame"].min(), traj["frame"].max() + 1)
    med = steps.groupby("frame")[["x", "y"]].median().reindex(frames[1:]).fillna(0.0)
    if smoothing:
        med = med.rolling(int(smoothing), min_periods=1, center=True).mean()
    drift = pd.concat([pd.DataFrame({"x": [0.0], "y": [0.0]}, index=frames[:1]), med.cumsum()])
    drift.index.name = "frame"
    if degree is not None and len(frames) > degree:
        f = (frames - frames[0]).astype(float)
        for c in ("x", "y"):
            fit = np.polyval(np.polyfit(f, drift[c].to_numpy(), int(degree)), f)
            drift[c] = fit - fit[0]
    return drift


def subtract_drift(traj, drift=None, **kw):
    """Copy of ``traj`` with the drift of its frame subtracted from x, y (see :func:`compute_drift`).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 0, 1], "particle": [0, 0, 1, 1],
    ...                   "x": [0, 1, 10, 11.0], "y": 0.0})
    >>> subtract_drift(t)["x"].tolist()
    [0.0, 0.0, 10.0, 10.0]
    """
    if drift is None:
        drift = compute_drift(traj, **kw)
    out = traj.copy()
    d = drift.reindex(out["frame"].to_numpy()).fillna(0.0)
    out["x"] = out["x"].to_numpy() - d["x"].to_numpy()
    out["y"] = out["y"].to_numpy() - d["y"].to_numpy()
    return out


def _displacements(traj, lag):
    _check(traj, ["frame", "particle", "x", "y"])
    a = traj[["frame", "particle", "x", "y"]]
    b = a.assign(frame=a["frame"] - lag)
    j = a.merge(b, on=["frame", "particle"], suffixes=("0", "1"))
    return j["x1"].to_numpy() - j["x0"].to_numpy(), j["y1"].to_numpy() - j["y0"].to_numpy()


def step_sizes(traj, lag=1):
    """Step lengths |r(t + lag) - r(t)| (px) of all tracks, pooled.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1], "particle": 0, "x": [0.0, 3], "y": [0.0, 4]})
    >>> step_sizes(t).tolist()
    [5.0]
    """
    dx, dy = _displacements(traj, lag)
    return np.hypot(dx, dy)


def van_hove(traj, lag=1, bins=41, range_px=None):
    """Van Hove self-correlation: histogram of x and y displacements pooled, density per px.

    Returns
    -------
    centres, density : (bins,) ndarrays
        Bin centres (px) and probability density (1/px); a Gaussian of variance
        2 D lag for free diffusion.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> xy = np.cumsum(rng.normal(0, 1, (100, 200, 2)), axis=1)
    >>> t = pd.DataFrame({"frame": np.tile(np.arange(200), 100),
    ...                   "particle": np.repeat(np.arange(100), 200),
    ...                   "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    >>> c, p = van_hove(t, 1, bins=81, range_px=4)
    >>> bool(abs(p[40] - 1 / np.sqrt(2 * np.pi)) < 0.02)
    True
    """
    dx, dy = _displacements(traj, lag)
    d = np.r_[dx, dy]
    if range_px is None:
        range_px = np.abs(d).max() if d.size else 1.0
    hist, edges = np.histogram(d, bins=bins, range=(-range_px, range_px), density=True)
    return 0.5 * (edges[1:] + edges[:-1]), hist


def non_gaussian(traj, lag=1):
    """Non-Gaussian parameter alpha_2 = <dr^4> / (2 <dr^2>^2) - 1 (2-D); 0 for Brownian motion.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> xy = np.cumsum(rng.normal(0, 1, (100, 300, 2)), axis=1)
    >>> t = pd.DataFrame({"frame": np.tile(np.arange(300), 100),
    ...                   "particle": np.repeat(np.arange(100), 300),
    ...                   "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    >>> bool(abs(non_gaussian(t, 1)) < 0.05)
    True
    """
    r2 = step_sizes(traj, lag) ** 2
    return float(np.mean(r2 ** 2) / (2 * np.mean(r2) ** 2) - 1)


def vibration_rms(traj):
    """Per-particle RMS deviation from its mean position, sqrt(<|r - <r>|^2>) (px).

    Subtract drift first (:func:`subtract_drift`, with a reference if few particles).

    Returns
    -------
    pandas.Series
        Indexed by particle.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1], "particle": 0, "x": [-1.0, 1.0], "y": 0.0})
    >>> vibration_rms(t).tolist()
    [1.0]
    """
    _check(traj, ["particle", "x", "y"])
    g = traj.groupby("particle")
    dx = traj["x"] - g["x"].transform("mean")
    dy = traj["y"] - g["y"].transform("mean")
    return np.sqrt((dx ** 2 + dy ** 2).groupby(traj["particle"]).mean()).rename("rms")


def _neighbour_pairs(points, n_neighbours=None, cutoff=None):
    tree = cKDTree(points)
    if cutoff is not None:
        pairs = tree.query_pairs(cutoff, output_type="ndarray")
        return pairs
    _, idx = tree.query(points, n_neighbours + 1)
    i = np.repeat(np.arange(len(points)), n_neighbours)
    j = idx[:, 1:].ravel()
    ok = j < len(points)
    p = np.sort(np.stack([i[ok], j[ok]], 1), axis=1)
    return np.unique(p, axis=0)


def dynamic_lindemann(traj, lattice_constant, max_lag=50, cutoff=None):
    """2-D dynamic Lindemann parameter gamma_L(lag) (Zahn & Maret, PRL 85, 3656, 2000).

    gamma_L(lag) = <|du_i(lag) - du_j(lag)|^2> / (2 a^2) over nearest-neighbour
    pairs (i, j) (distance between mean positions < ``cutoff``, default 1.3 a),
    du = displacement over the lag. Relative displacements cancel drift and
    long-wavelength modes, so the parameter stays finite in 2-D; a crystal
    plateaus, a liquid grows without bound (melting criterion ~ 0.033).

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``particle``, ``x``, ``y`` of particles on lattice sites.
    lattice_constant : float
        a (px).
    max_lag : int
        Largest lag (frames).
    cutoff : float, optional
        Neighbour distance (px).

    Returns
    -------
    pandas.Series
        gamma_L indexed by lag (frames, 1..max_lag).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> sites = np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2) * 10.0
    >>> xy = sites[None] + rng.normal(0, 0.5, (300, 100, 2))     # independent vibration
    >>> t = pd.DataFrame({"frame": np.repeat(np.arange(300), 100),
    ...                   "particle": np.tile(np.arange(100), 300),
    ...                   "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    >>> g = dynamic_lindemann(t, 10.0, max_lag=5)
    >>> bool(abs(g.loc[5] / (4 * 0.5 ** 2 / 10.0 ** 2) - 1) < 0.05)
    True
    """
    _check(traj, ["frame", "particle", "x", "y"])
    a = float(lattice_constant)
    cutoff = 1.3 * a if cutoff is None else float(cutoff)
    wide = traj.pivot_table(index="frame", columns="particle", values=["x", "y"])
    frames = np.arange(wide.index.min(), wide.index.max() + 1)
    wide = wide.reindex(frames)
    X = wide["x"].to_numpy()
    Y = wide["y"].to_numpy()
    mean = np.stack([np.nanmean(X, 0), np.nanmean(Y, 0)], 1)
    pairs = _neighbour_pairs(mean, cutoff=cutoff)
    if len(pairs) == 0:
        raise ValueError(f"no neighbour pairs closer than {cutoff} px; check lattice_constant")
    i, j = pairs[:, 0], pairs[:, 1]
    out = {}
    for lag in range(1, min(max_lag, len(frames) - 1) + 1):
        dux = X[lag:] - X[:-lag]
        duy = Y[lag:] - Y[:-lag]
        rel = (dux[:, i] - dux[:, j]) ** 2 + (duy[:, i] - duy[:, j]) ** 2
        out[lag] = np.nanmean(rel) / (2 * a * a)
    return pd.Series(out, name="gamma_L").rename_axis("lag")


def bond_order(frame_df, k=6, n_neighbours=None, cutoff=None):
    """Bond-orientational order psi_k of each particle in one frame.

    psi_k(i) = mean over neighbours j of exp(i k theta_ij), theta_ij the bond angle
    (y down). Neighbours: the ``n_neighbours`` nearest (default k) or all within
    ``cutoff`` px. |psi_6| = 1 on a perfect hexagonal lattice, |psi_4| = 1 on a square one.

    Parameters
    ----------
    frame_df : pandas.DataFrame
        ``x``, ``y`` of one frame.
    k : int
        Symmetry (6 hexagonal, 4 square).

    Returns
    -------
    psi : (N,) complex128 ndarray
        Per particle; the global order is ``abs(psi.mean())``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> i, j = np.meshgrid(np.arange(12), np.arange(12))
    >>> x = (i + 0.5 * (j % 2)) * 10.0; y = j * 10.0 * np.sqrt(3) / 2
    >>> psi = bond_order(pd.DataFrame({"x": x.ravel(), "y": y.ravel()}), k=6, cutoff=11)
    >>> interior = (np.abs(psi) > 0.999).sum() >= 100
    >>> bool(interior)
    True
    """
    _check(frame_df, ["x", "y"])
    pts = frame_df[["x", "y"]].to_numpy(np.float64)
    n = len(pts)
    if n < 2:
        return np.full(n, np.nan + 0j)
    if cutoff is None:
        nn = min(n_neighbours or k, n - 1)
        _, idx = cKDTree(pts).query(pts, nn + 1)
        nb = idx[:, 1:]
        d = pts[nb] - pts[:, None, :]
        return np.exp(1j * k * np.arctan2(d[..., 1], d[..., 0])).mean(1)
    pairs = _neighbour_pairs(pts, cutoff=cutoff)
    i, j = pairs[:, 0], pairs[:, 1]
    d = pts[j] - pts[i]
    z = np.exp(1j * k * np.arctan2(d[:, 1], d[:, 0]))
    s = np.bincount(i, z.real, n) + np.bincount(j, z.real, n) \
        + 1j * (np.bincount(i, z.imag, n) + np.bincount(j, z.imag, n))
    cnt = np.bincount(i, minlength=n) + np.bincount(j, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / cnt                       # the bond j -> i has angle + pi: same for even k


def pair_distances(traj, cutoff):
    """Distances of all particle pairs closer than ``cutoff`` px, frame by frame.

    Returns
    -------
    pandas.DataFrame
        Columns ``frame``, ``particle_a`` < ``particle_b``, ``r`` (px); group by
        the pair for bond lifetimes and pair-distance time series, or histogram
        ``r`` for g(r)-like statistics.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 0, 0], "particle": [5, 2, 9],
    ...                   "x": [0.0, 3.0, 50.0], "y": [0.0, 4.0, 0.0]})
    >>> pair_distances(t, 10).values.tolist()
    [[0.0, 2.0, 5.0, 5.0]]
    """
    _check(traj, ["frame", "particle", "x", "y"])
    out = []
    for f, g in traj.groupby("frame"):
        pts = g[["x", "y"]].to_numpy(np.float64)
        ids = g["particle"].to_numpy()
        p = cKDTree(pts).query_pairs(cutoff, output_type="ndarray")
        if len(p) == 0:
            continue
        a, b = ids[p[:, 0]], ids[p[:, 1]]
        r = np.hypot(*(pts[p[:, 0]] - pts[p[:, 1]]).T)
        out.append(pd.DataFrame({"frame": f, "particle_a": np.minimum(a, b),
                                 "particle_b": np.maximum(a, b), "r": r}))
    if not out:
        return pd.DataFrame({"frame": [], "particle_a": [], "particle_b": [], "r": []})
    return pd.concat(out, ignore_index=True).sort_values(
        ["frame", "particle_a", "particle_b"], ignore_index=True)


def area_rates(traj, column="area", min_points=3):
    """Growth / etching rate of each particle: least-squares slope of area vs frame.

    Returns
    -------
    pandas.DataFrame
        Indexed by particle: ``rate`` (px^2/frame), ``radius_rate`` (px/frame, of the
        equivalent-disk radius sqrt(area / pi)), ``n`` (points).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2, 3], "particle": 0, "area": [100.0, 90, 80, 70]})
    >>> area_rates(t)["rate"].round(6).tolist()
    [-10.0]
    """
    _check(traj, ["frame", "particle", column])
    rows = {}
    for p, g in traj.groupby("particle"):
        if len(g) < min_points:
            continue
        f = g["frame"].to_numpy(float)
        a = g[column].to_numpy(float)
        rows[p] = (np.polyfit(f, a, 1)[0], np.polyfit(f, np.sqrt(a / np.pi), 1)[0], len(g))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["rate", "radius_rate", "n"]
                                  ).rename_axis("particle")


# lattice analysis of layered tables (re-exported: one place for a recording's analysis)
from temstream.tracking.layer_analysis import (  # noqa: E402
    assign_sites, grain_boundaries, hex_lattice_table, interstitials, lattice_per_frame,
    lindemann_by_layer, local_orientation, site_vibration, twist_angle, vacancies)

__all__ += ["lattice_per_frame", "twist_angle", "assign_sites", "site_vibration",
            "lindemann_by_layer", "vacancies", "interstitials", "local_orientation",
            "grain_boundaries", "hex_lattice_table"]
