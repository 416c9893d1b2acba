"""Analysis functions against analytic expectations, and their doc examples."""

import doctest

import numpy as np
import pandas as pd
import pytest

from temstream.tracking import analysis as an
from temstream.tracking import instances, linking

pytest.importorskip("trackpy")


def brownian(n, frames, d=0.5, seed=0, drift=(0.0, 0.0), start=None):
    """n independent 2-D Brownian tracks, D = d px**2/frame, plus linear drift."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, np.sqrt(2 * d), (frames, n, 2))
    steps[0] = 0
    pos = np.cumsum(steps, axis=0)
    if start is not None:
        pos += start[None]
    t = np.arange(frames)
    pos[..., 0] += drift[0] * t[:, None]
    pos[..., 1] += drift[1] * t[:, None]
    return pd.DataFrame({"frame": np.repeat(t, n), "particle": np.tile(np.arange(n), frames),
                         "x": pos[..., 0].ravel(), "y": pos[..., 1].ravel()})


@pytest.mark.parametrize("module", [an, instances, linking])
def test_doc_examples_run(module):
    res = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


def test_msd_of_brownian_walk_is_4dt():
    d = 0.5
    tr = brownian(400, 60, d=d)
    m = an.emsd(tr, mpp=1, fps=1, max_lagtime=10)
    np.testing.assert_allclose(m.to_numpy(), 4 * d * m.index.to_numpy(), rtol=0.05)
    dfit, off = an.diffusion_coefficient(m, fit_range=(1, 10))
    assert dfit == pytest.approx(d, rel=0.05)
    assert abs(off) < 0.3  # statistical noise on the intercept; slope is 4 D = 2
    # units: mpp scales MSD by mpp**2, fps the time axis
    m2 = an.emsd(tr, mpp=0.2, fps=10, max_lagtime=10)
    assert an.diffusion_coefficient(m2, fit_range=(0.1, 1))[0] == pytest.approx(d * 0.04 * 10, rel=0.05)
    per = an.imsd(tr, max_lagtime=5)
    assert per.shape[1] == 400


def test_angular_msd_and_rotational_diffusion():
    rng = np.random.default_rng(1)
    dr = 0.01
    n, frames = 200, 80
    th = np.cumsum(rng.normal(0, np.sqrt(2 * dr), (frames, n)), axis=0)
    tr = pd.DataFrame({"frame": np.repeat(np.arange(frames), n),
                       "particle": np.tile(np.arange(n), frames), "angle": th.ravel(),
                       "x": 0.0, "y": 0.0})
    m = an.angular_msd(tr, max_lagtime=10)
    np.testing.assert_allclose(m.to_numpy(), 2 * dr * m.index.to_numpy(), rtol=0.06)
    assert an.rotational_diffusion_coefficient(tr, fit_range=(1, 10)) == pytest.approx(dr, rel=0.06)


def test_angular_msd_from_linker_unwrapped_angles():
    # cubes (n = 4) observed mod pi/2, unwrapped by the linker -> MSAD = 2 D_r t
    rng = np.random.default_rng(2)
    n, frames, dr = 60, 60, 0.02
    th = np.cumsum(rng.normal(0, np.sqrt(2 * dr), (frames, n)), axis=0)
    period = np.pi / 2
    grid = np.mgrid[0:6, 0:10].reshape(2, -1).T * 30.0
    f = pd.DataFrame({"frame": np.repeat(np.arange(frames), n),
                      "x": np.tile(grid[:, 0], frames), "y": np.tile(grid[:, 1], frames),
                      "angle": ((th + period / 2) % period - period / 2).ravel()})
    tr = linking.link(f, 5, n_fold=4)
    assert tr.particle.nunique() == n
    m = an.angular_msd(tr, max_lagtime=10)
    np.testing.assert_allclose(m.to_numpy(), 2 * dr * m.index.to_numpy(), rtol=0.12)


def test_drift_correction_keeps_diffusion_with_one_particle():
    d = 0.5
    drift = (0.8, -0.3)
    tr = brownian(1, 400, d=d, seed=3, drift=drift)
    est = an.compute_drift(tr, degree=1)
    corrected = an.subtract_drift(tr, est)
    m = an.emsd(corrected, max_lagtime=5)
    assert an.diffusion_coefficient(m, fit_range=(1, 5))[0] == pytest.approx(d, rel=0.25)
    # trackpy's estimator removes the real motion with one particle (degree=None)
    naive = an.subtract_drift(tr, an.compute_drift(tr, degree=None))
    assert an.emsd(naive, max_lagtime=5).max() < 1e-9
    # many particles: the estimated drift velocity is right
    many = brownian(100, 100, d=d, seed=4, drift=drift)
    v = an.compute_drift(many).iloc[-1].to_numpy() / 99
    np.testing.assert_allclose(v, drift, atol=0.02)


def test_drift_from_reference_particles():
    tr = brownian(20, 50, d=0.5, seed=5, drift=(0.5, 0.25))
    ref = brownian(5, 50, d=0.0, seed=6, drift=(0.5, 0.25)).assign(particle=lambda t: t.particle + 100)
    both = pd.concat([tr, ref], ignore_index=True)
    est = an.compute_drift(both, reference=range(100, 105), degree=None)
    np.testing.assert_allclose(est.x.to_numpy(), 0.5 * np.arange(50), atol=1e-9)
    np.testing.assert_allclose(est.y.to_numpy(), 0.25 * np.arange(50), atol=1e-9)


def test_step_sizes_van_hove_and_alpha2():
    d = 0.5
    tr = brownian(300, 40, d=d, seed=7)
    s = an.step_sizes(tr, lagtime=2)
    assert len(s) == 300 * 38
    # |dr|**2 has mean 4 D lag
    assert np.mean(s ** 2) == pytest.approx(4 * d * 2, rel=0.05)
    c, h = an.van_hove(tr, lagtime=1, bins=41, range=(-5, 5))
    assert np.sum(h) * (c[1] - c[0]) == pytest.approx(1.0, abs=0.01)
    gauss = np.exp(-c ** 2 / (4 * d)) / np.sqrt(4 * np.pi * d)
    np.testing.assert_allclose(h, gauss, atol=0.02)
    assert abs(an.non_gaussian_parameter(tr, 1)) < 0.05
    # exponential-tailed steps are non-Gaussian
    # (independent Laplace components: alpha_2 = 56 / 32 - 1 = 0.75)
    rng = np.random.default_rng(8)
    steps = rng.laplace(0, 1, (40, 300, 2)).cumsum(axis=0)
    lap = tr.assign(x=steps[..., 0].ravel(), y=steps[..., 1].ravel())
    assert an.non_gaussian_parameter(lap, 1) == pytest.approx(0.75, abs=0.15)


def lattice(nx, ny, a, frames, sigma, seed, hexagonal=False):
    rng = np.random.default_rng(seed)
    i, j = np.mgrid[0:nx, 0:ny].reshape(2, -1)
    x = i * a + (0.5 * a * (j % 2) if hexagonal else 0.0)
    y = j * a * (np.sqrt(3) / 2 if hexagonal else 1.0)
    n = len(x)
    u = rng.normal(0, sigma, (frames, n, 2))
    return pd.DataFrame({"frame": np.repeat(np.arange(frames), n),
                         "particle": np.tile(np.arange(n), frames),
                         "x": (x[None] + u[..., 0]).ravel(), "y": (y[None] + u[..., 1]).ravel()})


def test_vibration_rms_and_dynamic_lindemann():
    a, sigma = 10.0, 0.4
    tr = lattice(12, 12, a, 60, sigma, seed=9)
    v = an.vibration_rms(tr)
    # per site: sqrt(2) sigma (two axes), small-sample bias (n - 1) / n
    assert v.rms.mean() == pytest.approx(np.sqrt(2 * 59 / 60) * sigma, rel=0.03)
    assert (v.n == 60).all()
    g = an.lindemann_dynamic(tr, a, lagtimes=(1, 3, 10))
    # independent vibrations: <|du_i - du_j|**2> = 8 sigma**2 -> gamma_L = 4 sigma**2 / a**2
    np.testing.assert_allclose(g.to_numpy(), 4 * sigma ** 2 / a ** 2, rtol=0.05)
    # a common drift does not change gamma_L
    drifted = tr.assign(x=tr.x + 0.7 * tr.frame)
    np.testing.assert_allclose(an.lindemann_dynamic(drifted, a, lagtimes=(1, 3, 10)), g, rtol=1e-9)


def test_psi6_and_psi4():
    hexa = lattice(12, 12, 10.0, 1, 0.0, 0, hexagonal=True)
    p6 = an.psi_k(hexa.x, hexa.y, 6, cutoff=10.5)
    x = hexa.x.to_numpy()
    y = hexa.y.to_numpy()
    inner = (x > 15) & (x < 95) & (y > 15) & (y < 80)
    np.testing.assert_allclose(np.abs(p6[inner]), 1.0, atol=1e-9)
    assert abs(np.nanmean(p6[inner])) == pytest.approx(1.0)
    sq = lattice(10, 10, 10.0, 1, 0.0, 0)
    p4 = an.psi_k(sq.x, sq.y, 4, cutoff=10.5)
    np.testing.assert_allclose(np.abs(p4), 1.0, atol=1e-9)
    assert np.abs(an.psi_k(sq.x, sq.y, 6, cutoff=10.5)).mean() < 0.5
    rnd = np.random.default_rng(0).uniform(0, 100, (300, 2))
    assert abs(np.nanmean(an.psi_k(rnd[:, 0], rnd[:, 1], 6))) < 0.2


def test_pair_distances():
    tr = lattice(6, 6, 10.0, 5, 0.0, 0)
    pd_ = an.pair_distances(tr, cutoff=10.5)
    # 2 * 6 * 5 nearest-neighbour bonds per frame, all of length 10
    assert len(pd_) == 5 * 60
    np.testing.assert_allclose(pd_.r, 10.0)
    assert (pd_.particle_i < pd_.particle_j).all()
    assert an.pair_distances(tr, cutoff=10.5, mpp=0.5).r.max() == pytest.approx(5.0)


def test_area_rates():
    rng = np.random.default_rng(10)
    rows = []
    rates = {0: -3.0, 1: 2.0, 2: 0.0}
    for p, r in rates.items():
        f = np.arange(5, 25)
        rows.append(pd.DataFrame({"frame": f, "particle": p,
                                  "area": 200 + r * (f - 5) + rng.normal(0, 1e-9, len(f))}))
    rows.append(pd.DataFrame({"frame": [0, 1], "particle": 9, "area": [5.0, 6.0]}))
    out = an.area_rates(pd.concat(rows), fps=2.0, mpp=0.5)
    assert list(out.index) == [0, 1, 2]
    np.testing.assert_allclose(out.rate, [r * 2.0 * 0.25 for r in rates.values()], atol=1e-6)
    np.testing.assert_allclose(out.area0, 200 * 0.25, atol=1e-6)


def test_missing_columns():
    with pytest.raises(ValueError, match="lacks columns"):
        an.emsd(pd.DataFrame({"frame": [0], "x": [0.0], "y": [0.0]}))
    with pytest.raises(ValueError, match="fewer than 2"):
        an.diffusion_coefficient(pd.Series([1.0, 2.0], index=[1, 2]), fit_range=(5, 6))
