"""Segmentation metrics: pixel accuracy, Dice, IoU, object matching at IoU >= 0.5, centroid error."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment


def pixel_scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Pixel accuracy, Dice and IoU of binary masks.

    Parameters
    ----------
    pred, truth : ndarray of bool, same shape
        Predicted and true foreground (any number of frames).

    Returns
    -------
    dict
        ``accuracy``, ``dice``, ``iou`` in [0, 1] (Dice and IoU are 1 when both are empty),
        and the counts ``tp``, ``fp``, ``fn``, ``tn``.
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = pred.size - tp - fp - fn
    union = tp + fp + fn
    return {"accuracy": (tp + tn) / max(pred.size, 1),
            "dice": 2 * tp / (2 * tp + fp + fn) if union else 1.0,
            "iou": tp / union if union else 1.0, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def instances(mask: np.ndarray, *, min_area: int = 4) -> np.ndarray:
    """Instance labels of a true foreground mask: its 8-connected components of at least
    ``min_area`` px, (H, W) bool -> int32."""
    lab, n = ndimage.label(np.asarray(mask, bool), structure=np.ones((3, 3)))
    if min_area > 1 and n:
        areas = np.bincount(lab.ravel())
        lab = np.where(areas[lab] < min_area, 0, lab)
    return lab.astype(np.int32)


def match_objects(pred_labels: np.ndarray, true_labels: np.ndarray,
                  iou_threshold: float = 0.5) -> dict:
    """One-to-one matching of predicted and true instances by IoU.

    Parameters
    ----------
    pred_labels, true_labels : ndarray, shape (H, W), int
        Instance labels, 0 = background.
    iou_threshold : float
        A pair matches when its IoU is at least this (0.5: each true object can match at most
        one prediction).

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (object counts), ``precision``, ``recall``, ``f1`` and
        ``centroid_errors`` (px, one per matched pair).
    """
    p = np.asarray(pred_labels).ravel().astype(np.int64)
    t = np.asarray(true_labels).ravel().astype(np.int64)
    pid, p = np.unique(p, return_inverse=True)
    tid, t = np.unique(t, return_inverse=True)
    n_p, n_t = len(pid), len(tid)
    inter = np.bincount(p * n_t + t, minlength=n_p * n_t).reshape(n_p, n_t)
    ap, at = inter.sum(1), inter.sum(0)
    pi = slice(1, None) if pid[0] == 0 else slice(None)
    ti = slice(1, None) if tid[0] == 0 else slice(None)
    inter, ap, at = inter[pi, ti], ap[pi], at[ti]
    n_pred, n_true = inter.shape
    errors = np.zeros(0)
    tp = 0
    if n_pred and n_true:
        iou = inter / (ap[:, None] + at[None, :] - inter)
        rows, cols = linear_sum_assignment(-iou)
        ok = iou[rows, cols] >= iou_threshold
        rows, cols = rows[ok], cols[ok]
        tp = len(rows)
        if tp:
            shape = np.asarray(pred_labels).shape
            pc = _centroids(np.asarray(pred_labels), pid[pi][rows], shape)
            tc = _centroids(np.asarray(true_labels), tid[ti][cols], shape)
            errors = np.hypot(*(pc - tc).T)
    fp, fn = n_pred - tp, n_true - tp
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "centroid_errors": errors}


def _centroids(labels, ids, shape):
    c = ndimage.center_of_mass(np.ones(shape), labels, ids)
    return np.asarray(c, float).reshape(-1, 2)


def summarise(pixel: dict, objects: dict) -> dict:
    """Flat row of the headline numbers (for tables)."""
    ce = objects["centroid_errors"]
    return {"pixel_accuracy": pixel["accuracy"], "dice": pixel["dice"], "iou": pixel["iou"],
            "obj_precision": objects["precision"], "obj_recall": objects["recall"],
            "obj_f1": objects["f1"], "centroid_err_px": float(np.mean(ce)) if len(ce) else
            float("nan")}


def accumulate(rows: list[dict]) -> dict:
    """Pool per-frame pixel and object counts into one set of scores."""
    counts = unit_counts(rows)
    tp, fp, fn, otp, ofp, ofn = (int(v) for v in counts)
    tn = sum(r["pixel"]["tn"] for r in rows)
    pixel = {"accuracy": (tp + tn) / max(tp + fp + fn + tn, 1),
             "dice": float(pooled_score(counts, "dice")), "iou": tp / max(tp + fp + fn, 1)}
    errs = np.concatenate([r["objects"]["centroid_errors"] for r in rows]) if rows else []
    objects = {"precision": otp / (otp + ofp) if otp + ofp else 1.0,
               "recall": otp / (otp + ofn) if otp + ofn else 1.0,
               "f1": float(pooled_score(counts, "obj_f1")), "centroid_errors": np.asarray(errs)}
    return summarise(pixel, objects)


#: per-unit counts kept for confidence intervals: pixel tp, fp, fn, then object tp, fp, fn
COUNT_FIELDS = ("tp", "fp", "fn", "obj_tp", "obj_fp", "obj_fn")


def unit_counts(rows: list[dict]) -> np.ndarray:
    """Pixel and object counts of per-frame score rows, shape (6,) int64 (see
    :data:`COUNT_FIELDS`), pooled over ``rows`` (the frames of one unit: a frame, a movie or
    an image)."""
    out = np.zeros(len(COUNT_FIELDS), np.int64)
    for r in rows:
        out[:3] += [r["pixel"]["tp"], r["pixel"]["fp"], r["pixel"]["fn"]]
        out[3:] += [r["objects"]["tp"], r["objects"]["fp"], r["objects"]["fn"]]
    return out


def pooled_score(counts: np.ndarray, score: str) -> np.ndarray:
    """Dice (pixels) or F1 (objects) of pooled counts, as :func:`accumulate` computes them.

    Parameters
    ----------
    counts : ndarray, shape (..., 6)
        Summed counts (see :data:`COUNT_FIELDS`).
    score : {"dice", "obj_f1"}

    Returns
    -------
    ndarray, shape (...)
        ``2 tp / (2 tp + fp + fn)``; an empty Dice is 0, an F1 without any object 1.
    """
    counts = np.asarray(counts, np.float64)
    if score == "dice":
        tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
        return 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    if score == "obj_f1":
        tp, fp, fn = counts[..., 3], counts[..., 4], counts[..., 5]
        den = 2 * tp + fp + fn
        return np.where(den > 0, 2 * tp / np.maximum(den, 1), 1.0)
    raise ValueError(f"score must be 'dice' or 'obj_f1', not {score!r}")


def bootstrap_interval(strata: list[np.ndarray], score: str, *, minus: list | None = None,
                       confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean over strata of a pooled score.

    Each stratum (a scenario, or one set of real images) holds independent units (movies,
    frames or images); resampling draws units with replacement within every stratum, pools
    each stratum's counts, scores it and averages the scores over strata, as the summary
    tables do. With ``minus``, the same resampled units are scored for a second segmenter and
    the interval is that of the difference (a paired comparison).

    Parameters
    ----------
    strata : list of ndarray, each shape (n_units, 6)
        Per-unit counts (:func:`unit_counts`) of each stratum.
    score : {"dice", "obj_f1"}
    minus : list of ndarray, optional
        Counts of the same units for the segmenter to subtract (same shapes as ``strata``).
    confidence : float
        Two-sided coverage.
    n_resamples : int
    seed : int
        Seed of the resampling (the interval is reproducible).

    Returns
    -------
    (low, high) : tuple of float
        NaN, NaN when no stratum has two units (nothing to resample).
    """
    if not strata or max(len(s) for s in strata) < 2:
        return float("nan"), float("nan")
    if minus is not None and [np.shape(m) for m in minus] != [np.shape(s) for s in strata]:
        raise ValueError("minus must hold the same units as strata")
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    for k, s in enumerate(strata):
        s = np.asarray(s)
        idx = rng.integers(0, len(s), (n_resamples, len(s)))
        total += pooled_score(s[idx].sum(axis=1), score)
        if minus is not None:
            total -= pooled_score(np.asarray(minus[k])[idx].sum(axis=1), score)
    total /= len(strata)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(total, [alpha, 1 - alpha])
    return float(low), float(high)
