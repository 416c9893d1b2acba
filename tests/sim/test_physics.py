"""Physics of the image formation: dose, Poisson statistics, contrast vs liquid, CTF zeros."""

import numpy as np
import pytest

from temstream.sim import optics, scenario_params
from temstream.sim import particles as P
from temstream.sim.background import Background
from temstream.sim.render import (background_transmission, electrons_per_pixel,
                                  empty_projection, image_intensity, project)
from temstream.sim.scene import Distractors, render_scene

FLAT = dict(liquid_variation=0.0, bulge=0.0, texture_rad=0.0, illumination_gradient=0.0,
            intensity_drift=0.0, n_bubbles=0, n_contamination=0, n_fast=0, n_defocused=0,
            stage_drift_nm_per_s=[0.0, 0.0], stage_jitter_nm=0.0)


def _flat_frame(seed, **kw):
    prm = scenario_params("dispersed", **FLAT, **kw)
    rng = np.random.default_rng(seed)
    shape = (128, 128)
    bg = Background(shape, prm, rng)
    return prm, render_scene(shape, prm, P.ParticleSet(), bg, Distractors(), rng)


def test_wavelength_and_interaction_constant_match_reference():
    assert optics.wavelength_nm(200) == pytest.approx(0.002508, rel=1e-3)
    assert optics.wavelength_nm(300) == pytest.approx(0.001969, rel=1e-3)
    assert optics.interaction_constant(200) == pytest.approx(7.29e-3, rel=5e-3)


@pytest.mark.parametrize("detector", ["counting", "integrating"])
def test_mean_counts_equal_dose_times_area_times_transmission(detector):
    prm, out = _flat_frame(0, detector=detector, gain=1.0, offset=0.0, read_noise=0.0,
                           dose_e_per_A2=2.0, pixel_size_nm=1.0, liquid_nm=200.0)
    expected = 2.0 * 100.0 * background_transmission(prm)   # e/A^2 * A^2/px * T
    assert out.image.mean() == pytest.approx(expected, rel=0.01)
    assert electrons_per_pixel(prm) == pytest.approx(200.0)


def test_variance_equals_mean_for_poisson_frames():
    _, out = _flat_frame(1, detector="counting", mtf_f0=np.inf, dose_e_per_A2=0.5,
                         pixel_size_nm=1.0, offset=0.0, gain=1.0)
    img = out.image.astype(float)
    # no MTF: white Poisson noise, var = mean
    assert img.var() == pytest.approx(img.mean(), rel=0.05)
    # an integrating detector scales the variance by gain^2 * sum(psf^2) < gain^2
    _, out2 = _flat_frame(1, detector="integrating", gain=2.0, offset=0.0, read_noise=0.0,
                          dose_e_per_A2=0.5, pixel_size_nm=1.0)
    img2 = out2.image.astype(float)
    assert img2.var() < 2.0 * img2.mean()


def _sphere_contrast(liquid_nm):
    prm = scenario_params("dispersed", **FLAT, liquid_nm=liquid_nm, pixel_size_nm=1.0,
                          defocus_nm=0.0)
    ps = P.make_particles(1, np.random.default_rng(0), shapes={"sphere": 1.0}, diameter_nm=6.0,
                          polydispersity=0.0, material="Au", pos_nm=[[32.0, 32.0, 0.0]],
                          lambda_nm=50.0)
    proj = project(ps, empty_projection((64, 64)), pixel_size_nm=1.0, voltage_kv=200.0)
    inten = image_intensity(proj, np.full((64, 64), liquid_nm, np.float32), prm)
    bg = np.median(inten)
    return (bg - inten[32, 32]) / bg


def test_particle_contrast_falls_as_liquid_thickens():
    c = [_sphere_contrast(t) for t in (50.0, 200.0, 800.0)]
    assert c[0] > c[1] > c[2] > 0


@pytest.mark.parametrize("df,cs", [(-1000.0, 1.2), (-300.0, 0.0), (2000.0, 2.7)])
def test_ctf_first_zero_where_the_formula_puts_it(df, cs):
    kv = 200.0
    k = np.linspace(1e-4, 2.0, 200001)
    c = optics.ctf(k**2, voltage_kv=kv, defocus_nm=df, cs_mm=cs, amplitude_fraction=0.0)
    first = k[np.nonzero(np.diff(np.sign(c)) != 0)[0][0]]
    assert first == pytest.approx(optics.first_ctf_zero(voltage_kv=kv, defocus_nm=df,
                                                        cs_mm=cs), rel=1e-3)
    if cs == 0:
        lam = optics.wavelength_nm(kv)
        assert first == pytest.approx(1 / np.sqrt(lam * abs(df)), rel=1e-3)


def test_thon_ring_of_rendered_amorphous_phase_at_ctf_zero():
    # a weak random phase imaged at defocus: the power spectrum vanishes at the first CTF zero
    n, p, df = 256, 0.25, -400.0
    prm = scenario_params("dispersed", **dict(FLAT, texture_rad=0.05), pixel_size_nm=p, defocus_nm=df, convergence_mrad=0.0,
                          focal_spread_nm=0.0, inelastic_blur_nm=0.0, beam_broadening=0.0,
                          detector="integrating")
    rng = np.random.default_rng(3)
    tex = rng.normal(0, 0.05, (n, n)).astype(np.float32)
    ps = np.zeros(n // 2)
    for _ in range(4):
        tex = rng.normal(0, 0.05, (n, n)).astype(np.float32)
        inten = image_intensity(empty_projection((n, n)), np.full((n, n), 50.0, np.float32),
                                prm, texture=tex, with_mtf=False)
        f = np.abs(np.fft.fft2(inten - inten.mean())) ** 2
        k2 = optics.frequency_grid((n, n), p)
        kr = np.sqrt(k2)
        bins = (kr / (1 / (n * p))).astype(int).ravel()
        ps += np.bincount(bins, f.ravel(), minlength=n)[: n // 2] / np.maximum(
            np.bincount(bins, minlength=n)[: n // 2], 1)
    kz = optics.first_ctf_zero(voltage_kv=200.0, defocus_nm=df, cs_mm=prm["cs_mm"])
    iz = int(round(kz * n * p))
    lo, hi = iz - 6, iz + 6
    assert abs(int(np.argmin(ps[lo:hi])) + lo - iz) <= 1
    assert ps[iz] < 0.05 * ps[lo:hi].max()


def test_thickness_mottle_has_its_rms_and_correlation_length():
    kw = dict(noise=False, detector="counting", mtf_f0=np.inf, dose_e_per_A2=100.0,
              pixel_size_nm=1.0, offset=0.0, inelastic_blur_nm=0.0, beam_broadening=0.0)
    _, flat = _flat_frame(3, **kw)
    _, mot = _flat_frame(3, mottle_tau=0.05, mottle_corr_px=6.0, **kw)
    ratio = mot.expected / flat.expected
    # intensity = exp(-tau): rms of log(ratio) is the attenuation rms
    assert np.log(ratio).std() == pytest.approx(0.05, rel=0.1)
    # smooth on the correlation length: neighbours almost equal, far pixels independent
    lr = np.log(ratio)
    near = np.corrcoef(lr[:, :-1].ravel(), lr[:, 1:].ravel())[0, 1]
    far = np.corrcoef(lr[:, :-40].ravel(), lr[:, 40:].ravel())[0, 1]
    assert near > 0.95 and abs(far) < 0.3


def test_exposure_blur_softens_a_particle_edge_and_keeps_the_dose():
    ps = P.make_particles(1, np.random.default_rng(0), shapes={"cube": 1.0}, diameter_nm=30.0,
                          polydispersity=0.0, material="Au", pos_nm=[[64.0, 64.0, 0.0]],
                          lambda_nm=50.0, orientation="flat")
    out = {}
    for blur in (0.0, 3.0):
        prm = scenario_params("dispersed", **FLAT, noise=False, detector="counting",
                              mtf_f0=np.inf, dose_e_per_A2=100.0, pixel_size_nm=1.0,
                              exposure_blur_px=blur, defocus_nm=0.0)
        rng = np.random.default_rng(0)
        bg = Background((128, 128), prm, rng)
        out[blur] = render_scene((128, 128), prm, ps, bg, Distractors(), rng).expected
    sharp, soft = out[0.0], out[3.0]
    assert soft.sum() == pytest.approx(sharp.sum(), rel=1e-3)
    # the steepest step across the edge is much smaller after blurring
    assert np.abs(np.diff(soft, axis=1)).max() < 0.5 * np.abs(np.diff(sharp, axis=1)).max()


def test_default_scenarios_have_no_mottle_or_exposure_blur():
    prm = scenario_params("dispersed")
    assert prm["mottle_tau"] == 0.0 and prm["exposure_blur_px"] == 0.0
