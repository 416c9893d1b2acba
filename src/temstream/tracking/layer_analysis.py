"""Lattice analysis of layered particle tables (two-layer moiré recordings, or one lattice).

Every function takes a recording's particle table (``temstream.read_particles``): a pandas
DataFrame with ``frame``, ``x``, ``y`` (px) and, where the recording comes from a two-layer
model, ``layer`` (1, 2; without the column all particles are one layer, 0) and ``particle``
(track ids, unique across layers). Each frame's lattice is fitted per layer
(:func:`temstream.tracking.lattice.fit_lattice`), so drift, a slow rotation of one layer and a
slightly strained lattice do not count as motion; angles are in degrees, lengths in px.

- :func:`lattice_per_frame` -- lattice constant, orientation and origin per frame and layer;
- :func:`twist_angle` -- the angle between the two layers' lattices over time;
- :func:`assign_sites` -- each particle's lattice site and its displacement from it;
- :func:`site_vibration` -- per-site vibration RMS per layer;
- :func:`lindemann_by_layer` -- the dynamic Lindemann parameter of each layer;
- :func:`vacancies`, :func:`interstitials` -- point defects per frame and layer;
- :func:`local_orientation`, :func:`grain_boundaries` -- grains and grain (twin) boundaries as
  changes of the local lattice orientation.

These functions are re-exported by :mod:`temstream.tracking.analysis`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from temstream.tracking.lattice import Lattice, fit_grains, fit_lattice, wrap_angle

__all__ = ["lattice_per_frame", "twist_angle", "assign_sites", "site_vibration",
           "lindemann_by_layer", "vacancies", "interstitials", "local_orientation",
           "grain_boundaries", "hex_lattice_table"]


def _check(traj, cols):
    missing = [c for c in cols if c not in traj.columns]
    if missing:
        raise ValueError(f"the particle table needs columns {missing}; it has {list(traj.columns)}")


def _layers(traj):
    """(layer, rows) groups: by ``layer`` where the table has it, else one group, layer 0."""
    if "layer" in traj.columns:
        return [(int(k), g) for k, g in traj.groupby("layer", sort=True)]
    return [(0, traj)]


def hex_lattice_table(n=10, a=20.0, theta_deg=0.0, frames=1, *, vibration=0.0, layer=None,
                      origin=(0.0, 0.0), seed=0, drop=()):
    """A particle table of a vibrating hexagonal lattice (for examples and tests).

    Parameters
    ----------
    n : int
        Sites along each lattice vector (n * n sites).
    a : float
        Lattice constant (px).
    theta_deg : float
        Orientation (deg).
    frames : int
    vibration : float
        Standard deviation per axis of independent Gaussian displacements (px).
    layer : int, optional
        Adds a ``layer`` column.
    origin : (x, y)
    seed : int
    drop : sequence of int
        Indices of sites left empty (vacancies).

    Returns
    -------
    pandas.DataFrame
        ``frame``, ``particle`` (the site's index), ``x``, ``y`` (and ``layer``).

    Examples
    --------
    >>> t = hex_lattice_table(n=3, frames=2)
    >>> len(t), sorted(t.columns)
    (18, ['frame', 'particle', 'x', 'y'])
    """
    rng = np.random.default_rng(seed)
    th = np.radians(theta_deg)
    v = a * np.array([[np.cos(th), np.sin(th)], [np.cos(th + np.pi / 3), np.sin(th + np.pi / 3)]])
    i, j = np.mgrid[0:n, 0:n]
    sites = np.c_[i.ravel(), j.ravel()] @ v + np.asarray(origin, float)
    keep = np.setdiff1d(np.arange(len(sites)), np.asarray(drop, int))
    sites = sites[keep]
    xy = sites[None] + rng.normal(0, vibration, (frames, len(sites), 2)) if vibration else \
        np.broadcast_to(sites, (frames, len(sites), 2))
    t = pd.DataFrame({"frame": np.repeat(np.arange(frames), len(sites)),
                      "particle": np.tile(keep, frames),
                      "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    if layer is not None:
        t["layer"] = int(layer)
    return t


def lattice_per_frame(traj, symmetry: int = 6, *, min_points: int = 12) -> pd.DataFrame:
    """Each frame's lattice, per layer.

    The origin is kept on the same site from frame to frame (the site nearest the previous
    frame's origin), so site indices (:func:`assign_sites`) name the same site through a movie.

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``x``, ``y`` (and ``layer``).
    symmetry : {6, 4}
    min_points : int
        Frames of a layer with fewer particles get no row.

    Returns
    -------
    pandas.DataFrame
        One row per (frame, layer): ``frame``, ``layer``, ``a`` (px), ``theta`` (deg, in [0,
        60) for a hexagonal lattice), ``origin_x``, ``origin_y``, ``v1x``, ``v1y``, ``v2x``,
        ``v2y`` (lattice vectors, px), ``n`` (particles), ``inliers`` (on the lattice),
        ``rms`` (px, of the inliers from their sites).

    Examples
    --------
    >>> t = pd.concat([hex_lattice_table(12, 20.0, 5.0, frames=3, layer=1, vibration=0.5),
    ...                hex_lattice_table(12, 20.0, 12.0, frames=3, layer=2, vibration=0.5)])
    >>> lat = lattice_per_frame(t)
    >>> lat[["frame", "layer"]].values.tolist()
    [[0, 1], [0, 2], [1, 1], [1, 2], [2, 1], [2, 2]]
    >>> bool((lat["a"] - 20).abs().max() < 0.1), bool((lat["theta"] - [5, 12] * 3).abs().max() < 0.2)
    (True, True)
    """
    _check(traj, ["frame", "x", "y"])
    rows = []
    for layer, g in _layers(traj):
        prev = None
        for f, gf in g.groupby("frame", sort=True):
            lat = fit_lattice(gf[["x", "y"]].to_numpy(float), symmetry, min_points=min_points)
            if lat is None:
                continue
            if prev is not None:
                lat = lat.moved_to(prev)
            prev = lat.origin
            v = lat.vectors
            rows.append({"frame": int(f), "layer": layer, "a": lat.a, "theta": lat.theta,
                         "origin_x": lat.origin[0], "origin_y": lat.origin[1],
                         "v1x": v[0, 0], "v1y": v[0, 1], "v2x": v[1, 0], "v2y": v[1, 1],
                         "n": len(gf), "inliers": int(lat.inliers.sum()), "rms": lat.rms})
    cols = ["frame", "layer", "a", "theta", "origin_x", "origin_y", "v1x", "v1y", "v2x", "v2y",
            "n", "inliers", "rms"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["frame", "layer"], ignore_index=True)


def _lattice_of(row, symmetry=6) -> Lattice:
    v = np.array([[row.v1x, row.v1y], [row.v2x, row.v2y]], float)
    return Lattice(np.array([row.origin_x, row.origin_y], float), v, symmetry,
                   np.zeros(0, bool), float(row.rms))


def twist_angle(traj_or_lattices, layers=(1, 2)) -> pd.Series:
    """The twist between two layers' lattices over time: theta(layer 2) - theta(layer 1),
    wrapped into (-30, 30] deg for hexagonal lattices.

    Parameters
    ----------
    traj_or_lattices : pandas.DataFrame
        A particle table with ``layer``, or the output of :func:`lattice_per_frame`.
    layers : (int, int)

    Returns
    -------
    pandas.Series
        Indexed by frame (frames where both layers have a lattice), deg.

    Examples
    --------
    >>> t = pd.concat([hex_lattice_table(12, 20.0, 58.0, frames=2, layer=1),
    ...                hex_lattice_table(12, 22.0, 6.5, frames=2, layer=2)])
    >>> twist_angle(t).round(6).tolist()
    [8.5, 8.5]
    """
    lat = traj_or_lattices
    if "theta" not in lat.columns:
        lat = lattice_per_frame(lat)
    a = lat[lat["layer"] == layers[0]].set_index("frame")["theta"]
    b = lat[lat["layer"] == layers[1]].set_index("frame")["theta"]
    both = a.index.intersection(b.index)
    return pd.Series(wrap_angle(b[both].to_numpy() - a[both].to_numpy(), 60.0), index=both,
                     name="twist").rename_axis("frame")


def assign_sites(traj, lattices=None, *, inlier: float = 0.3) -> pd.DataFrame:
    """Each particle's lattice site in its frame.

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``x``, ``y`` (and ``layer``).
    lattices : pandas.DataFrame, optional
        :func:`lattice_per_frame` of ``traj`` (computed when None).
    inlier : float
        ``on_site`` is True within ``inlier * a`` of the site.

    Returns
    -------
    pandas.DataFrame
        A copy of ``traj`` (rows of frames without a lattice dropped) with ``site_i``,
        ``site_j`` (integer site indices, the same site through a movie), ``site_x``,
        ``site_y`` (px), ``dx``, ``dy`` (displacement from the site, px) and ``on_site``.

    Examples
    --------
    >>> t = hex_lattice_table(5, 20.0, frames=2)
    >>> s = assign_sites(t)
    >>> bool(s["on_site"].all()), float(s[["dx", "dy"]].abs().max().max()) < 1e-9
    (True, True)
    >>> s.groupby("particle")[["site_i", "site_j"]].nunique().max().tolist()  # one site each
    [1, 1]
    """
    _check(traj, ["frame", "x", "y"])
    lattices = lattice_per_frame(traj) if lattices is None else lattices
    t = traj if "layer" in traj.columns else traj.assign(layer=0)
    lat = lattices[["frame", "layer", "origin_x", "origin_y", "v1x", "v1y", "v2x", "v2y"]]
    m = t.reset_index(drop=True).merge(lat, on=["frame", "layer"], how="inner",
                                       suffixes=("", "_lattice"))
    px = m["x"].to_numpy(float) - m["origin_x"].to_numpy()
    py = m["y"].to_numpy(float) - m["origin_y"].to_numpy()
    v1x, v1y, v2x, v2y = (m[c].to_numpy() for c in ("v1x", "v1y", "v2x", "v2y"))
    det = v1x * v2y - v1y * v2x
    # (px, py) = i v1 + j v2
    i = np.rint((px * v2y - py * v2x) / det)
    j = np.rint((py * v1x - px * v1y) / det)
    sx = m["origin_x"].to_numpy() + i * v1x + j * v2x
    sy = m["origin_y"].to_numpy() + i * v1y + j * v2y
    a = 0.5 * (np.hypot(v1x, v1y) + np.hypot(v2x, v2y))
    out = m.drop(columns=["origin_x", "origin_y", "v1x", "v1y", "v2x", "v2y"])
    if "layer" not in traj.columns:
        out = out.drop(columns=["layer"])
    out["site_i"], out["site_j"] = i.astype(np.int64), j.astype(np.int64)
    out["site_x"], out["site_y"] = sx, sy
    out["dx"], out["dy"] = m["x"].to_numpy(float) - sx, m["y"].to_numpy(float) - sy
    out["on_site"] = np.hypot(out["dx"], out["dy"]) < inlier * a
    return out.sort_values("frame", kind="stable", ignore_index=True)


def site_vibration(traj, lattices=None, *, min_frames: int = 10) -> pd.DataFrame:
    """Per-site vibration RMS of each layer: the RMS displacement of a particle from its
    lattice site (in that frame's lattice) about its mean displacement.

    The frame's lattice absorbs drift and a slow rotation of the layer; the mean
    displacement absorbs static disorder (a site that sits off the ideal lattice), so what
    is left is the vibration about the site, ``sqrt(<|d - <d>|^2>)``.

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``x``, ``y``, and ``particle`` (tracks: one per site) or no ``particle``
        (sites told by their indices); ``layer`` optional.
    lattices : pandas.DataFrame, optional
        :func:`lattice_per_frame` of ``traj``.
    min_frames : int
        Sites seen in fewer frames (on their site) are left out.

    Returns
    -------
    pandas.DataFrame
        One row per site: ``layer``, ``particle`` (or ``site_i``, ``site_j``), ``rms`` (px),
        ``n`` (frames), ``x``, ``y`` (mean position, px).

    Examples
    --------
    >>> t = hex_lattice_table(8, 20.0, frames=100, vibration=0.8, seed=1)
    >>> v = site_vibration(t)
    >>> bool(abs(v["rms"].mean() / (0.8 * np.sqrt(2)) - 1) < 0.05)
    True
    """
    s = assign_sites(traj, lattices)
    s = s[s["on_site"]]
    key = ["particle"] if "particle" in s.columns else ["site_i", "site_j"]
    if "layer" not in s.columns:
        s = s.assign(layer=0)
    g = s.groupby(["layer"] + key)
    ddx = s["dx"] - g["dx"].transform("mean")
    ddy = s["dy"] - g["dy"].transform("mean")
    s = s.assign(r2=ddx ** 2 + ddy ** 2)
    out = s.groupby(["layer"] + key).agg(rms=("r2", "mean"), n=("r2", "size"), x=("x", "mean"),
                                         y=("y", "mean")).reset_index()
    out["rms"] = np.sqrt(out["rms"])
    return out[out["n"] >= min_frames].reset_index(drop=True)


def lindemann_by_layer(traj, max_lag: int = 50, lattices=None) -> pd.DataFrame:
    """The dynamic Lindemann parameter of each layer (:func:`~temstream.tracking.analysis.
    dynamic_lindemann` on each layer's tracks, with the layer's median lattice constant).

    Returns
    -------
    pandas.DataFrame
        Index ``lag`` (frames), one column per layer.

    Examples
    --------
    >>> t = pd.concat([hex_lattice_table(8, 20.0, frames=60, vibration=0.5, layer=1),
    ...                hex_lattice_table(8, 20.0, 10.0, frames=60, vibration=1.0, layer=2,
    ...                                  seed=2).assign(particle=lambda d: d.particle + 1000)])
    >>> g = lindemann_by_layer(t, max_lag=5)
    >>> bool(abs(g.loc[5, 2] / g.loc[5, 1] - 4) < 0.4)      # twice the vibration: 4x gamma
    True
    """
    from temstream.tracking.analysis import dynamic_lindemann

    _check(traj, ["frame", "particle", "x", "y"])
    lattices = lattice_per_frame(traj) if lattices is None else lattices
    cols = {}
    for layer, g in _layers(traj):
        a = lattices.loc[lattices["layer"] == layer, "a"]
        if a.empty:
            continue
        cols[layer] = dynamic_lindemann(g, float(a.median()), max_lag=max_lag)
    return pd.DataFrame(cols).rename_axis("lag").rename_axis("layer", axis=1)


def _covered(lat, pts, where, min_neighbours):
    """Which points ``where`` lie inside the layer: ``min_neighbours`` particles within 1.2 a."""
    if not len(where):
        return np.zeros(0, bool)
    n = cKDTree(pts).query_ball_point(where, 1.2 * lat.a, return_length=True)
    return np.asarray(n) >= min_neighbours


def vacancies(traj, *, shape=None, max_dist: float = 0.35, min_neighbours: int = 4,
              max_grains: int = 2, symmetry: int = 6) -> pd.DataFrame:
    """Empty lattice sites per frame and layer.

    A site of a layer's lattice (of each of up to ``max_grains`` grains, :func:`~temstream.
    tracking.lattice.fit_grains`) is vacant when no particle of the layer is within
    ``max_dist * a`` of it and at least ``min_neighbours`` are within ``1.2 a`` (the site is
    inside the layer, not beyond its edge or in the other grain).

    Parameters
    ----------
    traj : pandas.DataFrame
        ``frame``, ``x``, ``y`` (and ``layer``).
    shape : (H, W), optional
        Frame shape; sites within half a lattice constant of its edges are not judged
        (default: the bounding box of the particles).

    Returns
    -------
    pandas.DataFrame
        ``frame``, ``layer``, ``x``, ``y`` (px) of each vacancy.

    Examples
    --------
    >>> t = hex_lattice_table(10, 20.0, frames=2, vibration=0.5, drop=[44, 45, 71])
    >>> v = vacancies(t)
    >>> len(v), sorted(v.frame.unique().tolist())
    (6, [0, 1])
    """
    _check(traj, ["frame", "x", "y"])
    rows = []
    for layer, g in _layers(traj):
        for f, gf in g.groupby("frame", sort=True):
            pts = gf[["x", "y"]].to_numpy(float)
            if shape is None:
                lo, hi = pts.min(0), pts.max(0)
            else:
                lo, hi = np.zeros(2), np.array([shape[1], shape[0]], float)
            tree = cKDTree(pts) if len(pts) else None
            for lat in fit_grains(pts, symmetry, max_grains=max_grains):
                m = 0.5 * lat.a
                sites = lat.sites_in((hi[1] + lat.a, hi[0] + lat.a))
                sites = sites[((sites > lo + m) & (sites < hi - m)).all(1)]
                if not len(sites):
                    continue
                d, _ = tree.query(sites)
                empty = sites[d > max_dist * lat.a]
                empty = empty[_covered(lat, pts[lat.inliers], empty, min_neighbours)]
                rows += [{"frame": int(f), "layer": layer, "x": x, "y": y} for x, y in empty]
    return pd.DataFrame(rows, columns=["frame", "layer", "x", "y"])


def interstitials(traj, *, min_dist: float = 0.3, min_neighbours: int = 3,
                  max_grains: int = 2, symmetry: int = 6) -> pd.DataFrame:
    """Particles off every lattice site of their layer, inside the layer.

    A particle is interstitial when it is farther than ``min_dist * a`` from every site of
    each grain's lattice of its layer (and frame) and at least ``min_neighbours`` lattice
    particles are within ``1.2 a`` (not a particle beyond the layer's edge).

    Returns
    -------
    pandas.DataFrame
        The rows of ``traj`` that are interstitials.

    Examples
    --------
    >>> t = hex_lattice_table(10, 20.0, frames=1)
    >>> extra = pd.DataFrame({"frame": [0], "particle": [999], "x": [100 + 10 + 10],
    ...                       "y": [100 * 0 + 20 * np.sqrt(3) / 2 * 5 + 20 / np.sqrt(12)]})
    >>> interstitials(pd.concat([t, extra]))["particle"].tolist()
    [999]
    """
    _check(traj, ["frame", "x", "y"])
    out = []
    for layer, g in _layers(traj):
        for f, gf in g.groupby("frame", sort=True):
            pts = gf[["x", "y"]].to_numpy(float)
            grains = fit_grains(pts, symmetry, max_grains=max_grains)
            if not grains:
                continue
            off = np.ones(len(pts), bool)
            inside = np.zeros(len(pts), bool)
            for lat in grains:
                off &= lat.residuals(pts) > min_dist * lat.a
                inside |= _covered(lat, pts[lat.inliers], pts, min_neighbours)
            out.append(gf[off & inside])
    return pd.concat(out) if out else traj.iloc[:0]


def local_orientation(frame_df, symmetry: int = 6, *, cutoff: float | None = None) -> np.ndarray:
    """Each particle's local lattice orientation (deg, in [0, 360 / symmetry)) from the
    bond-orientational order of its neighbours (:func:`~temstream.tracking.analysis.
    bond_order`); NaN without neighbours.

    Parameters
    ----------
    frame_df : pandas.DataFrame
        ``x``, ``y`` of one frame (one layer).
    cutoff : float, optional
        Neighbour distance (px; default 1.3 times the median nearest-neighbour distance).

    Examples
    --------
    >>> t = hex_lattice_table(8, 20.0, 17.0)
    >>> o = local_orientation(t)
    >>> bool(np.allclose(o, 17.0))
    True
    """
    from temstream.tracking.analysis import bond_order

    pts = frame_df[["x", "y"]].to_numpy(float)
    if len(pts) < 3:
        return np.full(len(pts), np.nan)
    if cutoff is None:
        d, _ = cKDTree(pts).query(pts, 2)
        cutoff = 1.3 * float(np.median(d[:, 1]))
    psi = bond_order(frame_df, k=symmetry, cutoff=cutoff)
    period = 360.0 / symmetry
    return np.mod(np.degrees(np.angle(psi)) / symmetry, period)


def grain_boundaries(traj, *, tolerance: float = 4.0, symmetry: int = 6,
                     min_grain: int = 5) -> pd.DataFrame:
    """Grains and grain (twin) boundaries as changes of the local lattice orientation.

    Per frame and layer, neighbouring particles (within 1.3 nearest-neighbour distances) whose
    local orientations (:func:`local_orientation`) differ by less than ``tolerance`` deg
    belong to one grain; a particle with a neighbour in another grain of at least
    ``min_grain`` particles is on a boundary.

    Returns
    -------
    pandas.DataFrame
        A copy of ``traj`` with ``orientation`` (deg), ``grain`` (id per frame and layer,
        largest grain 0; -1 for grains smaller than ``min_grain``) and ``boundary`` (bool).

    Examples
    --------
    Two grains turned by 25 deg against each other, meeting near x = 150:

    >>> a = hex_lattice_table(16, 20.0, 0.0, origin=(-150.0, 0.0))
    >>> b = hex_lattice_table(16, 20.0, 25.0, origin=(0.0, -100.0))
    >>> t = pd.concat([a[(a.x > 0) & (a.x < 150) & (a.y < 250)],
    ...                b[(b.x > 160) & (b.x < 320) & (b.y > 0) & (b.y < 250)]])
    >>> g = grain_boundaries(t)
    >>> sorted(set(g.grain)), sorted(g.groupby("grain").orientation.median().round(1))
    ([0, 1], [0.0, 25.0])
    >>> int(g.boundary.sum()), bool(g[g.boundary].x.between(130, 170).all())
    (5, True)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _check(traj, ["frame", "x", "y"])
    out = []
    period = 360.0 / symmetry
    for layer, g in _layers(traj):
        for f, gf in g.groupby("frame", sort=True):
            gf = gf.copy()
            pts = gf[["x", "y"]].to_numpy(float)
            n = len(pts)
            gf["orientation"] = local_orientation(gf, symmetry)
            gf["grain"], gf["boundary"] = -1, False
            if n < 3:
                out.append(gf)
                continue
            d, _ = cKDTree(pts).query(pts, 2)
            pairs = cKDTree(pts).query_pairs(1.3 * float(np.median(d[:, 1])),
                                             output_type="ndarray")
            o = gf["orientation"].to_numpy()
            if len(pairs):
                i, j = pairs.T
                same = np.abs(wrap_angle(o[i] - o[j], period)) < tolerance
                graph = coo_matrix((np.ones(int(same.sum())), (i[same], j[same])), shape=(n, n))
                _, comp = connected_components(graph, directed=False)
            else:
                i = j = np.zeros(0, int)
                comp = np.arange(n)
            sizes = np.bincount(comp)
            order = np.argsort(-sizes, kind="stable")
            rank = np.full(len(sizes), -1)
            big = order[sizes[order] >= min_grain]
            rank[big] = np.arange(len(big))
            grain = rank[comp]
            boundary = np.zeros(n, bool)
            if len(pairs):
                diff = (grain[i] != grain[j]) & (grain[i] >= 0) & (grain[j] >= 0)
                boundary[i[diff]] = True
                boundary[j[diff]] = True
            gf["grain"], gf["boundary"] = grain, boundary
            out.append(gf)
    return pd.concat(out) if out else traj.iloc[:0]
