"""Endless, seeded, domain-randomised (image, target) pairs for training the U-Nets.

Every pair is an independent single frame whose physics is drawn afresh (pixel size, particle
size/shape/material/orientation, liquid and window thickness, defocus, coherence, blur, dose over
2.5 decades, detector type/gain/MTF/read noise, thickness mottle of the support, blur during
the exposure, distractors that are not in the target).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from temstream.sim import particles as P
from temstream.sim.background import Background
from temstream.sim.scenarios import PHYSICS
from temstream.sim.scene import random_distractors, render_scene

TASKS = ("particles", "bilayer")


def _log_uniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_physics(rng: np.random.Generator, size: int, *, bubbles: float = 0.15) -> dict:
    """Domain-randomised image-formation parameters for one training image (a gas bubble in
    a fraction ``bubbles`` of them)."""
    prm = copy.deepcopy(PHYSICS)
    d_px = _log_uniform(rng, 4.0, min(130.0, 0.45 * size))
    p = _log_uniform(rng, 0.2, 2.5)
    d_nm = float(np.clip(d_px * p, 2.0, 150.0))
    p = d_nm / d_px
    e_px = _log_uniform(rng, 8.0, 3000.0)                  # electrons per pixel and frame
    lam_np = _log_uniform(rng, 20.0, 420.0)                # gold ... organic
    prm.update(
        pixel_size_nm=p, diameter_nm=d_nm, dose_e_per_A2=e_px / (100 * p * p),
        voltage_kv=float(rng.choice([200.0, 300.0])),
        defocus_nm=float(rng.uniform(-3000, 1500)) * min(1.0, 2 * p),
        convergence_mrad=_log_uniform(rng, 0.01, 0.3),
        focal_spread_nm=float(rng.uniform(2, 10)),
        liquid_nm=_log_uniform(rng, 20.0, 800.0), window_nm=float(rng.uniform(10, 50)),
        lambda_water_nm=float(rng.uniform(185, 430)), lambda_sin_nm=float(rng.uniform(120, 170)),
        liquid_variation=float(rng.uniform(0, 0.15)), bulge=float(rng.uniform(0, 0.3)),
        liquid_corr_nm=float(rng.uniform(0.2, 1.0)) * size * p,
        inelastic_blur_nm=float(rng.uniform(0.5, 3.0)),
        beam_broadening=float(rng.uniform(0, 1)),
        texture_rad=float(rng.uniform(0.0, 0.15)), texture_corr_px=float(rng.uniform(0.6, 3.0)),
        illumination_gradient=float(rng.uniform(0, 0.25)), intensity_drift=0.0,
        detector="counting" if rng.random() < 0.3 else "integrating",
        gain=_log_uniform(rng, 0.5, 8.0), offset=float(rng.uniform(0, 300)),
        read_noise=float(rng.uniform(0, 6)),
        mtf_f0=float(rng.uniform(0.08, 0.5)), mtf_floor=float(rng.uniform(0.05, 0.4)),
        n_bubbles=int(rng.random() < bubbles), n_contamination=int(rng.poisson(0.8)),
        n_fast=int(rng.poisson(1.0)), n_defocused=int(rng.poisson(0.7)),
        material="Au", polydispersity=float(rng.uniform(0.03, 0.3)),
        orientation="flat" if rng.random() < 0.4 else "random",
        supersample=2 if d_px < 40 else 1,
    )
    if prm["detector"] == "counting":
        prm.update(gain=1.0, offset=0.0, read_noise=0.0, mtf_f0=float(rng.uniform(0.3, 2.0)))
    names = list(P.SHAPES)
    if rng.random() < 0.5:
        prm["shapes"] = {names[rng.integers(len(names))]: 1.0}
    else:
        wts = rng.dirichlet(np.ones(len(names)))
        prm["shapes"] = {k: float(v) for k, v in zip(names, wts)}
    # keep the particles detectable: contrast-to-noise over a particle's area >= 8 (labels of
    # invisible particles would teach the network to hallucinate)
    t_bg = np.exp(-(prm["liquid_nm"] / prm["lambda_water_nm"]
                    + 2 * prm["window_nm"] / prm["lambda_sin_nm"]))
    thin = {"sphere": 0.67, "cube": 1.0, "prism": 0.3, "rod": 0.7, "blob": 0.6}
    t_np = d_nm * min(thin[k] for k, v in prm["shapes"].items() if v > 0.1)
    for _ in range(100):
        contrast = 1 - np.exp(-(t_np / lam_np - t_np / prm["lambda_water_nm"]))
        contrast *= min(1.0, d_px / 6.0)
        cnr = contrast * np.sqrt(e_px * t_bg * np.pi * d_px**2 / 4)
        if cnr >= 8 and contrast >= 0.04:
            break
        lam_np = max(20.0, lam_np * 0.8)
        e_px = min(e_px * 1.25, 20000.0)
    prm["dose_e_per_A2"] = e_px / (100 * p * p)
    prm["lambda_np_nm"] = lam_np
    # real supports and ice are mottled on the scale of the particles, and images blur during
    # the exposure (vibration, drift): both keep a sim-trained network off fine textures
    if rng.random() < 0.6:
        prm["mottle_tau"] = float(rng.uniform(0.0, 0.25)) * float(contrast)
        prm["mottle_corr_px"] = _log_uniform(rng, 2.0, 25.0)
    if rng.random() < 0.5:
        prm["exposure_blur_px"] = _log_uniform(rng, 0.5, max(0.6, min(4.0, d_px / 6.0)))
    prm["v0_np"] = float(7.5 + 17.5 * np.log(420.0 / lam_np) / np.log(21.0))
    return prm


def _place(rng, n, radius_px, shape, touch_prob):
    """Centres (n, 2) px: uniform with a soft exclusion, a fraction placed touching another."""
    h, w = shape
    pts = np.zeros((n, 2))
    k = 0
    for i in range(n):
        for _ in range(20):
            if k and rng.random() < touch_prob:
                j = rng.integers(k)
                a = rng.uniform(0, 2 * np.pi)
                d = (radius_px[i] + radius_px[j]) * rng.uniform(0.85, 1.05)
                c = pts[j] + d * np.array([np.cos(a), np.sin(a)])
            else:
                c = rng.uniform([-radius_px[i], -radius_px[i]],
                                [w + radius_px[i], h + radius_px[i]])
            if k == 0:
                break
            if np.all(np.hypot(*(pts[:k] - c).T) > 0.8 * (radius_px[:k] + radius_px[i])):
                break
        pts[k] = c
        k += 1
    return pts


def _particles(rng, prm, size):
    p = prm["pixel_size_nm"]
    d_px = prm["diameter_nm"] / p
    cover = rng.uniform(0.03, 0.35)
    n = int(np.clip(cover * size * size / (np.pi * d_px * d_px / 4), 1, 300))
    ps = P.make_particles(n, rng, shapes=prm["shapes"], diameter_nm=prm["diameter_nm"],
                          polydispersity=prm["polydispersity"], material="Au",
                          pos_nm=np.zeros((n, 3)), orientation=prm["orientation"],
                          lambda_nm=prm["lambda_np_nm"])
    ps.v0[:] = prm["v0_np"]
    # in-plane footprint radius for placement (rods and prisms lying flat are larger)
    r = 0.5 * ps.size_nm / p * np.where(ps.shape == 3, 0.5 * (1 + ps.aspect), 1.0)
    ps.pos_nm[:, :2] = _place(rng, n, r, (size, size), rng.uniform(0, 0.5)) * p
    return ps


def _bilayer_particles(rng, prm, size):
    """Two twisted hexagonal layers in the variety of real moiré lattices.

    Layer sizes equal (a third of the pairs: only the lattices tell the layers apart) or
    different (layer A the larger), lattice constants from touching to well spaced and differing
    between the layers, twists 0-30 deg, partial second layers, vacancies, interstitials, a grain
    (twin) boundary, thermal displacements about the sites. Returns the particles and whether
    the layers are equal in size (their order is then arbitrary).
    """
    from temstream.sim.lattices import layer_sites

    p = prm["pixel_size_nm"]
    d_px = _log_uniform(rng, 6.0, 30.0)
    prm["diameter_nm"] = d_px * p
    prm["shapes"] = {"sphere": 1.0}
    equal = rng.random() < 1 / 3
    ratio = 1.0 if equal else rng.uniform(0.5, 0.88)
    a_px = d_px * rng.uniform(1.05, 1.8)
    a_b = a_px if rng.random() < 0.5 else max(a_px * rng.uniform(0.8, 1.25),
                                              1.05 * d_px * ratio)
    theta0 = rng.uniform(0, np.pi / 3)
    twist = np.deg2rad(rng.uniform(0, 2) if rng.random() < 0.1 else rng.uniform(0, 30))
    sigma_u = rng.uniform(0, 0.07)
    sets = []
    for layer, (d, a, th) in enumerate([(d_px, a_px, theta0), (d_px * ratio, a_b,
                                                               theta0 + twist)]):
        sites = layer_sites(
            (size, size), a, th, rng.uniform(0, a, 2), rng, margin=d,
            vacancy_fraction=rng.uniform(0, 0.1),
            interstitial_fraction=rng.uniform(0, 0.03) if rng.random() < 0.3 else 0.0,
            coverage=rng.uniform(0.3, 0.9) if layer == 1 and rng.random() < 0.3 else 1.0,
            misorientation=np.deg2rad(rng.uniform(8, 52)) if rng.random() < 0.2 else 0.0)
        n = len(sites)
        xy = sites.sites + rng.normal(0, sigma_u * a, (n, 2))
        ps = P.make_particles(n, rng, shapes={"sphere": 1.0}, diameter_nm=d * p,
                              polydispersity=prm["polydispersity"] * 0.5, material="Au",
                              pos_nm=np.c_[xy * p, np.zeros(n)], lambda_nm=prm["lambda_np_nm"],
                              layer=layer, first_pid=sum(len(s) for s in sets))
        ps.v0[:] = prm["v0_np"]
        sets.append(ps)
    prm["n_layers"] = 2
    prm["n_fast"] = prm["n_defocused"] = 0
    return sets[0].concat(sets[1]), equal


def boundary_mask(labels: np.ndarray) -> np.ndarray:
    """Pixels where two different instances meet (both sides, and 1-px gaps between them).

    Parameters
    ----------
    labels : (H, W) int
        Instance labels, 0 = background.

    Returns
    -------
    (H, W) bool: True where the 3x3 neighbourhood holds two different non-zero labels and the
    pixel is one of them or background.
    """
    big = np.iinfo(np.int32).max
    lab = labels.astype(np.int32, copy=False)
    hi = ndimage.maximum_filter(lab, size=3, mode="nearest")
    lo = ndimage.minimum_filter(np.where(lab > 0, lab, big), size=3, mode="nearest")
    return (lo < big) & (hi != lo)


def particle_target(labels: np.ndarray) -> np.ndarray:
    """Classes 0 background, 1 particle, 2 boundary between touching particles; uint8 (H, W)."""
    t = (labels > 0).astype(np.uint8)
    t[boundary_mask(labels)] = 2
    return t


def training_pairs(seed: int, *, size: int = 256, task: str = "particles",
                   bubbles: float = 0.15) -> Iterator[tuple]:
    """Endless iterator of domain-randomised training pairs.

    Parameters
    ----------
    seed : int
        Seeds the whole stream; the same seed gives the same pairs, bit for bit.
    size : int
        Side of the square images (px).
    task : {"particles", "bilayer"}
        ``particles``: target classes 0 background, 1 particle, 2 boundary (pixels where
        touching particles meet, see :func:`boundary_mask`). ``bilayer``: two stacked
        hexagonal layers (:func:`_bilayer_particles`); the target holds each layer's instance
        labels.
    bubbles : float
        Fraction of the images with a gas bubble (a bright disk with a dark rim; background).

    Yields
    ------
    image : (size, size) uint16
        Raw detector counts (offset, gain, noise included).
    target : (size, size) uint8 or (2, size, size) uint16
        ``particles``: class index per pixel; distractors are background. ``bilayer``: the
        instance labels of layer A (plane 0) and layer B (plane 1), 0 = background; particles
        of the two layers that overlap in projection are both in their planes.
    swappable : bool
        ``bilayer`` only (a third item): the layers are equal in size, so which one is called
        A is arbitrary (the loss takes the better of the two namings).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    while True:
        prm = random_physics(rng, size, bubbles=bubbles)
        if task == "particles":
            ps = _particles(rng, prm, size)
        else:
            ps, equal = _bilayer_particles(rng, prm, size)
        prm["stage_drift_nm_per_s"] = [0.0, 0.0]
        bg = Background(shape, prm, rng)
        dis = random_distractors(prm, shape, rng)
        out = render_scene(shape, prm, ps, bg, dis, rng)
        if task == "particles":
            yield out.image, particle_target(out.labels)
        else:
            yield out.image, out.layer_labels.astype(np.uint16), bool(equal)


#: scenarios the denoiser trains on (movies, so that it can learn what moves between frames)
DENOISE_SCENARIOS = ("dispersed", "assembly", "etching")
#: low-contrast materials mixed into the denoiser's training movies (beam-sensitive samples)
LOW_CONTRAST = ("SiO2", "organic")


def counts_to_dose(counts: float, params: dict) -> float:
    """The ``dose_e_per_A2`` at which the background of ``params`` gets ``counts`` detected
    counts above the offset per pixel and frame (counts / (transmission * gain) electrons)."""
    from temstream.sim.render import background_transmission

    electrons = counts / (background_transmission(params) * float(params["gain"]))
    return electrons / (10.0 * float(params["pixel_size_nm"])) ** 2


def denoise_windows(seed: int, *, size: int = 128, frames: int = 3, counts=(0.3, 25.0),
                    movie_frames: int = 8, integrating: float = 0.25) -> Iterator[tuple]:
    """Endless iterator of causal frame windows and the noise-free current frame.

    Each simulated movie (a random scenario of :data:`DENOISE_SCENARIOS`, a third of them
    with low-contrast particles of :data:`LOW_CONTRAST`, a dose drawn log-uniformly in
    ``counts``) gives one window per frame: frames ``t - frames + 1 .. t``, the first ones
    repeating frame 0 as a new series does in the pipeline.

    Parameters
    ----------
    seed : int
        Same seed, same windows.
    size : int
        Frame edge (px).
    frames : int
        Window length K.
    counts : (float, float)
        Range of the detected counts per background pixel and frame (above the offset).
    movie_frames : int
        Frames per simulated movie.
    integrating : float
        Fraction of movies from an integrating detector (offset 100, read noise 3 counts,
        MTF on the noise); the rest count electrons.

    Yields
    ------
    window : (frames, size, size) float32 counts, oldest first
    clean : (size, size) float32 expected counts of the last frame
    """
    from temstream.sim.movie import simulate
    from temstream.sim.scenarios import scenario_params

    rng = np.random.default_rng(seed)
    while True:
        scen = DENOISE_SCENARIOS[rng.integers(len(DENOISE_SCENARIOS))]
        over = {"material": str(rng.choice(LOW_CONTRAST))} if rng.random() < 1 / 3 else {}
        if rng.random() >= integrating:
            over.update(detector="counting", gain=1.0, offset=0.0, read_noise=0.0)
        prm = scenario_params(scen, **over)
        c = _log_uniform(rng, *counts)
        movie = simulate(prm, frames=movie_frames, size=size, seed=int(rng.integers(2**31)),
                         noise_free=True, dose_e_per_A2=counts_to_dose(c, prm))
        raw = movie.frames.astype(np.float32)
        for t in range(movie_frames):
            idx = [max(t - k, 0) for k in range(frames - 1, -1, -1)]
            yield raw[idx], movie.noise_free[t]
