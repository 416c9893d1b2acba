"""The per-frame expected-Dice outline threshold (temstream.tracking.outlines)."""

import numpy as np
import pytest
from scipy import ndimage

from temstream.tracking.outlines import BINS, expected_dice_threshold, outline_threshold


def _blurred_particles(seed, shape=(96, 96), count=12, sigma=2.0):
    """A foreground probability map: disks blurred into soft edges, values in [0, 0.97]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    inside = np.zeros(shape, bool)
    for cy, cx, r in zip(rng.uniform(8, shape[0] - 8, count), rng.uniform(8, shape[1] - 8, count),
                         rng.uniform(3, 7, count)):
        inside |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    return (0.97 * ndimage.gaussian_filter(inside.astype(float), sigma)).astype(np.float32)


def _brute_force(q, floor=0.0, bins=BINS):
    """Candidate thresholds (``floor`` and every k / bins above it) and the expected Dice at
    each, straight from the definition."""
    q = q[np.isfinite(q)]
    total = q.sum()
    candidates = [floor] + [k / bins for k in range(bins) if k / bins > floor]
    values = [2 * q[q >= t].sum() / ((q >= t).sum() + total) for t in candidates]
    return np.array(candidates), np.array(values)


@pytest.mark.parametrize("seed, floor", [(0, 0.0), (1, 0.0), (2, 0.0), (0, 0.35), (1, 0.6),
                                         (2, 0.123)])
def test_threshold_maximises_the_expected_dice_of_its_definition(seed, floor):
    q = _blurred_particles(seed)
    q[::17, ::13] = np.nan  # ignored
    candidates, expected = _brute_force(q, floor)
    t = expected_dice_threshold(q, floor=floor)
    assert t == pytest.approx(candidates[np.argmax(expected)], abs=1e-9)
    assert t >= floor
    if floor == 0:
        assert 0.2 < t < 0.8


def test_calibrated_probabilities_get_the_best_realised_dice():
    # truth drawn pixel by pixel with the stated probabilities: the chosen threshold's mean
    # realised Dice is the best of every fixed threshold (within the noise of 40 draws)
    q = _blurred_particles(3, shape=(128, 128), count=20)
    t = expected_dice_threshold(q)
    rng = np.random.default_rng(5)
    grid = np.round(np.arange(0.1, 0.91, 0.05), 2)
    realised = {x: [] for x in [t, *grid]}
    for _ in range(40):
        truth = rng.random(q.shape) < q
        for x in realised:
            pred = q >= x
            realised[x].append(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    best_fixed = max(np.mean(realised[x]) for x in grid)
    assert np.mean(realised[t]) >= best_fixed - 1e-3
    assert np.mean(realised[t]) > np.mean(realised[0.1]) + 0.01  # the threshold matters here


def test_floor_ceiling_and_frames_without_foreground():
    q = _blurred_particles(0)
    t = expected_dice_threshold(q)
    assert expected_dice_threshold(q, floor=t + 0.1) == pytest.approx(t + 0.1)
    assert expected_dice_threshold(q, ceiling=t - 0.1) == pytest.approx(t - 0.1)
    assert expected_dice_threshold(np.zeros((32, 32), np.float32), floor=0.35) == 0.35
    assert expected_dice_threshold(np.full((8, 8), np.nan, np.float32), floor=0.4) == 0.4


def test_outline_threshold_follows_the_rule():
    # a confident square inside a ring at P = 0.4: the card threshold keeps the ring, the
    # expected-Dice rule leaves it out (with it the expected Dice is 0.830, without 0.840)
    fg = np.zeros((40, 40), np.float32)
    fg[8:32, 8:32] = 0.4
    fg[11:29, 11:29] = 0.95
    assert outline_threshold(fg, "threshold", 0.35) == 0.35
    assert outline_threshold(fg, "half-contrast", 0.35) == 0.35
    assert 0.4 < outline_threshold(fg, "expected-dice", 0.35) <= 0.95
    with pytest.raises(ValueError, match="outline rule"):
        outline_threshold(fg, "tight", 0.35)
