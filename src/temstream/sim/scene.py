"""One frame from a scene: particles + background + distractors -> counts and ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from temstream.sim import background as B
from temstream.sim import particles as P
from temstream.sim.render import (Projection, detect, electrons_per_pixel, empty_projection,
                                  image_intensity, project)


@dataclass
class Distractors:
    """Things in the image that are NOT in the ground truth.

    Attributes
    ----------
    bubbles : (m, 4) float, (x_nm, y_nm, radius_nm, depth)
    contamination : (m, 4) float, (x_nm, y_nm, sigma_nm, tau_peak)
    blurred : ParticleSet, fast or out-of-focus particles
    blur_px : (len(blurred),) float, rms random-walk blur length of each
    """

    bubbles: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    contamination: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    blurred: P.ParticleSet = field(default_factory=P.ParticleSet)
    blur_px: np.ndarray = field(default_factory=lambda: np.zeros(0))


def random_distractors(params: dict, shape, rng: np.random.Generator) -> Distractors:
    """Draw bubbles, contamination blobs, fast and out-of-focus particles for a field."""
    h, w = shape
    p = params["pixel_size_nm"]
    fw, fh = w * p, h * p
    nb = int(params["n_bubbles"])
    bubbles = np.stack([rng.uniform(0, fw, nb), rng.uniform(0, fh, nb),
                        rng.uniform(0.05, 0.25, nb) * min(fw, fh),
                        rng.uniform(0.3, 0.9, nb)], -1)
    nc = int(params["n_contamination"])
    cont = np.stack([rng.uniform(0, fw, nc), rng.uniform(0, fh, nc),
                     rng.uniform(0.02, 0.12, nc) * min(fw, fh), rng.uniform(0.03, 0.25, nc)], -1)
    nf, nd = int(params["n_fast"]), int(params["n_defocused"])
    n = nf + nd
    ps = P.make_particles(
        n, rng, shapes=params["shapes"], diameter_nm=params["diameter_nm"],
        polydispersity=params["polydispersity"], material=params["material"],
        pos_nm=np.stack([rng.uniform(0, fw, n), rng.uniform(0, fh, n), np.zeros(n)], -1),
        orientation="random")
    d_px = params["diameter_nm"] / p
    blur = np.concatenate([rng.uniform(1.5, 4.0, nf) * d_px, rng.uniform(0.4, 1.0, nd) * d_px])
    return Distractors(bubbles, cont, ps, blur)


def motion_blur(image: np.ndarray, move_px) -> np.ndarray:
    """``image`` averaged along a straight move of ``(dx, dy)`` px during the exposure (a line
    kernel, anti-aliased, ending where the field arrives)."""
    dx, dy = (float(v) for v in move_px)
    n = int(np.ceil(np.hypot(dx, dy))) + 1
    r = int(np.ceil(max(abs(dx), abs(dy)) / 2)) + 1
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    for t in np.linspace(-0.5, 0.5, 4 * n):
        x, y = r + t * dx, r + t * dy
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for ix, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            for iy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
                if 0 <= ix < kernel.shape[1] and 0 <= iy < kernel.shape[0]:
                    kernel[iy, ix] += wx * wy
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


@dataclass
class Rendered:
    """A rendered frame: counts, instance labels, per-layer masks and instance labels, truth
    inputs."""

    image: np.ndarray
    labels: np.ndarray
    layers: np.ndarray
    expected: np.ndarray
    layer_labels: np.ndarray | None = None


def render_scene(shape, params: dict, ps: P.ParticleSet, bg: B.Background,
                 distractors: Distractors, rng: np.random.Generator, *, t_s: float = 0.0,
                 offset_px=(0.0, 0.0)) -> Rendered:
    """Render one frame.

    Parameters
    ----------
    shape : (H, W)
    params : dict
        Full scenario parameters.
    ps : ParticleSet
        Ground-truth particles (positions in field nm).
    bg : Background
    distractors : Distractors
    rng : numpy Generator
        Used for the noise (and random blur paths).
    t_s : float
        Time since the start of the movie (s).
    offset_px : (dx, dy)
        Stage drift of the field relative to the detector, px.

    Returns
    -------
    Rendered
    """
    p = params["pixel_size_nm"]
    kv = params["voltage_kv"]
    ss = int(params["supersample"])
    proj: Projection = empty_projection(shape, int(params["n_layers"]))
    # distractors first: equal thickness ties go to the earlier particle, but distractors are
    # never labelled, so their order does not matter for the truth
    project(ps, proj, pixel_size_nm=p, voltage_kv=kv, offset_px=offset_px, supersample=ss)
    liquid = bg.liquid(t_s, offset_px)
    if len(distractors.bubbles):
        B.apply_bubbles(liquid, distractors.bubbles, p, offset_px)
    extra_tau = extra_phase = None
    if len(distractors.contamination):
        extra_tau, extra_phase = B.contamination(shape, distractors.contamination, p, offset_px)
    mottle = bg.mottle_at(offset_px)
    if mottle is not None:
        extra_tau = mottle if extra_tau is None else extra_tau + mottle
    factor = B.blurred_particles_factor(shape, distractors.blurred, params, rng,
                                        distractors.blur_px, offset_px)
    inten = image_intensity(proj, liquid, params, texture=bg.texture_at(offset_px),
                            extra_tau=extra_tau, extra_phase=extra_phase,
                            intensity_factor=factor)
    blur = float(params.get("exposure_blur_px", 0.0))
    if blur > 0:
        inten = cv2.GaussianBlur(inten, (0, 0), blur, borderType=cv2.BORDER_REFLECT)
    motion = params.get("motion_blur_px")
    if motion is not None and np.hypot(*motion) >= 1.0:
        inten = motion_blur(inten, motion)
    expected = inten * bg.illumination(t_s) * np.float32(electrons_per_pixel(params))
    image = detect(expected, params, rng)
    return Rendered(image, proj.labels, proj.layers, expected, proj.layer_labels)
