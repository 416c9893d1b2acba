"""The automatic search range: from the displacements of consecutive frames."""

import numpy as np
import pytest

from temstream.tracking.search_range import AutoSearchRange


def walk(n, frames, sigma, box=600.0, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, box, (n, 2))
    out = [pos.copy()]
    for _ in range(frames - 1):
        pos = pos + rng.normal(0, sigma, pos.shape)
        out.append(pos.copy())
    return out


@pytest.mark.parametrize("sigma", [1.0, 2.5, 4.0])
def test_range_covers_the_steps_of_a_random_walk(sigma):
    frames = walk(400, 6, sigma)
    est = AutoSearchRange(default=10.0)
    for a, b in zip(frames, frames[1:]):
        est.observe(a, b)
    steps = np.hypot(*(frames[1] - frames[0]).T)
    assert est.value >= np.percentile(steps, 99.5)  # nearly every true link within reach
    assert est.value <= 8 * sigma  # and not far beyond
    assert est.sigma == pytest.approx(sigma, rel=0.25)


def test_a_sparse_field_gets_room_towards_half_the_spacing():
    frames = walk(20, 6, 1.0)  # ~130 px apart, 1 px steps
    est = AutoSearchRange()
    for a, b in zip(frames, frames[1:]):
        est.observe(a, b)
    assert 8 < est.value <= 0.5 * est.spacing + 1e-9
    assert est.value <= 2 * max(4 * est.sigma, 1.5 * est.d98) + 1e-9


def test_default_until_the_first_pair_and_after_reset():
    est = AutoSearchRange(default=7.0)
    assert est.value == 7.0
    assert est.observe(np.zeros((0, 2)), np.zeros((0, 2))) == 7.0  # nothing to learn from
    frames = walk(200, 2, 3.0)
    first = est.observe(*frames)
    assert first != 7.0 and est.pairs == 1  # the first pair already gives an estimate
    s = est.summary()
    assert s["search_range_px"] == pytest.approx(first, abs=0.01) and s["frame_pairs"] == 1
    est.reset()
    assert est.value == 7.0 and est.pairs == 0


def test_the_estimate_follows_the_movie():
    slow, fast = walk(300, 10, 1.0, seed=1), walk(300, 40, 4.0, seed=2)
    est = AutoSearchRange(window=10)
    for a, b in zip(slow, slow[1:]):
        est.observe(a, b)
    before = est.value
    for a, b in zip(fast, fast[1:]):
        est.observe(a, b)
    assert est.value > 1.5 * before and est.sigma > 3.0
    assert est.low == pytest.approx(before, rel=0.3) and est.high >= est.value


def test_bounds():
    with pytest.raises(ValueError):
        AutoSearchRange(min_px=5, max_px=2)
    est = AutoSearchRange(min_px=1.0, max_px=3.0)
    frames = walk(300, 2, 4.0)
    assert est.observe(*frames) == 3.0
