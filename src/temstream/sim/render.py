"""Image formation: projected thickness -> exit wave -> CTF -> blur/MTF -> dose -> Poisson -> counts.

The physical model (docs/simulator.md):

* intensity transmission ``T = exp(-(t_NP/Lambda_NP + t_water/Lambda_water + 2 t_SiN/Lambda_SiN))``
  with the liquid displaced by the particles (``t_water = max(t_liquid - t_NP, 0)``);
* phase ``phi = sigma (V0_NP t_NP + V_water t_water) + amorphous window texture``;
* exit wave ``psi = sqrt(T) exp(i phi)`` propagated with ``exp(-i chi(k)) E_t E_s A`` (full
  wave, not the weak-phase approximation, so 5-150 nm gold is handled) -> ``I = |psi'|^2``;
* incoherent blur: inelastic (chromatic) blur of the fraction ``1 - exp(-t_liquid/Lambda_inel)``
  of electrons that lost energy in the liquid, and elastic beam broadening in the liquid;
* expected electrons ``N = dose [e/A^2] * (10 p [nm])^2 * illumination * I``;
* detector: ``counting`` (MTF on the signal, Poisson, counts = electrons) or ``integrating``
  (Poisson, MTF on signal and noise, gain, offset, Gaussian read noise), uint16 or uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from temstream.sim import _raster, optics
from temstream.sim.particles import ParticleSet, bboxes, kernel_geometry

#: mean inner potential of water (V)
V_WATER = 4.5


@dataclass
class Projection:
    """Projected particle quantities of one frame.

    Attributes
    ----------
    thick_nm : (H, W) float32, summed projected particle thickness (nm)
    tau : (H, W) float32, summed t/Lambda of the particles
    phase : (H, W) float32, summed sigma V0 t of the particles (rad)
    labels : (H, W) int32, instance labels (0 background), see :func:`project`
    layers : (L, H, W) bool, per-layer coverage
    layer_labels : (L, H, W) int32, per-layer instance labels (particles of different layers
        that overlap in projection are both kept, each in its own plane)
    """

    thick_nm: np.ndarray
    tau: np.ndarray
    phase: np.ndarray
    labels: np.ndarray
    layers: np.ndarray
    layer_labels: np.ndarray


def empty_projection(shape, n_layers: int = 1) -> Projection:
    """All-zero buffers for ``shape`` (H, W)."""
    return Projection(np.zeros(shape, np.float32), np.zeros(shape, np.float32),
                      np.zeros(shape, np.float32), np.zeros(shape, np.int32),
                      np.zeros((n_layers,) + tuple(shape), bool),
                      np.zeros((n_layers,) + tuple(shape), np.int32))


def project(ps: ParticleSet, proj: Projection, *, pixel_size_nm: float, voltage_kv: float,
            offset_px=(0.0, 0.0), supersample: int = 2, labelled: bool = True) -> Projection:
    """Rasterise a particle set into ``proj`` (in place) and return it.

    A pixel is covered by a particle when at least half of its ``supersample**2`` sub-samples
    hit it. Labels are ``pid + 1`` (stable along a track). Overlap rule: where particles overlap
    in projection, the pixel belongs to the particle with the largest projected thickness there
    (ties: the particle earlier in the set). ``labelled=False`` renders distractors: thickness,
    attenuation and phase only.
    """
    if len(ps) == 0:
        return proj
    g = kernel_geometry(ps, pixel_size_nm, offset_px)
    box = bboxes(g["center"], g["radius"], proj.labels.shape)
    sigma = optics.interaction_constant(voltage_kv)
    tau_px = pixel_size_nm / ps.lambda_nm
    phase_px = sigma * ps.v0 * pixel_size_nm
    label_id = (ps.pid + 1).astype(np.int32) if labelled else np.zeros(len(ps), np.int32)
    best = np.zeros(proj.labels.shape, np.float32)
    layer_best = np.zeros(proj.layer_labels.shape, np.float32)
    _raster.rasterize(g["kind"], g["center"], g["quad"], g["harm"], g["planes"], g["nplanes"],
                      g["capsule"], box, tau_px, phase_px, label_id,
                      np.asarray(ps.layer, np.int64), int(supersample), float(pixel_size_nm),
                      proj.thick_nm,
                      proj.tau, proj.phase, proj.labels, best, proj.layers,
                      proj.layer_labels, layer_best)
    return proj


@lru_cache(maxsize=16)
def _wave_tf(shape, p, kv, df, cs, fs, conv, obj):
    return optics.wave_transfer(shape, p, voltage_kv=kv, defocus_nm=df, cs_mm=cs,
                                focal_spread_nm=fs, convergence_mrad=conv,
                                objective_aperture_mrad=obj)


@lru_cache(maxsize=16)
def _incoherent_tf(shape, p, inel_frac, inel_sigma_nm, bb_sigma_nm, mtf_f0, mtf_floor,
                   with_mtf):
    k2 = optics.frequency_grid(shape, p, real=True)
    g_bb = np.exp(-2 * np.pi**2 * bb_sigma_nm**2 * k2)
    g_in = np.exp(-2 * np.pi**2 * inel_sigma_nm**2 * k2)
    tf = g_bb * ((1 - inel_frac) + inel_frac * g_in)
    if with_mtf:
        tf = tf * optics.detector_mtf(shape, f0=mtf_f0, floor=mtf_floor)
    return tf.astype(np.float32)


@lru_cache(maxsize=16)
def _mtf(shape, f0, floor):
    return optics.detector_mtf(shape, f0=f0, floor=floor)


def image_intensity(proj: Projection, liquid_nm: np.ndarray, params: dict, *,
                    texture: np.ndarray | None = None, extra_tau: np.ndarray | None = None,
                    extra_phase: np.ndarray | None = None,
                    intensity_factor: np.ndarray | None = None,
                    with_mtf: bool | None = None) -> np.ndarray:
    """Relative image intensity (1 = no specimen, no windows), before dose and detector.

    Parameters
    ----------
    proj : Projection
        Particles (``thick_nm`` must be in nm).
    liquid_nm : (H, W) array
        Local liquid thickness (nm) before displacement by particles.
    params : dict
        Physical parameters (see :data:`temstream.sim.scenarios.PHYSICS`).
    texture : (H, W) array, optional
        Amorphous-window phase (rad).
    extra_tau, extra_phase : (H, W) arrays, optional
        Distractors (contamination) not in the ground truth.
    intensity_factor : (H, W) array, optional
        Multiplies the intensity after propagation (motion-blurred distractors).
    with_mtf : bool, optional
        Apply the detector MTF here (default: for counting detectors, whose noise is white).

    Returns
    -------
    (H, W) float32, relative intensity.
    """
    shape = liquid_nm.shape
    p = float(params["pixel_size_nm"])
    kv = float(params["voltage_kv"])
    sigma = optics.interaction_constant(kv)
    t_water = np.maximum(liquid_nm - proj.thick_nm, 0.0)
    tau = proj.tau + t_water * (1.0 / params["lambda_water_nm"]) + \
        2.0 * params["window_nm"] / params["lambda_sin_nm"]
    phase = proj.phase + t_water * (sigma * V_WATER)
    if texture is not None:
        phase = phase + texture
    if extra_tau is not None:
        tau = tau + extra_tau
    if extra_phase is not None:
        phase = phase + extra_phase
    psi = np.exp((-0.5 * tau + 1j * phase).astype(np.complex64))
    tf = _wave_tf(shape, p, kv, float(params["defocus_nm"]), float(params["cs_mm"]),
                  float(params["focal_spread_nm"]), float(params["convergence_mrad"]),
                  float(params["objective_aperture_mrad"]))
    img = sfft.ifft2(sfft.fft2(psi, workers=1) * tf, workers=1)
    inten = (img.real * img.real + img.imag * img.imag).astype(np.float32)
    if intensity_factor is not None:
        inten *= intensity_factor
    if with_mtf is None:
        with_mtf = params["detector"] == "counting"
    t_mean = float(np.mean(liquid_nm))
    inel = 1.0 - np.exp(-t_mean / params["lambda_inel_water_nm"])
    bb = params["beam_broadening"] * optics.beam_broadening_nm(0.5 * t_mean, kv) / 3.3
    if inel > 0 or bb > 0 or with_mtf:
        tf2 = _incoherent_tf(shape, p, round(inel, 4), float(params["inelastic_blur_nm"]),
                             round(bb, 3), float(params["mtf_f0"]), float(params["mtf_floor"]),
                             bool(with_mtf))
        inten = sfft.irfft2(sfft.rfft2(inten, workers=1) * tf2, s=shape, workers=1)
    return inten.astype(np.float32, copy=False)


def electrons_per_pixel(params: dict) -> float:
    """Incident electrons per pixel and frame: dose [e/A^2] * (10 p [nm])^2."""
    return float(params["dose_e_per_A2"]) * (10.0 * float(params["pixel_size_nm"])) ** 2


def background_transmission(params: dict) -> float:
    """Flat-field transmission exp(-(t_liquid/Lambda_water + 2 t_SiN/Lambda_SiN))."""
    return float(np.exp(-(params["liquid_nm"] / params["lambda_water_nm"]
                          + 2 * params["window_nm"] / params["lambda_sin_nm"])))


def expected_counts(expected: np.ndarray, params: dict) -> np.ndarray:
    """The noise-free frame: the detector's mean counts for ``expected`` electrons.

    What :func:`detect` returns on average, before shot and read noise, rounding and
    clipping: the truth a denoiser is scored against (``noise=False`` rounds to integer
    counts, which at 0.5 counts/px would be most of the signal).

    Parameters
    ----------
    expected : (H, W) float array
        Expected electrons per pixel (as given to :func:`detect`).
    params : dict
        ``detector``, ``gain``, ``offset``, ``mtf_f0``, ``mtf_floor``.

    Returns
    -------
    (H, W) float32 expected counts.
    """
    e = np.maximum(expected, 0.0).astype(np.float32)
    if params["detector"] == "integrating":  # the MTF acts on the mean as on every frame
        mtf = _mtf(e.shape, float(params["mtf_f0"]), float(params["mtf_floor"]))
        e = sfft.irfft2(sfft.rfft2(e, workers=1) * mtf, s=e.shape, workers=1)
    return (e * float(params["gain"]) + float(params["offset"])).astype(np.float32)


def detect(expected: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Shot noise and detector response.

    Parameters
    ----------
    expected : (H, W) float array
        Expected electrons per pixel (already MTF-filtered for counting detectors).
    params : dict
        ``detector`` ("counting" or "integrating"), ``gain`` (counts/e), ``offset`` (counts),
        ``read_noise`` (counts rms, integrating detectors only), ``mtf_f0``/``mtf_floor``, ``bit_depth`` (16 or 8),
        ``noise`` (False: return the rounded expectation, no Poisson/read noise).

    Returns
    -------
    (H, W) uint16 (or uint8 when ``bit_depth`` is 8) counts.
    """
    noise = params.get("noise", True)
    lam = np.maximum(expected, 0.0)
    e = rng.poisson(lam).astype(np.float32) if noise else lam.astype(np.float32)
    if params["detector"] == "integrating":
        mtf = _mtf(e.shape, float(params["mtf_f0"]), float(params["mtf_floor"]))
        e = sfft.irfft2(sfft.rfft2(e, workers=1) * mtf, s=e.shape, workers=1)
    elif params["detector"] != "counting":
        raise ValueError(f"detector must be 'counting' or 'integrating', not "
                         f"{params['detector']!r}")
    counts = e * float(params["gain"]) + float(params["offset"])
    if noise and params["read_noise"] > 0 and params["detector"] == "integrating":
        counts += rng.normal(0.0, float(params["read_noise"]), size=e.shape).astype(np.float32)
    top = 255 if int(params["bit_depth"]) == 8 else 65535
    return np.clip(np.rint(counts), 0, top).astype(np.uint8 if top == 255 else np.uint16)
