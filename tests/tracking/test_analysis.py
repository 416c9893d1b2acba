"""Trajectory analysis against analytic results (and trackpy where it has the function)."""

import doctest

import numpy as np
import pandas as pd
import pytest

from temstream.tracking import (analysis as ta, edges, instances, lattice, layer_analysis,
                                layers, linking, scoring)


def brownian(n, frames, D, seed, drift=(0.0, 0.0)):
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(0, np.sqrt(2 * D), (n, frames, 2)), axis=1)
    xy += np.asarray(drift) * np.arange(frames)[None, :, None]
    return pd.DataFrame({"frame": np.tile(np.arange(frames), n),
                         "particle": np.repeat(np.arange(n), frames),
                         "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})


@pytest.mark.parametrize("module", [ta, edges, instances, linking, scoring, lattice,
                                    layer_analysis, layers])
def test_docstring_examples(module):
    res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0


def test_msd_of_brownian_walk_is_4Dt_and_D_fit():
    t = brownian(300, 400, D=0.7, seed=0)
    m = ta.emsd(t, 20)
    lag = m.index.to_numpy()
    assert np.allclose(m["msd"], 4 * 0.7 * lag, rtol=0.04)
    fit = ta.fit_diffusion(m, (1, 20))
    assert fit["D"] == pytest.approx(0.7, rel=0.03)
    assert fit["alpha"] == pytest.approx(1.0, abs=0.03)


def test_msd_with_gaps_equals_direct_average_and_trackpy():
    trackpy = pytest.importorskip("trackpy")
    t = brownian(1, 200, D=1.0, seed=1)
    rng = np.random.default_rng(2)
    t = t[rng.random(len(t)) > 0.3]
    m = ta.msd(t, 15)
    x = pd.Series(t["x"].to_numpy(), index=t["frame"].to_numpy())
    y = pd.Series(t["y"].to_numpy(), index=t["frame"].to_numpy())
    for lag in (1, 5, 15):
        dx = x.reindex(x.index + lag).to_numpy() - x.to_numpy()
        dy = y.reindex(y.index + lag).to_numpy() - y.to_numpy()
        assert m.loc[lag, "msd"] == pytest.approx(np.nanmean(dx ** 2 + dy ** 2), rel=1e-9)
    ref = trackpy.msd(t, mpp=1, fps=1, max_lagtime=15)
    assert np.allclose(m["msd"].to_numpy(), ref["msd"].to_numpy()[:len(m)], rtol=1e-9)


def test_imsd_matches_trackpy():
    trackpy = pytest.importorskip("trackpy")
    t = brownian(5, 100, D=0.5, seed=3)
    ours = ta.imsd(t, 10)
    ref = trackpy.imsd(t, mpp=1, fps=1, max_lagtime=10)
    assert np.allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-9)


def test_angular_msd():
    rng = np.random.default_rng(4)
    ang = np.cumsum(rng.normal(0, np.sqrt(2 * 0.01), (200, 300)), axis=1)
    t = pd.DataFrame({"frame": np.tile(np.arange(300), 200),
                      "particle": np.repeat(np.arange(200), 300), "angle": ang.ravel()})
    m = ta.msad(t, 10)
    assert np.allclose(m["msd"], 2 * 0.01 * m.index, rtol=0.05)
    assert ta.fit_diffusion(m, (1, 10), dim=1)["D"] == pytest.approx(0.01, rel=0.05)


def test_drift_with_one_particle_and_a_reference():
    # one diffusing particle + 3 particles stuck to the window, all drifting together
    walker = brownian(1, 500, D=0.5, seed=5, drift=(0.3, -0.2))
    stuck = brownian(3, 500, D=0.0, seed=6, drift=(0.3, -0.2))
    stuck["particle"] += 1
    t = pd.concat([walker, stuck], ignore_index=True)
    d = ta.compute_drift(t, reference=[1, 2, 3])
    assert np.allclose(d["x"].to_numpy(), 0.3 * np.arange(500), atol=1e-9)
    corrected = ta.subtract_drift(t, d)
    m = ta.msd(corrected[corrected.particle == 0], 10)
    assert ta.fit_diffusion(m, (1, 10))["D"] == pytest.approx(0.5, rel=0.25)
    # without a reference the lone walker's own motion is removed (the trackpy caveat) ...
    alone = ta.subtract_drift(walker)
    assert ta.msd(alone, 10)["msd"].max() < 1e-9
    # ... unless the drift is restricted to a smooth polynomial
    smooth = ta.subtract_drift(walker, degree=1)
    fit = ta.fit_diffusion(ta.msd(smooth, 10), (1, 10))
    assert fit["D"] == pytest.approx(0.5, rel=0.25)
    assert np.abs(smooth["x"].iloc[-1] - smooth["x"].iloc[0]) < 0.3 * 500 / 3


def test_drift_median_ignores_an_outlier():
    t = brownian(9, 50, D=1e-8, seed=7, drift=(1.0, 0.0))
    t.loc[t.particle == 0, "x"] += np.arange(50) * 5.0     # one runaway particle
    d = ta.compute_drift(t)
    assert np.allclose(d["x"], np.arange(50), atol=1e-3)


def test_van_hove_step_sizes_and_alpha2():
    t = brownian(200, 200, D=0.5, seed=8)
    c, p = ta.van_hove(t, 4, bins=61, range_px=8)
    gauss = np.exp(-c ** 2 / (2 * 2 * 0.5 * 4)) / np.sqrt(2 * np.pi * 2 * 0.5 * 4)
    assert np.abs(p - gauss).max() < 0.01
    s = ta.step_sizes(t, 1)
    assert np.mean(s ** 2) == pytest.approx(4 * 0.5, rel=0.02)
    assert abs(ta.non_gaussian(t, 1)) < 0.03
    # a two-population mixture is non-Gaussian
    t2 = pd.concat([t, brownian(200, 200, D=5.0, seed=9).assign(particle=lambda d: d.particle
                                                                   + 1000)])
    assert ta.non_gaussian(t2, 1) > 0.3


def test_vibration_and_dynamic_lindemann():
    rng = np.random.default_rng(10)
    a, sigma = 12.0, 0.6
    i, j = np.meshgrid(np.arange(12), np.arange(12))
    sites = np.stack([(i + 0.5 * (j % 2)) * a, j * a * np.sqrt(3) / 2], -1).reshape(-1, 2)
    xy = sites[None] + rng.normal(0, sigma, (400, len(sites), 2))
    t = pd.DataFrame({"frame": np.repeat(np.arange(400), len(sites)),
                      "particle": np.tile(np.arange(len(sites)), 400),
                      "x": xy[..., 0].ravel(), "y": xy[..., 1].ravel()})
    rms = ta.vibration_rms(t)
    assert rms.mean() == pytest.approx(np.sqrt(2) * sigma, rel=0.02)
    g = ta.dynamic_lindemann(t, a, max_lag=10)
    assert np.allclose(g, 4 * sigma ** 2 / a ** 2, rtol=0.05)
    # a drifting lattice gives the same gamma_L (relative displacements)
    t2 = t.assign(x=t.x + 0.7 * t.frame)
    assert np.allclose(ta.dynamic_lindemann(t2, a, 10), g, rtol=1e-9)


def test_bond_order_hexagonal_and_square():
    i, j = np.meshgrid(np.arange(14), np.arange(14))
    hexa = pd.DataFrame({"x": ((i + 0.5 * (j % 2)) * 10.0).ravel(),
                         "y": (j * 10.0 * np.sqrt(3) / 2).ravel()})
    psi = ta.bond_order(hexa, k=6)
    inner = ((i > 0) & (i < 13) & (j > 0) & (j < 13)).ravel()
    assert np.allclose(np.abs(psi[inner]), 1.0)
    assert np.allclose(np.abs(ta.bond_order(hexa, k=6, cutoff=10.5)[inner]), 1.0)
    square = pd.DataFrame({"x": i.ravel() * 7.0, "y": j.ravel() * 7.0})
    assert np.allclose(np.abs(ta.bond_order(square, k=4, cutoff=7.5)), 1.0)
    # a rotated hexagonal lattice keeps |psi6| = 1, its phase turns by 6 x the rotation
    th = 0.1
    rot = pd.DataFrame({"x": hexa.x * np.cos(th) - hexa.y * np.sin(th),
                        "y": hexa.x * np.sin(th) + hexa.y * np.cos(th)})
    p2 = ta.bond_order(rot, k=6, cutoff=10.5)[inner]
    assert np.allclose(np.angle(p2 / ta.bond_order(hexa, k=6, cutoff=10.5)[inner]), 6 * th)
    # a random gas has small global order
    rng = np.random.default_rng(11)
    gas = pd.DataFrame(rng.uniform(0, 200, (400, 2)), columns=["x", "y"])
    assert abs(ta.bond_order(gas, k=6).mean()) < 0.1


def test_pair_distances_and_area_rates():
    f = np.arange(20)
    t = pd.DataFrame({"frame": np.r_[f, f, f], "particle": np.repeat([0, 1, 2], 20),
                      "x": np.r_[0 * f, 3 + 0.1 * f, 100 + 0 * f], "y": 0.0,
                      "area": np.r_[200 - 2.0 * f, 50 + 3.0 * f, 80 + 0 * f]})
    pdist = ta.pair_distances(t, 10)
    assert len(pdist) == 20
    assert np.allclose(pdist["r"], 3 + 0.1 * f)
    assert set(zip(pdist.particle_a, pdist.particle_b)) == {(0, 1)}
    rates = ta.area_rates(t)
    assert rates.loc[0, "rate"] == pytest.approx(-2.0)
    assert rates.loc[1, "rate"] == pytest.approx(3.0)
    assert rates.loc[2, "rate"] == pytest.approx(0.0, abs=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="particle"):
        ta.emsd(pd.DataFrame({"frame": [0], "x": [0.0], "y": [0.0]}))
    with pytest.raises(ValueError, match="fit_range"):
        ta.fit_diffusion(pd.Series([1.0], index=[1]))
    with pytest.raises(ValueError, match="neighbour"):
        t = brownian(2, 5, 0.1, 0)
        t.loc[t.particle == 1, "x"] += 1000
        ta.dynamic_lindemann(t, 1.0)
