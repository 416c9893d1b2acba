"""Score predicted tracks against ground truth (simulated movies).

Both tables have ``frame``, ``particle``, ``x``, ``y`` (px), one row per detection.
Detections are matched per frame by an exact gated assignment (minimise the sum
of squared distances, pairs farther than ``gate`` px never match), then:

- link level: a truth link joins two consecutive detections of one truth track;
  it is *correct* when both ends are matched and the predicted track goes
  directly from the one match to the other. ``correct_link_fraction`` =
  correct / truth links (recall), ``link_precision`` = correct / predicted
  links, ``link_jaccard`` = correct / (truth + predicted - correct);
- track level: ``track_purity`` = share of matched predicted detections that
  belong to their predicted track's dominant truth track;
  ``target_effectiveness`` = share of all truth detections found in the
  predicted track that covers most of their truth track;
- ISBI 2012 particle-tracking scores (Chenouard et al., Nat. Methods 11, 281,
  2014): track distance d(X, Y) = sum over the union of frames of
  min(|x_t - y_t|, gate), gate when one is missing; truth tracks are paired one
  to one with predicted tracks (or a dummy) minimising the total distance;
  ``alpha`` = 1 - d(X, Y) / d(X, 0) and ``beta`` = (d(X, 0) - d(X, Y)) /
  (d(X, 0) + d(Y_spurious, 0)), d(., 0) = gate x number of points;
  ``jsc`` = TP / (TP + FN + FP) over the detections of paired tracks within
  the gate, ``rmse`` of those TP positions (px).
"""

import numpy as np
import pandas as pd

from temstream.tracking import _linking_kernels as _k

__all__ = ["match_detections", "score_tracks", "track_continuity"]


def _check(df, name):
    for c in ("frame", "particle", "x", "y"):
        if c not in df.columns:
            raise ValueError(f"{name} table needs columns frame, particle, x, y; missing {c!r}")
    if not (np.isfinite(df["x"]).all() and np.isfinite(df["y"]).all()):
        raise ValueError(f"{name} table has NaN/inf coordinates; drop those rows first")


def match_detections(truth, pred, gate=5.0):
    """Match detections frame by frame (exact, gated, minimum sum of squared distances).

    Parameters
    ----------
    truth, pred : pandas.DataFrame
        ``frame``, ``x``, ``y`` (px).
    gate : float
        Largest matching distance (px).

    Returns
    -------
    match : (len(truth),) int64 ndarray
        Positional index into ``pred`` of each truth row's match, -1 if none.
    """
    tf = truth["frame"].to_numpy()
    pf = pred["frame"].to_numpy()
    tx, ty = truth["x"].to_numpy(float), truth["y"].to_numpy(float)
    px, py = pred["x"].to_numpy(float), pred["y"].to_numpy(float)
    match = np.full(len(truth), -1, np.int64)
    t_order = np.argsort(tf, kind="stable")
    p_order = np.argsort(pf, kind="stable")
    t_frames, t_start = np.unique(tf[t_order], return_index=True)
    p_frames, p_start = np.unique(pf[p_order], return_index=True)
    t_end = np.r_[t_start[1:], len(tf)]
    p_end = np.r_[p_start[1:], len(pf)]
    p_pos = {f: i for i, f in enumerate(p_frames)}
    for i, f in enumerate(t_frames):
        j = p_pos.get(f)
        if j is None:
            continue
        ti = t_order[t_start[i]:t_end[i]]
        pi = p_order[p_start[j]:p_end[j]]
        ps, pd_, pc = _k.candidate_pairs(tx[ti], ty[ti], px[pi], py[pi], float(gate))
        sm = np.empty(len(ti), np.int64)
        dm = np.empty(len(pi), np.int64)
        _k.solve_links(len(ti), len(pi), ps, pd_, pc, float(gate) ** 2, sm, dm)
        ok = sm >= 0
        match[ti[ok]] = pi[sm[ok]]
    return match


def _next_row(df):
    """Positional index of the next detection of the same track (-1 at a track end)."""
    order = np.lexsort((df["frame"].to_numpy(), df["particle"].to_numpy()))
    pid = df["particle"].to_numpy()[order]
    nxt = np.full(len(df), -1, np.int64)
    same = pid[1:] == pid[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def _isbi(truth, pred, match, gate):
    """ISBI alpha/beta/JSC/RMSE from per-frame matches (pairs closer than the gate)."""
    tid = pd.factorize(truth["particle"])[0]
    pid_all = pd.factorize(pred["particle"])[0]
    n_t = tid.max() + 1 if len(tid) else 0
    n_p = pid_all.max() + 1 if len(pid_all) else 0
    len_t = np.bincount(tid, minlength=n_t)
    len_p = np.bincount(pid_all, minlength=n_p)
    # co-occurring frames of every (truth track, predicted track) pair with a close point
    ok = match >= 0
    dist = np.hypot(truth["x"].to_numpy()[ok] - pred["x"].to_numpy()[match[ok]],
                    truth["y"].to_numpy()[ok] - pred["y"].to_numpy()[match[ok]])
    pair_t = tid[ok]
    pair_p = pid_all[match[ok]]
    key = pair_t.astype(np.int64) * max(n_p, 1) + pair_p
    ukey, inv = np.unique(key, return_inverse=True)
    saving_close = np.bincount(inv, weights=gate - dist)
    close_n = np.bincount(inv)
    # frames shared by the pair (close or not): intersect frame sets
    tframes = truth.groupby(tid)["frame"].apply(lambda s: set(s.to_numpy().tolist()))
    pframes = pred.groupby(pid_all)["frame"].apply(lambda s: set(s.to_numpy().tolist()))
    ut = ukey // max(n_p, 1)
    up = ukey % max(n_p, 1)
    common = np.array([len(tframes[a] & pframes[b]) for a, b in zip(ut, up)], float)
    # d(X_i, Y_j) = gate (|X| + |Y| - |common|) - sum_close (gate - d)
    d_pair = gate * (len_t[ut] + len_p[up] - common) - saving_close
    # assignment: rows = truth tracks, columns = predicted tracks + one dummy per row;
    # only pairs that beat the dummy can be chosen
    better = d_pair < gate * len_t[ut]
    rows = np.r_[ut[better], np.arange(n_t)]
    cols = np.r_[up[better], n_p + np.arange(n_t)]
    cost = np.r_[d_pair[better], gate * len_t.astype(float)]
    order = np.lexsort((cols, rows))
    rows, cols, cost = rows[order], cols[order], cost[order]
    indptr = np.searchsorted(rows, np.arange(n_t + 1)).astype(np.int64)
    col4row = np.empty(n_t, np.int64)
    nc = n_p + n_t
    ne = len(cols)
    _k.sparse_assignment(n_t, nc, indptr, cols.astype(np.int64), cost.astype(float), col4row,
                         np.empty(n_t + 2 * nc + ne), np.empty(n_t + 4 * nc + ne, np.int64))
    d_xy = cost[cols == col4row[rows]].sum() if n_t else 0.0
    paired_p = np.zeros(n_p, bool)
    paired_p[col4row[col4row < n_p]] = True
    d_x0 = gate * len(truth)
    d_spurious = gate * len_p[~paired_p].sum()
    # detection-level TP: close points of the paired tracks
    paired_key = np.arange(n_t)[col4row < n_p] * max(n_p, 1) + col4row[col4row < n_p]
    is_tp = np.isin(key, paired_key)
    tp = int(is_tp.sum())
    return {
        "alpha": float(1.0 - d_xy / d_x0) if d_x0 else float("nan"),
        "beta": float((d_x0 - d_xy) / (d_x0 + d_spurious)) if d_x0 else float("nan"),
        "jsc": tp / (len(truth) + len(pred) - tp) if len(truth) + len(pred) else float("nan"),
        "rmse": float(np.sqrt(np.mean(dist[is_tp] ** 2))) if tp else float("nan"),
    }


def score_tracks(truth, pred, gate=5.0):
    """Link, track and ISBI scores of predicted tracks against the truth.

    Parameters
    ----------
    truth, pred : pandas.DataFrame
        ``frame``, ``particle``, ``x``, ``y`` (px); one detection per row,
        at most one detection per track and frame.
    gate : float
        Matching gate (px); ISBI uses 5 px, scale it with the particle size.

    Returns
    -------
    dict
        ``correct_link_fraction``, ``link_precision``, ``link_jaccard``,
        ``track_purity``, ``target_effectiveness``, ``alpha``, ``beta``, ``jsc``,
        ``rmse`` (px), ``detection_recall``, ``n_truth_links``, ``n_pred_links``
        (see the module docstring for the definitions).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2], "particle": 0, "x": [0.0, 1, 2], "y": 0.0})
    >>> s = score_tracks(t, t.assign(particle=7))
    >>> s["correct_link_fraction"], s["alpha"], s["beta"], s["track_purity"]
    (1.0, 1.0, 1.0, 1.0)
    """
    _check(truth, "truth")
    _check(pred, "pred")
    truth = truth.reset_index(drop=True)
    pred = pred.reset_index(drop=True)
    gate = float(gate)
    match = match_detections(truth, pred, gate)
    t_next = _next_row(truth)
    p_next = _next_row(pred)
    has = t_next >= 0
    a = match[has]
    b = match[t_next[has]]
    correct = int(((a >= 0) & (b >= 0) & (p_next[np.maximum(a, 0)] == b)).sum())
    n_t_links = int(has.sum())
    n_p_links = int((p_next >= 0).sum())
    ok = match >= 0
    tpid = truth["particle"].to_numpy()[ok]
    ppid = pred["particle"].to_numpy()[match[ok]]
    counts = pd.DataFrame({"t": tpid, "p": ppid}).value_counts()
    by_p = counts.groupby(level="p").max().sum()
    by_t = counts.groupby(level="t").max().sum()
    out = {
        "correct_link_fraction": correct / n_t_links if n_t_links else float("nan"),
        "link_precision": correct / n_p_links if n_p_links else float("nan"),
        "link_jaccard": (correct / (n_t_links + n_p_links - correct)
                         if n_t_links + n_p_links else float("nan")),
        "track_purity": float(by_p / ok.sum()) if ok.any() else float("nan"),
        "target_effectiveness": float(by_t / len(truth)) if len(truth) else float("nan"),
        "detection_recall": float(ok.mean()) if len(ok) else float("nan"),
        "n_truth_links": n_t_links,
        "n_pred_links": n_p_links,
    }
    out.update(_isbi(truth, pred, match, gate))
    return out


def track_continuity(pred, truth=None, *, n_frames=None, gate=5.0, ends=5):
    """How whole the tracks are: end-to-end share, track lengths, tracks per true track.

    Parameters
    ----------
    pred : pandas.DataFrame
        ``frame``, ``particle`` [, ``x``, ``y`` with ``truth``]; rows with ``particle < 0``
        (not linked) are ignored.
    truth : pandas.DataFrame, optional
        ``frame``, ``particle``, ``x``, ``y`` of the true tracks (a simulated movie).
    n_frames : int, optional
        The movie's length in frames (default: from the first to the last frame with tracks,
        which are also the frames "end to end" means).
    gate : float
        Matching distance to the truth (px; :func:`match_detections`).
    ends : int
        Frames at each end of the movie that count as its start and its end (a particle
        missed in the very first or last frame can still be tracked end to end).

    Returns
    -------
    dict
        - ``end_to_end``: with ``truth``, the share of true particles present in the first and
          the last frame that one predicted track follows from the first ``ends`` frames to the
          last ``ends`` frames (a detection of it in each); without, the share of the first
          frame's detections whose track is still there in the last ``ends`` frames (the
          measure a real movie allows);
        - ``median_length``: median track length, first to last frame (frames), and
          ``median_length_ratio``: that over ``n_frames``;
        - ``spanning``: share of tracks from the first frame to the last;
        - ``tracks``; with ``truth`` also ``true_tracks``, ``tracks_per_true`` and
          ``matched_tracks`` (tracks with most of their detections on the truth: the others
          follow things the truth does not hold, or nothing);
        - ``n_frames``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"frame": [0, 1, 2, 0, 1, 2], "particle": [0, 0, 0, 1, 1, 1],
    ...                   "x": [0.0, 1, 2, 50, 50, 50], "y": 0.0})
    >>> p = t.assign(particle=[7, 7, 7, 8, 9, 9])        # the second one broken once
    >>> c = track_continuity(p, t, ends=1)
    >>> c["end_to_end"], c["tracks"], c["tracks_per_true"]
    (0.5, 3, 1.5)
    """
    pred = pred[np.asarray(pred["particle"]) >= 0]
    allf = np.asarray(pred["frame"]) if len(pred) else (
        np.asarray(truth["frame"]) if truth is not None and len(truth) else np.zeros(1, int))
    first, last = int(allf.min()), int(allf.max())  # the first and last frames with tracks
    n = int(n_frames) if n_frames else last - first + 1
    span = pred.groupby("particle")["frame"].agg(["min", "max"])
    lengths = (span["max"] - span["min"] + 1).to_numpy()
    out = {"tracks": int(len(span)), "n_frames": n,
           "median_length": float(np.median(lengths)) if len(lengths) else 0.0,
           "spanning": float(np.mean((span["min"] <= first) & (span["max"] >= last)))
           if len(span) else float("nan")}
    out["median_length_ratio"] = out["median_length"] / n if n else float("nan")
    pf = np.asarray(pred["frame"])
    if truth is None:
        ids0 = np.asarray(pred["particle"])[pf == first]
        ids1 = set(np.asarray(pred["particle"])[pf > last - ends].tolist())
        out["end_to_end"] = (float(np.mean([i in ids1 for i in ids0])) if len(ids0)
                             else float("nan"))
        return out
    _check(truth, "truth")
    truth = truth.reset_index(drop=True)
    pred = pred.reset_index(drop=True)
    match = match_detections(truth, pred, gate)
    ids = np.asarray(pred["particle"])
    pid = (np.where(match >= 0, ids[np.maximum(match, 0)], -1) if len(ids)
           else np.full(len(match), -1))  # nothing found in the whole movie
    tf = np.asarray(truth["frame"])
    tid = np.asarray(truth["particle"])
    both = np.intersect1d(tid[tf == first], tid[tf == last])
    start = pd.Series(pid[tf < first + ends]).groupby(tid[tf < first + ends]).agg(set)
    end = pd.Series(pid[tf > last - ends]).groupby(tid[tf > last - ends]).agg(set)
    out["end_to_end"] = (float(np.mean([bool((start[k] & end[k]) - {-1}) for k in both]))
                         if len(both) else float("nan"))
    n_true = int(pd.unique(tid).size)
    out["true_tracks"] = n_true
    out["tracks_per_true"] = out["tracks"] / n_true if n_true else float("nan")
    on_truth = np.zeros(len(pred), bool)
    on_truth[match[match >= 0]] = True
    share = pd.Series(on_truth).groupby(np.asarray(pred["particle"])).mean()
    out["matched_tracks"] = int((share > 0.5).sum())
    return out
