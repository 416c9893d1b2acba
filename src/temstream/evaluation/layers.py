"""Scoring two-layer models on movies with per-layer truth.

A movie here is anything with ``frames`` (N, H, W), ``layer_labels`` (N, L, H, W) int (truth
instance labels per layer, 0 = background), ``truth`` (a particle table with ``frame``,
``particle``, ``layer`` 1..L, ``x``, ``y``, ``site_x``, ``site_y``) and ``vacancies``
(``frame``, ``layer``, ``x``, ``y``): a :class:`temstream.sim.Movie` of the ``moire`` scenario,
or a movie of ``scripts/independent_moire.py``.

:func:`run_layered` runs the stages a live run builds (:func:`temstream.pipeline.assemble.
build_stages`) over a movie, frame by frame, and returns what a recording would hold;
:func:`score_movie` compares it with the truth:

- pixel Dice of each layer's plane;
- object precision/recall/F1 of each layer: particle centres matched one-to-one (Hungarian)
  within ``match_px`` of a true centre of the same layer, away from the frame edges;
- layer assignment: the found particles matched to true ones of any layer, the fraction given
  the true particle's layer;
- per-site vibration RMS (:func:`temstream.tracking.analysis.site_vibration` on the recorded
  tracks) against the truth's, and the fraction of interior sites tracked through the movie
  (one track id on the site's particle in every frame);
- twist angle and lattice constants of the fitted lattices against those fitted to the true
  sites;
- vacancies per layer (:func:`temstream.tracking.analysis.vacancies`), matched within 0.35
  lattice constants.

Equal-size layers have no natural order: with ``either_naming`` a movie is scored under both
namings of its layers and the better one (by object F1) is kept.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from temstream.tracking.layer_analysis import (lattice_per_frame, site_vibration, twist_angle,
                                               vacancies)
from temstream.tracking.lattice import wrap_angle

__all__ = ["run_layered", "score_movie", "match_points", "LAYER_COLUMNS"]

#: per-movie score keys, in report order
LAYER_COLUMNS = ("dice_a", "dice_b", "f1_a", "f1_b", "assignment", "vib_err_a", "vib_err_b",
                 "tracked_a", "tracked_b", "twist_err_deg", "a_err_a", "a_err_b", "vac_f1_a",
                 "vac_f1_b")


def run_layered(stages: dict, frames) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Run a two-layer model's stages over ``frames`` as a live run would (in order, one
    frame at a time, with tracking).

    Returns
    -------
    layer_labels : (N, L, H, W) int32
    particles : pandas.DataFrame
        The recorded particle table (``frame``, ``particle``, ``label``, ``layer``, ``x``,
        ``y``, ``area``, ``score``).
    ms : dict
        Median milliseconds per frame of the segment and instance stages and of linking.
    """
    planes, rows = [], []
    times = {"segment": [], "instances": [], "link": []}
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        probs = stages["segment"](stages["preprocess"](frame))
        t1 = time.perf_counter()
        out = stages["instances"](probs, frame)
        t2 = time.perf_counter()
        table = out[1]
        ids = stages["link"](table)
        t3 = time.perf_counter()
        times["segment"].append(t1 - t0)
        times["instances"].append(t2 - t1)
        times["link"].append(t3 - t2)
        planes.append(out[2])
        df = pd.DataFrame({k: np.asarray(table[k]) for k in ("label", "layer", "x", "y", "area",
                                                             "score")})
        df.insert(0, "particle", np.asarray(ids, np.int64))
        df.insert(0, "frame", i)
        rows.append(df)
    ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    return np.stack(planes), pd.concat(rows, ignore_index=True), ms


def match_points(a, b, max_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of points ``a`` (n, 2) to ``b`` (m, 2) within ``max_dist``,
    minimising the summed distance (Hungarian). Returns index arrays (ia, ib).

    Examples
    --------
    >>> match_points([[0, 0], [10, 0]], [[9, 0], [1, 0], [50, 50]], 3)
    (array([0, 1]), array([1, 0]))
    """
    a = np.asarray(a, float).reshape(-1, 2)
    b = np.asarray(b, float).reshape(-1, 2)
    if not len(a) or not len(b):
        return np.zeros(0, int), np.zeros(0, int)
    d = cKDTree(a).sparse_distance_matrix(cKDTree(b), max_dist, output_type="coo_matrix")
    if d.nnz == 0:
        return np.zeros(0, int), np.zeros(0, int)
    cost = np.full((len(a), len(b)), 1e6)
    cost[d.row, d.col] = d.data
    ia, ib = linear_sum_assignment(cost)
    ok = cost[ia, ib] <= max_dist
    return ia[ok], ib[ok]


def _inside(df, shape, margin):
    h, w = shape
    return ((df["x"] >= margin) & (df["x"] < w - margin) & (df["y"] >= margin)
            & (df["y"] < h - margin)).to_numpy()


def _f1(tp, fp, fn):
    return 2 * tp / max(2 * tp + fp + fn, 1)


def _swap(planes, particles):
    p = particles.copy()
    p["layer"] = np.where(p["layer"] == 1, 2, np.where(p["layer"] == 2, 1, p["layer"]))
    return planes[:, ::-1], p


def score_movie(movie, planes, particles, *, match_px: float = 5.0,
                either_naming: bool = False) -> dict:
    """Scores of one movie's recording (:func:`run_layered`) against its truth.

    Returns
    -------
    dict
        :data:`LAYER_COLUMNS` plus the counts behind them (``counts``), ``swapped`` (the
        layers were scored under the other naming), ``vib_true_a`` etc.
    """
    if either_naming:
        first = score_movie(movie, planes, particles, match_px=match_px)
        sp, spart = _swap(planes, particles)
        second = score_movie(movie, sp, spart, match_px=match_px)
        better = second if second["f1_a"] + second["f1_b"] > first["f1_a"] + first["f1_b"] \
            else first
        better["swapped"] = better is second
        return better
    truth = movie.truth
    shape = movie.frames.shape[1:]
    n, L = planes.shape[:2]
    out: dict = {"swapped": False}
    counts = {}
    names = "ab"
    for k in range(L):
        p, t = planes[:, k] > 0, movie.layer_labels[:, k] > 0
        tp, fp, fn = (np.count_nonzero(p & t), np.count_nonzero(p & ~t),
                      np.count_nonzero(~p & t))
        out[f"dice_{names[k]}"] = _f1(tp, fp, fn)
        counts[f"pixel_{names[k]}"] = (tp, fp, fn)
    # objects are judged away from the frame edges, by the typical radius of layer A's
    margin = float(np.sqrt(np.median(_areas(movie)) / np.pi))
    obj = np.zeros((L, 3))
    assign = np.zeros(2)
    matches = []                           # (frame, truth particle, track id)
    for f in range(n):
        tf = truth[truth["frame"] == f]
        pf = particles[particles["frame"] == f]
        for k in range(L):
            tk, pk = tf[tf["layer"] == k + 1], pf[pf["layer"] == k + 1]
            ia, ib = match_points(tk[["x", "y"]], pk[["x", "y"]], match_px)
            t_in, p_in = _inside(tk, shape, margin), _inside(pk, shape, margin)
            tp = int(np.count_nonzero(t_in[ia]))
            fn = int(np.count_nonzero(t_in)) - tp
            matched = np.zeros(len(pk), bool)
            matched[ib] = True
            fp = int(np.count_nonzero(p_in & ~matched))
            obj[k] += (tp, fp, fn)
            matches += [(f, int(a), int(b)) for a, b in zip(
                tk["particle"].to_numpy()[ia], pk["particle"].to_numpy()[ib])]
        ia, ib = match_points(tf[["x", "y"]], pf[["x", "y"]], match_px)
        ok = _inside(pf.iloc[ib], shape, margin)
        same = tf["layer"].to_numpy()[ia] == pf["layer"].to_numpy()[ib]
        assign += (np.count_nonzero(same & ok), np.count_nonzero(ok))
    for k in range(L):
        tp, fp, fn = obj[k]
        out[f"f1_{names[k]}"] = _f1(tp, fp, fn)
        counts[f"objects_{names[k]}"] = tuple(int(v) for v in obj[k])
    out["assignment"] = assign[0] / max(assign[1], 1)
    out.update(_vibration(movie, particles, matches, shape))
    out.update(_lattices(movie, particles))
    out.update(_vacancies(movie, particles, shape))
    out["counts"] = counts
    return out


def _areas(movie):
    a = np.bincount(movie.layer_labels[0, 0].ravel())[1:]
    return a[a > 0] if (a > 0).any() else np.array([100.0])


def _true_sites(movie):
    t = movie.truth
    return t.assign(x=t["site_x"], y=t["site_y"])


def _vibration(movie, particles, matches, shape) -> dict:
    """Per-site vibration RMS per layer against the truth, and interior sites tracked
    through the movie."""
    t = movie.truth
    n = movie.frames.shape[0]
    out = {}
    m = pd.DataFrame(matches, columns=["frame", "truth", "track"])
    # true vibration of each particle: RMS of its displacement from its site about the mean
    d = t.assign(dx=t["x"] - t["site_x"], dy=t["y"] - t["site_y"])
    g = d.groupby("particle")
    r2 = (d["dx"] - g["dx"].transform("mean")) ** 2 + (d["dy"] - g["dy"].transform("mean")) ** 2
    true_rms = np.sqrt(r2.groupby(d["particle"]).mean())
    margin = _lattice_constant(movie)
    inside = _inside(t, shape, margin)
    frames_inside = t[inside].groupby("particle")["frame"].nunique()
    interior = frames_inside[frames_inside == n].index
    measured = site_vibration(particles, min_frames=max(3, n // 2))
    for k, name in ((1, "a"), (2, "b")):
        layer_ids = set(t.loc[t["layer"] == k, "particle"])
        ids = [p for p in interior if p in layer_ids]
        mk = m[m["truth"].isin(ids)]
        per = mk.groupby("truth").agg(frames=("frame", "nunique"), tracks=("track", "nunique"),
                                      track=("track", "first"))
        through = per[(per["frames"] == n) & (per["tracks"] == 1)]
        out[f"tracked_{name}"] = len(through) / max(len(ids), 1)
        meas = measured.set_index("particle")["rms"]
        both = [(true_rms[p], meas[tr]) for p, tr in zip(through.index, through["track"])
                if tr in meas.index]
        if both:
            tv, mv = np.array(both).T
            out[f"vib_true_{name}"] = float(tv.mean())
            out[f"vib_meas_{name}"] = float(mv.mean())
            out[f"vib_err_{name}"] = float(mv.mean() / tv.mean() - 1)
            out[f"vib_site_within15_{name}"] = float(np.mean(np.abs(mv / tv - 1) < 0.15))
        else:
            out[f"vib_err_{name}"] = float("nan")
    return out


def _lattice_constant(movie) -> float:
    sites = _true_sites(movie)
    lat = lattice_per_frame(sites[sites["frame"] == 0])
    return float(lat["a"].median()) if len(lat) else 20.0


def _lattices(movie, particles) -> dict:
    true = lattice_per_frame(_true_sites(movie))
    pred = lattice_per_frame(particles)
    out = {}
    tt, tp = twist_angle(true), twist_angle(pred)
    both = tt.index.intersection(tp.index)
    out["twist_err_deg"] = float(np.abs(wrap_angle(tp[both] - tt[both], 60.0)).max()) \
        if len(both) else float("nan")
    out["twist_true_deg"] = float(tt.mean()) if len(tt) else float("nan")
    for k, name in ((1, "a"), (2, "b")):
        a_t = true[true["layer"] == k].set_index("frame")["a"]
        a_p = pred[pred["layer"] == k].set_index("frame")["a"]
        both = a_t.index.intersection(a_p.index)
        out[f"a_err_{name}"] = float(np.abs(a_p[both] / a_t[both] - 1).max()) if len(both) \
            else float("nan")
    return out


def _vacancies(movie, particles, shape) -> dict:
    out = {}
    found = vacancies(particles, shape=shape)
    true = movie.vacancies if movie.vacancies is not None else pd.DataFrame(
        columns=["frame", "layer", "x", "y"])
    a = _lattice_constant(movie)
    for k, name in ((1, "a"), (2, "b")):
        tp = fp = fn = 0
        for f in range(movie.frames.shape[0]):
            tv = true[(true["frame"] == f) & (true["layer"] == k)]
            tv = tv[_inside(tv, shape, 0.5 * a + 2)]
            fv = found[(found["frame"] == f) & (found["layer"] == k)]
            fv = fv[_inside(fv, shape, 0.5 * a + 2)]
            ia, _ = match_points(tv[["x", "y"]], fv[["x", "y"]], 0.35 * a)
            tp += len(ia)
            fn += len(tv) - len(ia)
            fp += len(fv) - len(ia)
        out[f"vac_f1_{name}"] = _f1(tp, fp, fn) if tp + fp + fn else float("nan")
        out[f"vac_counts_{name}"] = (tp, fp, fn)
    return out
