"""An image renderer independent of ``temstream.sim``, for scoring detection on data the
networks were not trained on.

It shares no code and few choices with the simulator: thickness is rasterised analytically at
4x supersampling (spheres, cubes, hexagonal platelets, rods lying flat), contrast is plain
Beer-Lambert attenuation of a smooth liquid background, the blur is a Gaussian core plus an
exponential tail (a different point-spread function from the simulator's MTF), and the noise is
Poisson counts (a counting detector) or Poisson times a gain plus Gaussian read noise (an
integrating one). The truth of a particle is its projected extent: the pixels whose centre has
non-zero projected thickness.

    from independent import render, Particle
    frame, labels = render((256, 256), [Particle("sphere", 60, 80, 12)], dose=50, seed=1)

Used by ``benchmarks/score_detection.py``; nothing in the package imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SHAPES = ("sphere", "cube", "platelet", "rod")
SUPER = 4


@dataclass
class Particle:
    """One particle: ``shape``, centre (x, y) px, ``size`` px (sphere radius, cube half side,
    platelet circumradius, rod half width), ``angle`` rad, rod ``length`` px (centre to cap
    centre, along the angle), ``mfp`` mean free path in px of thickness (contrast)."""

    shape: str
    x: float
    y: float
    size: float
    angle: float = 0.0
    length: float = 0.0
    mfp: float = 60.0


def _thickness(p: Particle, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Projected thickness (px) of one particle on the supersampled grid."""
    c, s = np.cos(p.angle), np.sin(p.angle)
    u = (xx - p.x) * c + (yy - p.y) * s
    v = -(xx - p.x) * s + (yy - p.y) * c
    if p.shape == "sphere":
        return 2 * np.sqrt(np.clip(p.size ** 2 - u ** 2 - v ** 2, 0, None))
    if p.shape == "cube":
        inside = (np.abs(u) <= p.size) & (np.abs(v) <= p.size)
        return np.where(inside, 2.0 * p.size, 0.0)
    if p.shape == "platelet":  # a hexagon, 0.4 of its circumradius thick
        r = p.size
        inside = np.ones_like(u, bool)
        for k in range(6):
            a = k * np.pi / 3
            inside &= u * np.cos(a) + v * np.sin(a) <= r * np.cos(np.pi / 6)
        return np.where(inside, 0.8 * r, 0.0)
    if p.shape == "rod":  # a cylinder lying along u with hemispherical caps
        du = np.clip(np.abs(u) - p.length, 0, None)
        return 2 * np.sqrt(np.clip(p.size ** 2 - du ** 2 - v ** 2, 0, None))
    raise ValueError(f"unknown shape {p.shape!r}; choose from {SHAPES}")


def _psf(image: np.ndarray, sigma: float, tail: float) -> np.ndarray:
    """Gaussian core (``sigma`` px) plus a 15 % exponential tail of decay ``tail`` px."""
    core = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if tail <= 0:
        return core
    r = int(np.ceil(6 * tail))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    k = np.exp(-np.hypot(yy, xx) / tail)
    k = (k / k.sum()).astype(np.float32)
    wide = cv2.filter2D(image, -1, k, borderType=cv2.BORDER_REFLECT)
    return 0.85 * core + 0.15 * wide


def background(shape, rng, *, variation=0.1, corr_px=60.0) -> np.ndarray:
    """A smooth liquid-thickness transmission (about 1 +- ``variation``)."""
    noise = rng.normal(size=shape).astype(np.float32)
    field = cv2.GaussianBlur(noise, (0, 0), corr_px, borderType=cv2.BORDER_REFLECT)
    field /= field.std() + 1e-12
    return np.exp(-variation * field).astype(np.float32)


def render(shape, particles, *, dose: float, seed: int = 0, sigma: float = 1.0,
           tail: float = 3.0, detector: str = "counting", gain: float = 8.0,
           read_noise: float = 3.0, variation: float = 0.1, blobs: int = 0,
           noise_seed: int | None = None, return_expected: bool = False):
    """One frame and its truth.

    Parameters
    ----------
    shape : (H, W)
    particles : list of Particle
    dose : float
        Electrons per pixel through the background.
    seed : int
    sigma, tail : float
        Point-spread function: Gaussian core and exponential tail (px).
    detector : {"counting", "integrating"}
    gain, read_noise : float
        Integrating detector: counts per electron, Gaussian read noise (counts).
    variation : float
        Liquid-thickness variation of the background.
    blobs : int
        Diffuse contamination blobs (soft, 20-60 px, 3-8 % darker; not particles).
    noise_seed : int, optional
        Seeds the detector noise on its own (frames of one movie share ``seed``, hence the
        background, and differ in ``noise_seed``); default: the noise follows ``seed``.
    return_expected : bool
        Also return the noise-free frame (the mean counts), the truth of a denoiser.

    Returns
    -------
    frame : (H, W) uint16 (counting) or uint16 counts (integrating)
    labels : (H, W) int32, particle k + 1 where its projected thickness is non-zero
        at the pixel centre (later particles over earlier ones)
    expected : (H, W) float32, only with ``return_expected``: the frame's mean counts
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    off = (np.arange(SUPER) + 0.5) / SUPER - 0.5
    ys = (np.arange(h)[:, None] + off[None, :]).ravel()
    xs = (np.arange(w)[:, None] + off[None, :]).ravel()
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    tau = np.zeros(yy.shape, np.float32)
    labels = np.zeros(shape, np.int32)
    cy, cx = np.mgrid[:h, :w].astype(np.float64)
    for k, p in enumerate(particles):
        tau += (_thickness(p, xx, yy) / p.mfp).astype(np.float32)
        labels[_thickness(p, cx, cy) > 0] = k + 1
    trans = np.exp(-tau).reshape(h, SUPER, w, SUPER).mean(axis=(1, 3)).astype(np.float32)
    trans *= background(shape, rng, variation=variation)
    yyp, xxp = np.mgrid[:h, :w]
    for _ in range(blobs):
        by, bx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(20, 60)
        trans *= 1 - rng.uniform(0.03, 0.08) * np.exp(-((yyp - by) ** 2 + (xxp - bx) ** 2)
                                                       / (2 * r * r)).astype(np.float32)
    expected = _psf(trans * float(dose), sigma, tail)
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
    electrons = rng.poisson(np.clip(expected, 0, None)).astype(np.float64)
    if detector == "counting":
        frame = electrons
    else:
        frame = 100 + gain * electrons + rng.normal(0, read_noise, shape)
    frame = np.clip(np.round(frame), 0, 65535).astype(np.uint16)
    if return_expected:
        mean = expected if detector == "counting" else 100 + gain * expected
        return frame, labels, np.asarray(mean, np.float32)
    return frame, labels


def random_particles(rng, shape, n, shapes=SHAPES, size=(5.0, 14.0), mfp=(25.0, 120.0),
                     min_gap=2.0):
    """``n`` non-overlapping particles of random shape, size, angle and contrast."""
    h, w = shape
    out = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        kind = shapes[rng.integers(len(shapes))]
        r = rng.uniform(*size)
        length = rng.uniform(1.0, 2.5) * r if kind == "rod" else 0.0
        reach = r + length
        x, y = rng.uniform(reach + 2, w - reach - 2), rng.uniform(reach + 2, h - reach - 2)
        if any(np.hypot(x - q.x, y - q.y) < reach + q.size + q.length + min_gap for q in out):
            continue
        out.append(Particle(kind, x, y, r, rng.uniform(0, np.pi), length,
                            float(np.exp(rng.uniform(*np.log(mfp))))))
    return out
