"""Training pairs: reproducible, well-formed, and targets that agree with the pixels."""

import itertools

import numpy as np
import pytest
from skimage.measure import label as cc_label

from temstream.sim.training import boundary_mask, particle_target, random_physics, training_pairs


def _take(seed, n, **kw):
    return list(itertools.islice(training_pairs(seed, **kw), n))


def test_same_seed_same_pairs_bit_for_bit():
    a = _take(5, 3, size=64)
    b = _take(5, 3, size=64)
    for (ia, ta), (ib, tb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(ta, tb)
    c = _take(6, 1, size=64)
    assert not np.array_equal(a[0][0], c[0][0])


def test_pairs_shapes_dtypes_classes():
    pairs = _take(11, 6, size=96)
    seen = set()
    for img, tgt in pairs:
        assert img.shape == tgt.shape == (96, 96)
        assert img.dtype == np.uint16 and tgt.dtype == np.uint8
        assert tgt.max() < 3
        seen |= set(np.unique(tgt).tolist())
        assert img.std() > 0
    assert {0, 1} <= seen


def test_bilayer_pairs_hold_both_layers_instances_and_the_variety():
    pairs = _take(11, 12, size=96, task="bilayer")
    equal = []
    for img, labels, swappable in pairs:
        assert img.shape == (96, 96) and img.dtype == np.uint16
        assert labels.shape == (2, 96, 96) and labels.dtype == np.uint16
        a, b = (set(np.unique(p).tolist()) - {0} for p in labels)
        assert a and not a & b, "instance ids are unique across the layers"
        equal.append(swappable)
        if not swappable:  # layer A holds the larger particles
            area = [np.bincount(p.ravel())[1:] for p in labels]
            assert np.median(area[0][area[0] > 0]) >= np.median(area[1][area[1] > 0])
    assert any(equal) and not all(equal), "equal-size and different-size layers both occur"
    overlap = [((lab[0] > 0) & (lab[1] > 0)).any() for _, lab, _ in pairs]
    assert sum(overlap) >= 9, "the layers overlap in projection"


def test_particles_darker_than_background_on_average():
    # particles attenuate: over many randomised images the labelled pixels are darker
    darker = 0
    for img, tgt in _take(2, 12, size=128):
        fg, bg = img[tgt > 0], img[tgt == 0]
        if fg.size > 20 and bg.size > 20:
            darker += np.median(fg) < np.median(bg)
    assert darker >= 9


def test_boundary_separates_touching_instances():
    lab = np.zeros((20, 30), np.int32)
    lab[5:15, 3:13] = 1
    lab[5:15, 13:23] = 2          # touches label 1 along column 12/13
    lab[2:4, 26:28] = 3           # isolated
    b = boundary_mask(lab)
    assert b[5:15, 12].all() and b[5:15, 13].all()
    assert not b[lab == 3].any()
    assert not b[:, :11].any()
    t = particle_target(lab)
    # interior (class 1) components now give one component per instance
    assert cc_label(t == 1, connectivity=1).max() == 3


@pytest.mark.parametrize("bubbles", [0.0, 0.15, 0.5])
def test_bubble_fraction_of_the_training_images(bubbles):
    rng = np.random.default_rng(3)
    n = np.array([random_physics(rng, 128, bubbles=bubbles)["n_bubbles"] for _ in range(400)])
    assert set(np.unique(n)) <= {0, 1}
    assert abs(n.mean() - bubbles) < 0.06




@pytest.mark.parametrize("task, size, n, digest", [
    ("particles", 256, 6, "bc8001ee29623a46ca0a8dc0ffb708cd462de03c9499594999cb8051136ebcb2"),
    ("bilayer", 192, 4, "d74347f04515c6fd4df63e56b8f942edc871d7ba5d937c8cc9a9fa3f05730e24"),
])
def test_the_stream_is_the_one_the_shipped_models_were_trained_on(task, size, n, digest):
    # `temstream train --preset default` reproduces the shipped weights only while seed 0
    # gives these pairs, bit for bit (digest recorded with the code that trained them)
    import hashlib

    h = hashlib.sha256()
    for img, target, *swappable in _take(0, n, size=size, task=task):
        h.update(img.tobytes())
        h.update(target.tobytes())
        h.update(bytes(swappable))
    assert h.hexdigest() == digest
