"""Scenarios: reproducible, every one renders with ground truth that agrees with the pixels."""

import json

import numpy as np
import pytest

from temstream.sim import SCENARIOS, TRUTH_COLUMNS, iter_movie, simulate


def test_same_seed_same_movie_bit_for_bit():
    a = simulate("dispersed", frames=3, size=64, seed=4)
    b = simulate("dispersed", frames=3, size=64, seed=4)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    assert a.truth.equals(b.truth)
    c = simulate("dispersed", frames=1, size=64, seed=5)
    assert not np.array_equal(a.frames[0], c.frames[0])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_renders_with_truth(name):
    m = simulate(name, frames=3, size=96, seed=2)
    assert m.frames.shape == m.labels.shape == (3, 96, 96)
    assert m.frames.dtype == np.uint16 and m.labels.dtype == np.int32
    layered = name == "moire"
    extra = ["site_x", "site_y", "interstitial"] if layered else []
    assert list(m.truth.columns) == TRUTH_COLUMNS + extra
    json.dumps(m.params)
    assert len(m.truth) > 0, "every scenario shows particles"
    # the area of a particle: its pixels in its own layer's plane (the only plane without layers)
    planes = m.layer_labels if layered else m.labels[:, None]
    for (f, lab), rows in m.truth.groupby(["frame", "label"]):
        assert (planes[f] == lab).sum() == rows.area.iloc[0]
        assert rows.particle.iloc[0] == lab - 1
    # every labelled id has a truth row (particles hidden behind another layer's too)
    for f in range(3):
        ids = set(np.unique(planes[f]).tolist()) - {0}
        assert ids == set(m.truth.label[m.truth.frame == f].tolist())
        assert set(np.unique(m.labels[f]).tolist()) - {0} <= ids
    if layered:
        assert m.layers.shape == (3, 2, 96, 96)
        assert m.layer_labels.shape == (3, 2, 96, 96) and m.layer_labels.dtype == np.int32
        assert np.array_equal(m.layer_labels > 0, m.layers)
        assert set(m.truth.layer) == {1, 2}
        for k in (1, 2):  # each plane holds only its layer's particles
            ids = set(m.truth.label[m.truth.layer == k])
            assert set(np.unique(m.layer_labels[:, k - 1]).tolist()) - {0} <= ids
        assert (m.layers[:, 0] & m.layers[:, 1]).any(), "layers overlap in projection"
        assert np.array_equal(m.layers.any(axis=1), m.labels > 0)
        site_err = np.hypot(m.truth.x - m.truth.site_x, m.truth.y - m.truth.site_y)
        assert site_err.max() < 5  # thermal displacements of about 1 px
    else:
        assert m.layers is None and m.layer_labels is None


def test_moire_defects_and_partial_layer_in_the_truth():
    m = simulate("moire", frames=2, size=192, seed=4, vacancy_fraction=0.05,
                 interstitial_fraction=0.03, layer_b_coverage=0.5, layer_b_size_ratio=1.0,
                 grain_misorientation_deg=20.0)
    assert m.vacancies is not None and set(m.vacancies.layer) <= {1, 2}
    assert len(m.vacancies) > 0 and set(m.vacancies.frame) == {0, 1}
    assert m.truth.interstitial.any()
    t0 = m.truth[m.truth.frame == 0]
    # the partial layer B covers about half of the field
    assert 0.2 < (t0.layer == 2).sum() / (t0.layer == 1).sum() < 0.8
    # equal-size layers: the same particle area on average
    area = t0.groupby("layer").area.median()
    assert abs(area[1] / area[2] - 1) < 0.25


def test_truth_centroid_inside_its_label():
    m = simulate("dispersed", frames=4, size=128, seed=7, n_fast=0, n_defocused=0)
    t = m.truth
    inside = (t.x > 2) & (t.x < 125) & (t.y > 2) & (t.y < 125)
    checked = 0
    for _, r in t[inside].iterrows():
        lab = m.labels[int(r.frame)]
        mask = lab == r.label
        # skip particles whose projection overlaps another (centre may be owned by it)
        ring = np.zeros_like(mask)
        yy, xx = np.nonzero(mask)
        if r.area < 0.5 * np.pi * (r.size_nm / 2 / m.pixel_size_nm) ** 2 * 0.5:
            continue
        assert lab[int(round(r.y)), int(round(r.x))] == r.label
        checked += 1
    assert checked >= 5


def test_tracks_are_continuous_and_particles_enter_and_leave():
    m = simulate("flow", frames=12, size=96, seed=1, n_fast=0)
    first = m.truth.groupby("particle").frame.min()
    last = m.truth.groupby("particle").frame.max()
    assert (first > 0).any(), "particles enter the field"
    assert (last < 11).any(), "particles leave the field"
    step = m.truth.sort_values("frame").groupby("particle")[["x", "y"]].diff().dropna()
    # drift per frame = flow * dt / pixel size, plus Brownian scatter
    prm = m.params
    v = np.asarray(prm["flow_nm_per_s"]) * prm["frame_time_s"] / prm["pixel_size_nm"]
    assert step.x.median() == pytest.approx(v[0], rel=0.3)
    assert np.hypot(step.x, step.y).max() < 3 * np.hypot(*v)


def test_iter_movie_endless_and_timestamps():
    it = iter_movie("hex-lattice", size=64, seed=0)
    f = [next(it) for _ in range(3)]
    assert [x.index for x in f] == [0, 1, 2]
    dt = SCENARIOS["hex-lattice"]["frame_time_s"]
    assert f[2].timestamp_s == pytest.approx(2 * dt)


def test_unknown_parameter_is_an_error_that_lists_names():
    with pytest.raises(ValueError, match="valid names"):
        simulate("dispersed", frames=1, size=32, seed=0, dose=3)
    with pytest.raises(ValueError, match="choose one of"):
        simulate("nope", frames=1, size=32, seed=0)
