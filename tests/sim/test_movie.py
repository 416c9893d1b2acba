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
    assert list(m.truth.columns) == TRUTH_COLUMNS
    json.dumps(m.params)
    assert len(m.truth) > 0, "every scenario shows particles"
    for (f, lab), rows in m.truth.groupby(["frame", "label"]):
        assert (m.labels[f] == lab).sum() == rows.area.iloc[0]
        assert rows.particle.iloc[0] == lab - 1
    # every labelled id has a truth row
    for f in range(3):
        ids = set(np.unique(m.labels[f]).tolist()) - {0}
        assert ids == set(m.truth.label[m.truth.frame == f].tolist())
    if name == "moire":
        assert m.layers.shape == (3, 2, 96, 96)
        assert set(m.truth.layer) == {0, 1}
        assert (m.layers[:, 0] & m.layers[:, 1]).any(), "layers overlap in projection"
        assert np.array_equal(m.layers.any(axis=1), m.labels > 0)
    else:
        assert m.layers is None


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
