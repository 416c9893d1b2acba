"""Electron optics: wavelength, interaction constant, CTF with partial-coherence envelopes, MTF.

All functions are pure numpy. Spatial frequencies are in 1/nm, lengths in nm unless a name says
otherwise. Sign convention: defocus ``df < 0`` is underfocus (docs/simulator.md).
"""

from __future__ import annotations

import numpy as np

#: physical constants (SI)
_H = 6.62607015e-34
_M0 = 9.1093837015e-31
_E = 1.602176634e-19
_C = 299792458.0


def wavelength_nm(voltage_kv: float) -> float:
    """Relativistic electron wavelength.

    Parameters
    ----------
    voltage_kv : float
        Accelerating voltage in kV.

    Returns
    -------
    float
        Wavelength in nm (0.002508 nm at 200 kV, 0.001969 nm at 300 kV).
    """
    v = voltage_kv * 1e3
    lam = _H / np.sqrt(2 * _M0 * _E * v * (1 + _E * v / (2 * _M0 * _C**2)))
    return float(lam * 1e9)


def interaction_constant(voltage_kv: float) -> float:
    """Interaction constant sigma = 2 pi m e lambda / h^2 (relativistic mass).

    Returns
    -------
    float
        sigma in rad / (V nm) (7.29e-3 at 200 kV, i.e. 7.29e-4 rad/(V Angstrom)).
    """
    v = voltage_kv * 1e3
    lam = wavelength_nm(voltage_kv) * 1e-9
    m = _M0 * (1 + _E * v / (_M0 * _C**2))
    return float(2 * np.pi * m * _E * lam / _H**2 * 1e-9)


def frequency_grid(shape: tuple[int, int], pixel_size_nm: float, real: bool = False):
    """Squared spatial frequency |k|^2 on the FFT grid of an image.

    Parameters
    ----------
    shape : (H, W)
        Image shape in pixels.
    pixel_size_nm : float
        Pixel size in nm.
    real : bool
        If True, the grid of ``rfft2`` (H, W//2+1); else of ``fft2`` (H, W).

    Returns
    -------
    k2 : ndarray, shape (H, W) or (H, W//2+1), float64
        |k|^2 in 1/nm^2.
    """
    h, w = shape
    ky = np.fft.fftfreq(h, d=pixel_size_nm)
    kx = np.fft.rfftfreq(w, d=pixel_size_nm) if real else np.fft.fftfreq(w, d=pixel_size_nm)
    return ky[:, None] ** 2 + kx[None, :] ** 2


def aberration_phase(k2, *, voltage_kv: float, defocus_nm: float, cs_mm: float):
    """Wave aberration chi(k) = pi lambda df k^2 + pi/2 Cs lambda^3 k^4 (radians).

    Parameters
    ----------
    k2 : ndarray
        |k|^2 in 1/nm^2.
    voltage_kv, defocus_nm, cs_mm : float
        Voltage (kV), defocus (nm, < 0 underfocus), spherical aberration (mm).
    """
    lam = wavelength_nm(voltage_kv)
    cs = cs_mm * 1e6
    return np.pi * lam * defocus_nm * k2 + 0.5 * np.pi * cs * lam**3 * k2 * k2


def envelopes(k2, *, voltage_kv: float, defocus_nm: float, cs_mm: float,
              focal_spread_nm: float, convergence_mrad: float,
              objective_aperture_mrad: float = 0.0):
    """Product of the temporal and spatial coherence envelopes and the objective aperture.

    E_t = exp(-1/2 (pi lambda Delta)^2 k^4), E_s = exp(-(pi alpha/lambda)^2 (Cs lambda^3 k^3 +
    df lambda k)^2), A = 1 for lambda k < alpha_obj (no aperture when ``objective_aperture_mrad``
    is 0).

    Returns
    -------
    ndarray, same shape as ``k2``, values in [0, 1].
    """
    lam = wavelength_nm(voltage_kv)
    cs = cs_mm * 1e6
    alpha = convergence_mrad * 1e-3
    k = np.sqrt(k2)
    e_t = np.exp(-0.5 * (np.pi * lam * focal_spread_nm) ** 2 * k2 * k2)
    e_s = np.exp(-((np.pi * alpha / lam) ** 2) * (cs * lam**3 * k2 * k + defocus_nm * lam * k) ** 2)
    env = e_t * e_s
    if objective_aperture_mrad > 0:
        env = env * (lam * k < objective_aperture_mrad * 1e-3)
    return env


def ctf(k2, *, voltage_kv: float = 200.0, defocus_nm: float = -1000.0, cs_mm: float = 1.2,
        amplitude_fraction: float = 0.07, focal_spread_nm: float = 0.0,
        convergence_mrad: float = 0.0, objective_aperture_mrad: float = 0.0):
    """Phase-contrast transfer function of the weak-phase approximation.

    CTF(k) = -[sqrt(1-W^2) sin chi + W cos chi] E_t E_s A. Used for documentation and tests; the
    renderer propagates the full exit wave with :func:`wave_transfer` instead.

    Returns
    -------
    ndarray, same shape as ``k2``.
    """
    chi = aberration_phase(k2, voltage_kv=voltage_kv, defocus_nm=defocus_nm, cs_mm=cs_mm)
    w = amplitude_fraction
    env = envelopes(k2, voltage_kv=voltage_kv, defocus_nm=defocus_nm, cs_mm=cs_mm,
                    focal_spread_nm=focal_spread_nm, convergence_mrad=convergence_mrad,
                    objective_aperture_mrad=objective_aperture_mrad)
    return -(np.sqrt(1 - w * w) * np.sin(chi) + w * np.cos(chi)) * env


def first_ctf_zero(*, voltage_kv: float, defocus_nm: float, cs_mm: float) -> float:
    """Spatial frequency (1/nm) of the first zero of the pure-phase CTF (W = 0).

    Solves |chi(k)| = pi for the smallest k > 0 (chi = 0 at k = 0 gives the trivial zero).
    With Cs = 0 this is k = 1/sqrt(lambda |df|).
    """
    lam = wavelength_nm(voltage_kv)
    cs = cs_mm * 1e6
    # chi(q) with q = k^2: a q^2 + b q; solve chi = -pi (underfocus) or +pi (overfocus)
    a = 0.5 * np.pi * cs * lam**3
    b = np.pi * lam * defocus_nm
    roots = []
    for target in (np.pi, -np.pi):
        if a == 0:
            q = [target / b] if b != 0 else []
        else:
            disc = b * b + 4 * a * target
            q = [] if disc < 0 else [(-b + s * np.sqrt(disc)) / (2 * a) for s in (1, -1)]
        roots += [x for x in q if x > 0]
    if not roots:
        raise ValueError("the CTF has no zero for these parameters; pass a non-zero defocus")
    return float(np.sqrt(min(roots)))


def wave_transfer(shape, pixel_size_nm: float, *, voltage_kv: float, defocus_nm: float,
                  cs_mm: float, focal_spread_nm: float, convergence_mrad: float,
                  objective_aperture_mrad: float = 0.0):
    """Transfer function applied to the exit wave in Fourier space: exp(-i chi) E_t E_s A.

    Returns
    -------
    ndarray, shape (H, W), complex64
        Multiply ``fft2(psi)`` by it and inverse-transform to get the image wave.
    """
    k2 = frequency_grid(shape, pixel_size_nm)
    kw = dict(voltage_kv=voltage_kv, defocus_nm=defocus_nm, cs_mm=cs_mm)
    chi = aberration_phase(k2, **kw)
    env = envelopes(k2, **kw, focal_spread_nm=focal_spread_nm,
                    convergence_mrad=convergence_mrad,
                    objective_aperture_mrad=objective_aperture_mrad)
    return (np.exp(-1j * chi) * env).astype(np.complex64)


def detector_mtf(shape, *, f0: float = 0.25, floor: float = 0.2, real: bool = True):
    """Detector modulation transfer function on the (r)FFT grid of a frame.

    Model: MTF(f) = [(1 - floor) / (1 + (f/f0)^2) + floor] * sinc(fx) sinc(fy), with f in cycles
    per pixel (Nyquist = 0.5): a Lorentzian scintillator spread plus pixel integration, the shape
    of measured MTFs of scintillator-coupled cameras (f0 about 0.1-0.3). ``f0 = inf`` leaves only
    the pixel sinc (counting detectors).

    Returns
    -------
    ndarray, shape (H, W//2+1) if ``real`` else (H, W), float32, MTF(0) = 1.
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = (np.fft.rfftfreq(w) if real else np.fft.fftfreq(w))[None, :]
    f2 = fy * fy + fx * fx
    lor = (1 - floor) / (1 + f2 / (f0 * f0)) + floor if np.isfinite(f0) else 1.0
    return (lor * np.sinc(fx) * np.sinc(fy)).astype(np.float32)


def gaussian_transfer(shape, sigma_px: float, real: bool = True):
    """Fourier transform of a unit-sum Gaussian blur of ``sigma_px`` pixels (rfft grid by default)."""
    k2 = frequency_grid(shape, 1.0, real=real)
    return np.exp(-2 * np.pi**2 * sigma_px**2 * k2).astype(np.float32)


def beam_broadening_nm(thickness_nm: float, voltage_kv: float) -> float:
    """Elastic beam broadening in water (Goldstein single-scattering estimate), nm.

    b = 7.21e5 (Z/E0) (rho/A)^(1/2) t^(3/2) (cgs, E0 in eV) with Z = 10/3, A = 6 (mean per atom
    of H2O), rho = 1 g/cm^3; 2.3 nm for 100 nm of water at 200 kV. Applies to objects at the
    beam-entrance side; the renderer uses it for a particle at mid-depth.
    """
    t_cm = thickness_nm * 1e-7
    b_cm = 7.21e5 * (10 / 3) / (voltage_kv * 1e3) * np.sqrt(1 / 6) * t_cm**1.5
    return float(b_cm * 1e7)
