"""Liquid-cell background: liquid thickness, window bulge, illumination, amorphous texture,
and distractors that are not in the ground truth (bubbles, contamination, fast particles).

Smooth fields are drawn once per movie on a coarse grid that covers the field plus a margin for
stage drift, and resampled per frame with an affine warp (sub-pixel drift at O(H W) cost).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from temstream.sim import particles as P
from temstream.sim.render import Projection, empty_projection, project


def _smooth_field(shape, rng, sigma):
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return f / max(f.std(), 1e-12)


class Background:
    """Slowly varying liquid-cell background of a movie.

    Parameters
    ----------
    shape : (H, W)
        Frame shape (px).
    params : dict
        ``pixel_size_nm``, ``liquid_nm``, ``liquid_variation`` (relative rms), ``liquid_corr_nm``,
        ``liquid_period_s``, ``bulge`` (relative thickness change across the field),
        ``illumination_gradient`` (relative), ``intensity_drift`` (relative amplitude),
        ``intensity_period_s``, ``texture_rad`` (rms phase of the amorphous windows),
        ``texture_corr_px``, ``mottle_tau`` (rms attenuation of the mass-thickness mottle of
        the amorphous support and ice; 0 = none), ``mottle_corr_px``, ``margin_px``.
    rng : numpy Generator
    """

    def __init__(self, shape, params: dict, rng: np.random.Generator):
        self.shape = tuple(shape)
        self.p = params
        h, w = self.shape
        self.margin = int(params.get("margin_px", 0))
        p = params["pixel_size_nm"]
        corr_px = max(params["liquid_corr_nm"] / p, 4.0)
        self.step = max(corr_px / 2.0, 2.0)  # coarse grid spacing, px
        ch = int(np.ceil((h + 2 * self.margin) / self.step)) + 4
        cw = int(np.ceil((w + 2 * self.margin) / self.step)) + 4
        self.f1 = _smooth_field((ch, cw), rng, 1.5).astype(np.float32)
        self.f2 = _smooth_field((ch, cw), rng, 1.5).astype(np.float32)
        # bulge and illumination: quadratic/linear profiles on the coarse grid
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        yy = (yy * self.step - self.margin) / max(h, w) - 0.5
        xx = (xx * self.step - self.margin) / max(h, w) - 0.5
        a = rng.uniform(0, 2 * np.pi)
        c = rng.uniform(-0.4, 0.4, 2)
        self.bulge = (1.0 - ((xx - c[0] - 0.6 * np.cos(a)) ** 2
                             + (yy - c[1] - 0.6 * np.sin(a)) ** 2)).astype(np.float32)
        self.bulge -= self.bulge.mean()
        self.bulge /= max(np.ptp(self.bulge), 1e-6)
        b = rng.uniform(0, 2 * np.pi)
        cx, cy = rng.uniform(-0.8, 0.8, 2)
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        self.illum = np.exp(-r2 / 2.0).astype(np.float32)
        self.illum /= self.illum.mean()
        self.illum = 1 + params["illumination_gradient"] * (self.illum - 1) / max(
            np.ptp(self.illum), 1e-6)
        self.phase0 = rng.uniform(0, 2 * np.pi)
        self.phase_i = b
        tex = params["texture_rad"]
        if tex > 0:
            t = ndimage.gaussian_filter(
                rng.normal(size=(h + 2 * self.margin, w + 2 * self.margin)).astype(np.float32),
                params["texture_corr_px"], mode="wrap")
            self.texture = (t * (tex / max(float(t.std()), 1e-12))).astype(np.float32)
        else:
            self.texture = None
        mottle = float(params.get("mottle_tau", 0.0))
        if mottle > 0:
            m = _smooth_field((h + 2 * self.margin, w + 2 * self.margin), rng,
                              float(params["mottle_corr_px"]))
            self.mottle = (m * mottle).astype(np.float32)
        else:
            self.mottle = None

    def _warp(self, coarse, offset_px):
        h, w = self.shape
        s = self.step
        m = np.float32([[1 / s, 0, (self.margin - offset_px[0]) / s + 0.0],
                        [0, 1 / s, (self.margin - offset_px[1]) / s + 0.0]])
        return cv2.warpAffine(coarse, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REFLECT)

    def liquid(self, t_s: float, offset_px=(0.0, 0.0)) -> np.ndarray:
        """Liquid thickness (nm), shape (H, W) float32, at time ``t_s`` and stage offset."""
        p = self.p
        om = 2 * np.pi * t_s / p["liquid_period_s"] + self.phase0
        coarse = (np.cos(om) * self.f1 + np.sin(om) * self.f2) * p["liquid_variation"] \
            + p["bulge"] * self.bulge
        if not coarse.any():
            return np.full(self.shape, p["liquid_nm"], np.float32)
        rel = self._warp(coarse.astype(np.float32), offset_px)
        return (p["liquid_nm"] * np.maximum(1.0 + rel, 0.05)).astype(np.float32)

    def illumination(self, t_s: float) -> np.ndarray | float:
        """Relative illumination: beam profile times beam-induced intensity drift."""
        p = self.p
        drift = 1.0 + p["intensity_drift"] * np.sin(2 * np.pi * t_s / p["intensity_period_s"]
                                                    + self.phase_i)
        if p["illumination_gradient"] == 0:
            return float(drift)
        return self._warp(self.illum.astype(np.float32), (0.0, 0.0)) * np.float32(drift)

    def texture_at(self, offset_px=(0.0, 0.0)) -> np.ndarray | None:
        """Amorphous-window phase (rad) shifted by the stage offset (whole pixels), or None."""
        return self._field_at(self.texture, offset_px)

    def mottle_at(self, offset_px=(0.0, 0.0)) -> np.ndarray | None:
        """Mass-thickness mottle (attenuation, dimensionless) shifted by the stage offset, or
        None."""
        return self._field_at(self.mottle, offset_px)

    def _field_at(self, field, offset_px):
        if field is None:
            return None
        h, w = self.shape
        m = self.margin
        ox = int(np.clip(np.rint(offset_px[0]), -m, m))
        oy = int(np.clip(np.rint(offset_px[1]), -m, m))
        return field[m - oy:m - oy + h, m - ox:m - ox + w]


# ------------------------------------------------------------------ distractors

def apply_bubbles(liquid: np.ndarray, bubbles: np.ndarray, pixel_size_nm: float,
                  offset_px=(0.0, 0.0)) -> None:
    """Thin the liquid inside gas bubbles (in place).

    Parameters
    ----------
    liquid : (H, W) float32, liquid thickness (nm)
    bubbles : (m, 4) array of (x_nm, y_nm, radius_nm, depth) with depth in [0, 1] the fraction
        of liquid displaced at the centre.
    """
    h, w = liquid.shape
    for x, y, r, depth in bubbles:
        cx, cy, rp = x / pixel_size_nm + offset_px[0], y / pixel_size_nm + offset_px[1], \
            r / pixel_size_nm
        edge = max(1.0, 0.08 * rp)
        r0, r1 = int(max(cy - rp - 3 * edge, 0)), int(min(cy + rp + 3 * edge + 1, h))
        c0, c1 = int(max(cx - rp - 3 * edge, 0)), int(min(cx + rp + 3 * edge + 1, w))
        if r1 <= r0 or c1 <= c0:
            continue
        yy, xx = np.ogrid[r0:r1, c0:c1]
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        prof = 1.0 / (1.0 + np.exp((d - rp) / (0.3 * edge)))
        # a gas bubble is a lens-shaped void: deepest in the middle
        prof = prof * np.sqrt(np.clip(1 - (d / max(rp, 1)) ** 2, 0.05, 1))
        liquid[r0:r1, c0:c1] *= (1.0 - depth * prof).astype(np.float32)


def contamination(shape, blobs: np.ndarray, pixel_size_nm: float, offset_px=(0.0, 0.0)):
    """Attenuation and phase of diffuse carbonaceous contamination blobs.

    Parameters
    ----------
    blobs : (m, 4) array of (x_nm, y_nm, sigma_nm, tau_peak)

    Returns
    -------
    tau, phase : (H, W) float32 (phase = 3 rad per unit tau, amorphous carbon-like)
    """
    h, w = shape
    tau = np.zeros(shape, np.float32)
    for x, y, s, amp in blobs:
        cx, cy, sp = x / pixel_size_nm + offset_px[0], y / pixel_size_nm + offset_px[1], \
            max(s / pixel_size_nm, 1.0)
        r0, r1 = int(max(cy - 3 * sp, 0)), int(min(cy + 3 * sp + 1, h))
        c0, c1 = int(max(cx - 3 * sp, 0)), int(min(cx + 3 * sp + 1, w))
        if r1 <= r0 or c1 <= c0:
            continue
        yy, xx = np.ogrid[r0:r1, c0:c1]
        tau[r0:r1, c0:c1] += (amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2)
                                           / (2 * sp * sp))).astype(np.float32)
    return tau, tau * np.float32(3.0)


def random_walk_kernel(rng: np.random.Generator, length_px: float, steps: int = 24):
    """Normalised motion-blur kernel of a random-walk path with rms length ``length_px``."""
    path = np.cumsum(rng.normal(size=(steps, 2)), axis=0)
    path -= path.mean(axis=0)
    path *= length_px / max(np.sqrt((path**2).sum(axis=1).mean()), 1e-9)
    half = int(np.ceil(np.abs(path).max())) + 1
    k = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    idx = np.rint(path + half).astype(int)
    np.add.at(k, (idx[:, 1], idx[:, 0]), 1.0)
    k = cv2.GaussianBlur(k, (0, 0), 0.7)
    return k / k.sum()


def blurred_particles_factor(shape, ps: P.ParticleSet, params: dict, rng: np.random.Generator,
                             blur_px: np.ndarray, offset_px=(0.0, 0.0)) -> np.ndarray | None:
    """Intensity factor of fast (motion-blurred) or out-of-focus particles, not in the truth.

    Each particle's transmission is rendered in its own region, blurred with a random-walk
    kernel of rms length ``blur_px[i]`` (time average of the intensity over the exposure) and
    multiplied into the frame.

    Returns
    -------
    (H, W) float32 factor (1 = no effect), or None when ``ps`` is empty.
    """
    if len(ps) == 0:
        return None
    h, w = shape
    p = params["pixel_size_nm"]
    out = np.ones(shape, np.float32)
    rad = ps.radius_nm() / p
    for i in range(len(ps)):
        # blurred content has no fine detail: render and blur on a grid coarser by ``f``
        f = max(1, int(blur_px[i] // 6))
        k = random_walk_kernel(rng, float(blur_px[i]) / f)
        half_c = int(rad[i] / f + k.shape[0] // 2 + 3)
        n_c = 2 * half_c + 1
        n = n_c * f
        cx = ps.pos_nm[i, 0] / p + offset_px[0]
        cy = ps.pos_nm[i, 1] / p + offset_px[1]
        x0, y0 = int(np.floor(cx)) - n // 2, int(np.floor(cy)) - n // 2
        if x0 >= w or y0 >= h or x0 + n <= 0 or y0 + n <= 0:
            continue
        roi = empty_projection((n_c, n_c))
        # coarse pixel (a, b) covers fine pixels [a f, (a+1) f): centre at fine (a f + (f-1)/2)
        shift = ((cx - x0 - (f - 1) / 2) / f - ps.pos_nm[i, 0] / (p * f),
                 (cy - y0 - (f - 1) / 2) / f - ps.pos_nm[i, 1] / (p * f))
        project(ps.take([i]), roi, pixel_size_nm=p * f, voltage_kv=params["voltage_kv"],
                offset_px=shift, supersample=2, labelled=False)
        water = roi.thick_nm / params["lambda_water_nm"]
        fc = 1.0 - cv2.filter2D(1.0 - np.exp(-(roi.tau - water)), -1, k,
                                borderType=cv2.BORDER_CONSTANT)
        fr = fc if f == 1 else cv2.resize(fc, (n, n), interpolation=cv2.INTER_LINEAR)
        r0, c0 = max(y0, 0), max(x0, 0)
        r1, c1 = min(y0 + n, h), min(x0 + n, w)
        out[r0:r1, c0:c1] *= fr[r0 - y0:r1 - y0, c0 - x0:c1 - x0]
    return out
