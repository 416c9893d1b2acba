"""Training augmentation on raw frames (numpy/OpenCV): rotation, mirror, defocus, contrast, dose."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def noise_sigma(x: np.ndarray) -> float:
    """Robust estimate of the pixel noise (counts) from horizontal neighbour differences."""
    d = np.abs(np.diff(x[::2], axis=1))
    return float(np.median(d) / 0.954) + 1e-6


def augment(image: np.ndarray, target: np.ndarray, rng: np.random.Generator, *, crop: int,
            p_rotate: float = 0.5, p_defocus: float = 0.3, p_contrast: float = 0.3,
            p_dose: float = 0.5, max_extra_noise: float = 1.5):
    """Randomly transform one training pair and crop it.

    Parameters
    ----------
    image : ndarray, shape (S, S)
        Raw counts.
    target : ndarray, shape (S, S) or (K, S, S), integer
        Class index per pixel, or K planes of instance labels (moved with the image, nearest
        neighbour; dtype kept).
    rng : numpy.random.Generator
    crop : int
        Output edge (px), at most ``S``; with an arbitrary rotation the crop is taken from the
        centre so that reflected borders stay outside (``crop <= S / sqrt(2)`` avoids them fully).
    p_rotate : float
        Probability of a rotation by an angle uniform in [0, 360) deg (bilinear for the image,
        nearest for the target); otherwise a rotation by a multiple of 90 deg (exact).
    p_defocus : float
        Probability of a defocus-like change: Gaussian blur (sigma 0.3-1.5 px) or a Fresnel-like
        edge overshoot (unsharp mask of amplitude +-0.6).
    p_contrast : float
        Probability of a contrast change: gamma 0.6-1.6 on the percentile range and a smooth
        illumination gradient (up to 20 %).
    p_dose : float
        Probability of a dose reduction: added Gaussian noise of up to ``max_extra_noise`` times
        the frame's own noise (SNR down by up to 1.8x).

    Returns
    -------
    image : ndarray, shape (crop, crop), float32
    target : ndarray, shape (crop, crop) uint8, or (K, crop, crop) of the target's dtype
    """
    x = image.astype(np.float32)
    planes = target.ndim == 3
    t = np.ascontiguousarray(np.moveaxis(target, 0, -1)) if planes else target
    s = x.shape[0]
    if rng.random() < p_rotate:
        angle = rng.uniform(0, 360)
        m = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), angle, 1.0)
        x = cv2.warpAffine(x, m, (s, s), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT_101)
        t = cv2.warpAffine(t, m, (s, s), flags=cv2.INTER_NEAREST,
                           borderMode=cv2.BORDER_REFLECT_101)
        o = (s - crop) // 2
        oy, ox = o, o
    else:
        k = int(rng.integers(4))
        x, t = np.rot90(x, k), np.rot90(t, k)
        oy, ox = rng.integers(0, s - crop + 1, 2)
    if rng.random() < 0.5:
        x, t = x[:, ::-1], t[:, ::-1]
    x = np.ascontiguousarray(x[oy:oy + crop, ox:ox + crop])
    t = np.ascontiguousarray(t[oy:oy + crop, ox:ox + crop])
    if planes:
        t = np.ascontiguousarray(np.moveaxis(t.reshape(crop, crop, -1), -1, 0))
    sigma_n = noise_sigma(x)
    if rng.random() < p_defocus:
        if rng.random() < 0.5:
            x = ndimage.gaussian_filter(x, rng.uniform(0.3, 1.5))
        else:
            blur = ndimage.gaussian_filter(x, rng.uniform(1.0, 3.0))
            x = x + rng.uniform(-0.6, 0.6) * (x - blur)
    if rng.random() < p_contrast:
        lo, hi = np.percentile(x, [0.5, 99.5])
        span = max(hi - lo, 1e-3)
        u = np.clip((x - lo) / span, 0, 1) ** rng.uniform(0.6, 1.6)
        yy, xx = np.mgrid[:crop, :crop] / crop - 0.5
        a = rng.uniform(-0.2, 0.2, 2)
        x = (lo + span * u) * (1 + a[0] * yy + a[1] * xx)
    if rng.random() < p_dose:
        x = x + rng.normal(0, rng.uniform(0, max_extra_noise) * sigma_n, x.shape)
    return x.astype(np.float32), (t if planes else t.astype(np.uint8))
