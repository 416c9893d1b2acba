"""Scoring models on labelled frames: simulated test movies (per scenario and dose), real images.

A model's prediction is what the pipeline records: the instance labels of its own stages
(:class:`~temstream.evaluation.models.Model`), so the pixel scores are those of the labels'
foreground and the object scores those of the particles a live run reports. Objects match at
IoU >= 0.5 (one-to-one, Hungarian on IoU). Pixel scores are pooled over all frames of a set;
the 95 % intervals resample the independent units (movies, or images).

On simulated movies, which hold their true tracks, the particles are also registered and
linked as a live run does (:meth:`Model.tracks`) and the tracks scored for continuity
(:func:`temstream.tracking.scoring.track_continuity`): the share of true particles followed by
one track from the movie's start to its end, the median track length over the movie's length,
and tracks per true track (pooled: all tracks over all true tracks of a set).
"""

from __future__ import annotations

import logging

import numpy as np

from temstream.models.metrics import (accumulate, bootstrap_interval, instances,
                                      match_objects, pixel_scores, unit_counts)
from temstream.tracking.scoring import track_continuity

log = logging.getLogger(__name__)


def score_frames(model, frames: np.ndarray, labels: np.ndarray, *, batch: int = 4,
                 tables: list | None = None):
    """Per-frame pixel and object scores of ``model`` on labelled frames.

    Parameters
    ----------
    model : temstream.evaluation.models.Model
    frames : ndarray, shape (N, H, W)
        Raw frames.
    labels : ndarray, shape (N, H, W), int or bool
        True instance labels (0 = background), or a mask (instances = its components).
    batch : int
        Frames per segmenter call.
    tables : list, optional
        Filled with each frame's particle table (for :meth:`Model.tracks`).

    Returns
    -------
    rows : list of dict
        ``{"pixel": ..., "objects": ...}`` per frame (see :mod:`temstream.models.metrics`).
    first : ndarray, shape (C, H, W)
        Probabilities of the first frame (for figures).
    """
    rows, first = [], None
    for k in range(0, len(frames), batch):
        probs = model.probabilities(frames[k:k + batch])
        if first is None:
            first = probs[0]
        for p, lab, frame in zip(probs, labels[k:k + batch], frames[k:k + batch]):
            true_lab = lab if lab.dtype != bool else instances(lab, min_area=1)
            pred_lab, table = model.instances(p, frame)
            if tables is not None:
                tables.append(table)
            rows.append({"pixel": pixel_scores(pred_lab > 0, true_lab > 0),
                         "objects": match_objects(pred_lab, true_lab)})
    return rows, first


def pooled_continuity(per_movie: list[dict]) -> dict:
    """Track continuity of a set of movies: the mean end-to-end share (over the movies that
    have particles spanning them), the median of the movies' median track length over movie
    length, and all tracks over all true tracks."""
    if not per_movie:
        return {}
    e2e = [c["end_to_end"] for c in per_movie if np.isfinite(c["end_to_end"])]
    true = sum(c["true_tracks"] for c in per_movie)
    return {"end_to_end": float(np.mean(e2e)) if e2e else float("nan"),
            "track_length": float(np.median([c["median_length_ratio"] for c in per_movie])),
            "tracks_per_true": sum(c["tracks"] for c in per_movie) / true if true
            else float("nan")}


def layer_dice(model, frames: np.ndarray, layers: np.ndarray) -> dict:
    """Per-layer Dice of a two-layer model: the recorded layer planes of a multi-label model
    (:mod:`temstream.tracking.layers`), or the arg-max classes of a 4-class one (background,
    layer A, layer B, both).

    Parameters
    ----------
    model : temstream.evaluation.models.Model
        Whose segmenter is a two-layer model.
    frames : ndarray, shape (N, H, W)
    layers : ndarray, shape (N, 2, H, W), bool
        True per-layer masks.

    Returns
    -------
    dict
        ``layer_a_dice``, ``layer_b_dice`` (pooled over frames).
    """
    from temstream.tracking.layers import is_layered

    probs = model.probabilities(frames)
    if is_layered(model.segmenter.classes):
        planes = np.stack([model.instances(p, f)[2] > 0 for p, f in zip(probs, frames)])
        return {"layer_a_dice": pixel_scores(planes[:, 0], layers[:, 0])["dice"],
                "layer_b_dice": pixel_scores(planes[:, 1], layers[:, 1])["dice"]}
    cls = probs.argmax(1)
    a = (cls == 1) | (cls == 3)
    b = (cls == 2) | (cls == 3)
    return {"layer_a_dice": pixel_scores(a, layers[:, 0])["dice"],
            "layer_b_dice": pixel_scores(b, layers[:, 1])["dice"]}


def _two_layer(classes) -> bool:
    from temstream.tracking.layers import is_layered

    return len(classes) == 4 or is_layered(classes)


def snr(frames: np.ndarray, labels: np.ndarray) -> float:
    """Particle contrast over background noise: ``|mean(bg) - mean(particle)| / std(bg)``,
    the median over frames (noise from neighbour differences, so slow gradients do not count)."""
    out = []
    for f, lab in zip(frames.astype(np.float32), labels):
        fg = lab > 0
        if fg.sum() < 10 or (~fg).sum() < 10:
            continue
        d = np.diff(f, axis=1)
        bgpair = ~fg[:, 1:] & ~fg[:, :-1]
        sigma = np.std(d[bgpair]) / np.sqrt(2)
        out.append(abs(f[~fg].mean() - f[fg].mean()) / max(sigma, 1e-6))
    return float(np.median(out)) if out else float("nan")


def _with_intervals(row: dict, units: np.ndarray, unit: str) -> dict:
    """``row`` plus its per-unit counts and 95 % bootstrap intervals of Dice and object F1."""
    row.update(units=units, unit=unit,
               dice_ci=bootstrap_interval([units], "dice"),
               obj_f1_ci=bootstrap_interval([units], "obj_f1"))
    return row


def evaluate_simulated(models: dict, sets, *, progress: bool = False):
    """Score models on simulated test movies.

    Parameters
    ----------
    models : dict of name -> Model
    sets : iterable of (scenario, dose_label, dose_e_per_A2, movie or list of movies)
        Each movie has ``frames`` (N, H, W) and ``labels`` (N, H, W) int (e.g. a
        :class:`temstream.sim.Movie`; :func:`temstream.evaluation.data.simulated_sets`).
        Several independent movies of one (scenario, dose) are pooled into one row, and its
        intervals resample movies; with one movie they resample its frames, which are
        correlated, so those intervals are too narrow.
    progress : bool
        Log one line per (set, model).

    Returns
    -------
    rows : list of dict
        One row per (scenario, dose, model): headline metrics, ``dose_e_per_A2``, ``snr``,
        ``units`` (n_units, 6) counts (:func:`temstream.models.metrics.unit_counts`), ``unit``
        ("movie" or "frame") and 95 % intervals ``dice_ci``, ``obj_f1_ci``.
    examples : list of tuple
        ``(title, frame, truth_mask, {model: probs})`` for the first frame of each set.
    """
    rows, examples = [], []
    for scen, dlabel, dose, group in sets:
        group = list(group) if isinstance(group, (list, tuple)) else [group]
        s = float(np.median([snr(m.frames, m.labels) for m in group]))
        probs_by = {}
        for name, model in models.items():
            per_movie, continuity = [], []
            for j, movie in enumerate(group):
                tables: list = []
                per_frame, first = score_frames(model, movie.frames, movie.labels,
                                                tables=tables)
                per_movie.append(per_frame)
                if j == 0:
                    probs_by[name] = first
                truth = getattr(movie, "truth", None)
                if truth is not None and len(truth):
                    continuity.append(track_continuity(
                        model.tracks(movie.frames, tables), truth[["frame", "particle", "x", "y"]],
                        n_frames=len(movie.frames)))
            frames = [r for pm in per_movie for r in pm]
            if len(group) > 1:
                units, unit = np.stack([unit_counts(pm) for pm in per_movie]), "movie"
            else:
                units, unit = np.stack([unit_counts([r]) for r in frames]), "frame"
            rows.append(_with_intervals(
                {"data": "sim", "scenario": scen, "dose": dlabel,
                 "dose_e_per_A2": round(float(dose), 3), "snr": round(s, 2), "model": name,
                 **accumulate(frames), **pooled_continuity(continuity)}, units, unit))
            layers = [getattr(m, "layers", None) for m in group]
            if layers[0] is not None and _two_layer(model.segmenter.classes):
                rows[-1].update(layer_dice(model, np.concatenate([m.frames for m in group]),
                                           np.concatenate(layers)))
            if progress:
                log.info("%s %s %s: dice %.3f", scen, dlabel, name, rows[-1]["dice"])
        examples.append((f"{scen} / {dlabel} dose", group[0].frames[0], group[0].labels[0] > 0,
                         probs_by))
    return rows, examples


def evaluate_real(models: dict, pairs, *, label: str = "msa-em-train"):
    """Score models on real labelled images ``[(name, image, mask), ...]`` (intervals
    resample the images)."""
    rows, examples = [], []
    images = np.stack([p[1] for p in pairs])
    masks = np.stack([p[2] for p in pairs])
    probs_by = {}
    for name, model in models.items():
        per_frame, first = score_frames(model, images, masks)
        probs_by[name] = first
        units = np.stack([unit_counts([r]) for r in per_frame])
        rows.append(_with_intervals(
            {"data": "real", "scenario": label, "dose": "-", "dose_e_per_A2": float("nan"),
             "snr": round(snr(images, masks), 2), "model": name, **accumulate(per_frame)},
            units, "image"))
    examples.append((f"real: {label} ({pairs[0][0]})", images[0], masks[0], probs_by))
    return rows, examples
