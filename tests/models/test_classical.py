"""The classical baseline against the simulator's ground truth."""

import numpy as np
import pytest

from temstream.models.classical import ClassicalSegmenter
from temstream.models.metrics import pixel_scores
from temstream.sim import simulate


@pytest.mark.parametrize("seed", [7, 2024])
def test_finds_the_simulated_particles_beside_a_bright_bubble(seed):
    # seed 7 puts a bright gas bubble a third of the field wide into view: a histogram
    # threshold over all pixels split bubble from background and called the background particle
    movie = simulate("dispersed", frames=1, size=256, seed=seed)
    frame, truth = movie.frames[0], movie.labels[0] > 0
    seg = ClassicalSegmenter()
    p = seg(frame)
    mask = seg.mask(frame)[0]
    assert p.shape == (2, 256, 256) and p.dtype == np.float32
    np.testing.assert_array_equal(p[1] > 0.5, mask)
    assert 0.5 * truth.mean() < mask.mean() < 2 * truth.mean()
    assert pixel_scores(mask, truth)["dice"] > 0.7


def test_a_flat_frame_has_no_particles():
    seg = ClassicalSegmenter()
    assert not seg.mask(np.full((64, 64), 300, np.uint16))[0].any()


@pytest.mark.parametrize("kw,match", [(dict(method="mean"), "threshold method"),
                                      (dict(polarity="grey"), "polarity")])
def test_bad_options_are_clear_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        ClassicalSegmenter(**kw)
