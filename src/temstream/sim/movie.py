"""Movies with ground truth: :func:`iter_movie` (streaming) and :func:`simulate` (in memory)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from temstream.sim import particles as P
from temstream.sim.background import Background
from temstream.sim.dynamics import Dynamics
from temstream.sim.render import expected_counts
from temstream.sim.scenarios import scenario_params
from temstream.sim.scene import Distractors, random_distractors, render_scene

#: truth table columns (the recording's names, docs/recording.md) plus simulator extras
TRUTH_COLUMNS = ["frame", "particle", "label", "x", "y", "area", "angle", "layer", "score",
                 "x_nm", "y_nm", "area_nm2", "size_nm", "shape", "symmetry"]


@dataclass
class SimFrame:
    """One simulated frame.

    Attributes
    ----------
    index : int
    image : (H, W) uint16 (uint8 if ``bit_depth`` is 8) counts
    labels : (H, W) int32 instance labels (0 background; label = particle + 1)
    truth : pandas.DataFrame, rows of this frame (:data:`TRUTH_COLUMNS`)
    layers : (n_layers, H, W) bool per-layer masks, or None for single-layer scenarios
    timestamp_s : float, time since the start of the movie
    pixel_size_nm : float
    offset_px : (2,) float, where the stage has moved the field on the detector (x, y px):
        drift, jitter and jumps
    event : str, ``""``, ``"blank"`` or ``"blurred"`` (``blank_frames``, ``blurred_frames``)
    layer_labels : (n_layers, H, W) int32 per-layer instance labels (label = particle + 1),
        or None for single-layer scenarios
    vacancies : pandas.DataFrame or None, the empty lattice sites of this frame (``frame``,
        ``layer`` 1..L, ``x``, ``y`` px) for lattice scenarios with layers
    noise_free : (H, W) float32 or None, the frame's expected counts without shot or read
        noise, rounding or clipping (:func:`temstream.sim.render.expected_counts`); only
        with ``iter_movie(..., noise_free=True)``
    """

    index: int
    image: np.ndarray
    labels: np.ndarray
    truth: pd.DataFrame
    layers: np.ndarray | None
    timestamp_s: float
    pixel_size_nm: float = 0.0
    offset_px: tuple = (0.0, 0.0)
    event: str = ""
    layer_labels: np.ndarray | None = None
    vacancies: pd.DataFrame | None = None
    noise_free: np.ndarray | None = None


@dataclass
class Movie:
    """A simulated movie with its ground truth.

    Attributes
    ----------
    frames : (N, H, W) uint16 counts
    labels : (N, H, W) int32 instance labels, 0 = background. Overlap rule: a pixel covered by
        several particles in projection belongs to the one with the largest projected thickness
        there. Labels are ``particle + 1``, the same id along a track.
    layers : (N, L, H, W) bool per-layer masks (moire), or None
    truth : pandas.DataFrame, one row per particle with at least one labelled pixel per frame;
        columns :data:`TRUTH_COLUMNS` (x = column, y = row, px; area px; angle rad, in-plane
        orientation unwrapped along the track; shape index into ``temstream.sim.SHAPES``).
        Multi-layer scenarios: ``layer`` is 1..L (0 in single-layer ones), ``area`` the
        particle's pixels in its own layer's plane (a particle hidden behind one of another
        layer still counts), plus ``site_x``, ``site_y`` (px, its lattice site in that frame)
        and ``interstitial`` (bool)
    pixel_size_nm, frame_time_s : float
    params : dict, the parameters used (JSON-serialisable)
    offsets : (N, 2) float, the stage offset of each frame (x, y px; :class:`SimFrame`)
    events : list of str, each frame's event (``""``, ``"blank"``, ``"blurred"``)
    layer_labels : (N, L, H, W) int32 per-layer instance labels (moire), or None: the layout
        of a recording's ``/data/layer_labels``
    vacancies : pandas.DataFrame or None, empty lattice sites per frame (``frame``, ``layer``,
        ``x``, ``y`` px) of multi-layer lattice scenarios
    noise_free : (N, H, W) float32 or None, each frame's expected counts (the denoising
        truth, :class:`SimFrame`); only with ``simulate(..., noise_free=True)``
    """

    frames: np.ndarray
    labels: np.ndarray
    layers: np.ndarray | None
    truth: pd.DataFrame
    pixel_size_nm: float
    frame_time_s: float
    params: dict
    offsets: np.ndarray | None = None
    events: list | None = None
    layer_labels: np.ndarray | None = None
    vacancies: pd.DataFrame | None = None
    noise_free: np.ndarray | None = None


def _shape2(size) -> tuple[int, int]:
    if np.isscalar(size):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _truth(index, labels, ps: P.ParticleSet, offset_px, px, layer_labels=None,
           dyn=None) -> pd.DataFrame:
    if layer_labels is None:
        area = np.bincount(labels.ravel())
    else:  # every layer's particles, each counted in its own plane
        area = np.bincount(layer_labels.ravel(), minlength=int(ps.pid.max(initial=0)) + 2)
    ids = np.nonzero(area)[0]
    ids = ids[ids > 0]
    order = np.searchsorted(ps.pid, ids - 1)
    sel = ps.take(order)
    x = sel.pos_nm[:, 0] / px + offset_px[0]
    y = sel.pos_nm[:, 1] / px + offset_px[1]
    a = area[ids].astype(np.int64)
    layer = sel.layer.astype(np.int64) + (1 if layer_labels is not None else 0)
    df = pd.DataFrame({
        "frame": np.full(len(ids), index, np.int64), "particle": sel.pid.astype(np.int64),
        "label": ids.astype(np.int32), "x": x, "y": y, "area": a, "angle": sel.angle,
        "layer": layer, "score": np.ones(len(ids), np.float32),
        "x_nm": x * px, "y_nm": y * px, "area_nm2": a * px * px,
        "size_nm": sel.size_nm * sel.scale, "shape": sel.shape.astype(np.int64),
        "symmetry": P.SYMMETRY[sel.shape].astype(np.int64),
    }, columns=TRUTH_COLUMNS)
    sites = getattr(dyn, "sites", None)
    if layer_labels is not None and sites is not None and len(sites) == len(ps):
        df["site_x"] = sites[order, 0] / px + offset_px[0]
        df["site_y"] = sites[order, 1] / px + offset_px[1]
        df["interstitial"] = np.asarray(getattr(dyn, "interstitial", np.zeros(len(ps), bool))
                                        )[order]
    return df


def _vacancies(index, dyn, offset_px, px, shape) -> pd.DataFrame | None:
    """The empty sites of a layered lattice inside the frame (px)."""
    vacant = getattr(dyn, "vacant", None)
    if vacant is None:
        return None
    x = vacant[:, 0] / px + offset_px[0]
    y = vacant[:, 1] / px + offset_px[1]
    inside = (x >= 0) & (x < shape[1]) & (y >= 0) & (y < shape[0])
    return pd.DataFrame({"frame": np.full(int(inside.sum()), index, np.int64),
                         "layer": dyn.vacant_layer[inside] + 1, "x": x[inside],
                         "y": y[inside]})


def _events(params: dict, key: str, width: int) -> np.ndarray:
    """``params[key]`` as an (n, width) float array, checked."""
    rows = np.asarray(params[key], float).reshape(-1, width) if len(params[key]) else \
        np.zeros((0, width))
    if not np.isfinite(rows).all():
        raise ValueError(f"{key} must hold finite [frame, dx_px, dy_px] rows, got {params[key]}")
    return rows


def iter_movie(scenario: str | dict, *, size=256, seed: int = 0, frames: int | None = None,
               noise_free: bool = False, **overrides) -> Iterator[SimFrame]:
    """Simulate a movie frame by frame.

    Parameters
    ----------
    scenario : str or dict
        A name in :data:`temstream.sim.SCENARIOS` or a parameter dict.
    size : int or (H, W)
        Frame shape in px.
    seed : int
        Same seed, same movie (bit for bit).
    frames : int, optional
        Number of frames; endless when None.
    noise_free : bool
        Also give each frame's expected counts (``SimFrame.noise_free``); the noisy frames
        are the same with or without it.
    **overrides
        Any scenario parameter (see ``SCENARIOS[name]``).

    Yields
    ------
    SimFrame
    """
    params = scenario_params(scenario, **overrides)
    shape = _shape2(size)
    ss = np.random.SeedSequence(seed)
    rng_dyn, rng_bg, rng_noise = (np.random.default_rng(s) for s in ss.spawn(3))
    px = float(params["pixel_size_nm"])
    dt = float(params["frame_time_s"])
    drift_v = np.asarray(params["stage_drift_nm_per_s"], float) / px
    jumps = _events(params, "stage_jumps", 3)
    blank = {int(f) for f in params["blank_frames"]}
    blurred = {int(e[0]): (float(e[1]), float(e[2]))
               for e in _events(params, "blurred_frames", 3)}
    jumped = np.abs(jumps[:, 1:]).sum(0).max() if len(jumps) else 0.0
    margin = int(np.ceil(np.abs(drift_v).max() * dt * (frames or 2000) + jumped)) + 8
    margin = min(margin, max(shape))
    bg = Background(shape, dict(params, margin_px=margin), rng_bg)
    dyn = Dynamics(params, shape, rng_dyn)
    dis = random_distractors(params, shape, rng_bg)
    n_fast = int(params["n_fast"])
    n_layers = int(params["n_layers"])
    jitter = np.zeros(2)
    i = 0
    while frames is None or i < frames:
        t = i * dt
        if i:
            dyn.step(dt)
        jitter += rng_dyn.normal(0, params["stage_jitter_nm"] / px, 2)
        jump = jumps[jumps[:, 0] <= i, 1:].sum(0) if len(jumps) else 0.0
        offset = np.clip(drift_v * t + jitter + jump, -margin, margin)
        # distractors: bubbles breathe, contamination builds up, fast particles are new each frame
        d = Distractors(dis.bubbles.copy(), dis.contamination.copy(), dis.blurred, dis.blur_px)
        if len(d.bubbles):
            d.bubbles[:, 2] *= 1 + 0.1 * np.sin(2 * np.pi * t / 8.0)
        if len(d.contamination):
            d.contamination[:, 3] *= 1 + 0.02 * t
        if n_fast:
            fresh = random_distractors(dict(params, n_bubbles=0, n_contamination=0,
                                            n_defocused=0), shape, rng_dyn)
            keep = np.arange(len(dis.blurred)) >= n_fast
            d.blurred = fresh.blurred.concat(dis.blurred.take(keep))
            d.blur_px = np.concatenate([fresh.blur_px, dis.blur_px[keep]])
        ps = dyn.ps
        event, frame_params = "", params
        if i in blank:
            event, frame_params = "blank", dict(params, dose_e_per_A2=0.0)
        elif i in blurred:
            event, frame_params = "blurred", dict(params, motion_blur_px=blurred[i])
        out = render_scene(shape, frame_params, ps, bg, d, rng_noise, t_s=t,
                           offset_px=tuple(offset))
        layered = n_layers > 1
        if event == "blank":  # nothing to see, nothing in the truth
            out.labels[:] = 0
            out.layers[:] = False
            if layered:
                out.layer_labels[:] = 0
        truth = _truth(i, out.labels, ps, offset, px,
                       out.layer_labels if layered else None, dyn)
        yield SimFrame(i, out.image, out.labels, truth, out.layers if layered else None, t, px,
                       offset_px=(float(offset[0]), float(offset[1])), event=event,
                       layer_labels=out.layer_labels if layered else None,
                       vacancies=_vacancies(i, dyn, offset, px, shape) if layered else None,
                       noise_free=expected_counts(out.expected, frame_params) if noise_free
                       else None)
        i += 1


def simulate(scenario: str | dict, *, frames: int = 10, size=256, seed: int = 0,
             progress: bool = False, noise_free: bool = False, **overrides) -> Movie:
    """Simulate a whole movie in memory (see :func:`iter_movie` for the parameters).

    Returns
    -------
    Movie
    """
    params = scenario_params(scenario, **overrides)
    if frames < 1:
        raise ValueError("frames must be >= 1")
    it = iter_movie(params, size=size, seed=seed, frames=frames, noise_free=noise_free)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=frames, unit="frame", desc=f"sim {params['scenario']}")
    imgs, labs, lays, planes, rows, vac, offsets, events = [], [], [], [], [], [], [], []
    clean = []
    for f in it:
        imgs.append(f.image)
        if f.noise_free is not None:
            clean.append(f.noise_free)
        labs.append(f.labels)
        rows.append(f.truth)
        offsets.append(f.offset_px)
        events.append(f.event)
        if f.layers is not None:
            lays.append(f.layers)
            planes.append(f.layer_labels)
        if f.vacancies is not None:
            vac.append(f.vacancies)
    truth = pd.concat(rows, ignore_index=True)
    json.dumps(params)  # guarantee the contract: params are JSON-serialisable
    return Movie(np.stack(imgs), np.stack(labs), np.stack(lays) if lays else None, truth,
                 float(params["pixel_size_nm"]), float(params["frame_time_s"]), params,
                 np.asarray(offsets, float), events,
                 np.stack(planes) if planes else None,
                 pd.concat(vac, ignore_index=True) if vac else None,
                 np.stack(clean) if clean else None)
