"""Instances against scikit-image regionprops and rasterised shapes of known angle."""

import numpy as np
import pytest
from skimage.draw import disk, polygon
from skimage.measure import regionprops

from temstream.tracking.instances import LABELLERS, extract_instances, label_components


def random_disks(shape=(192, 224), n=40, seed=0):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape, bool)
    for _ in range(n):
        r = rng.integers(0, shape[0])
        c = rng.integers(0, shape[1])
        rr, cc = disk((r, c), rng.uniform(2, 9), shape=shape)
        m[rr, cc] = True
    return m


def rasterised(n, phi, radius=12, size=64, rod=False):
    """Polygon with a vertex at angle phi (counter-clockwise on screen)."""
    m = np.zeros((size, size), bool)
    cx = cy = size / 2 + 0.3
    if rod:
        half_len, half_w = radius, radius / 4
        pts = np.array([[half_len, half_w], [-half_len, half_w],
                        [-half_len, -half_w], [half_len, -half_w]])
    else:
        a = 2 * np.pi * np.arange(n) / n
        pts = np.c_[radius * np.cos(a), radius * np.sin(a)]
    c, s = np.cos(phi), np.sin(phi)
    p = pts @ np.array([[c, s], [-s, c]])
    rr, cc = polygon(cy - p[:, 1], cx + p[:, 0], m.shape)
    m[rr, cc] = True
    return m


def test_properties_equal_regionprops():
    mask = random_disks()
    labels, t = extract_instances(mask, min_area=1, n_fold=2)
    props = regionprops(labels)
    assert len(props) == len(t["x"]) == labels.max()
    np.testing.assert_array_equal(t["label"], [p.label for p in props])
    np.testing.assert_allclose(t["area"], [p.area for p in props])
    np.testing.assert_allclose(t["y"], [p.centroid[0] for p in props], atol=1e-9)
    np.testing.assert_allclose(t["x"], [p.centroid[1] for p in props], atol=1e-9)
    np.testing.assert_allclose(t["perimeter"], [p.perimeter for p in props], atol=1e-9)
    np.testing.assert_allclose(t["eccentricity"], [p.eccentricity for p in props], atol=1e-9)
    np.testing.assert_allclose(t["equivalent_diameter"],
                               [p.equivalent_diameter_area for p in props], atol=1e-9)
    # n = 2 equals the second-moment angle: skimage measures from the row axis
    elong = np.array([p.eccentricity > 0.5 for p in props])
    ref = np.array([p.orientation for p in props]) + np.pi / 2
    d = (t["angle"] - ref + np.pi / 2) % np.pi - np.pi / 2
    assert elong.sum() >= 3
    np.testing.assert_allclose(d[elong], 0, atol=1e-9)
    assert t["score"].dtype == np.float32 and np.all(t["score"] == 1)
    assert t["layer"].dtype == np.int8 and np.all(t["layer"] == 0)
    assert t["label"].dtype == np.int32 and labels.dtype == np.int32


@pytest.mark.parametrize("labeller", LABELLERS)
def test_labellers_same_partition(labeller):
    mask = random_disks(seed=3)
    ref, n_ref = label_components(mask, labeller="skimage")
    lab, n = label_components(mask, labeller=labeller)
    assert n == n_ref
    # same partition: a bijection between label values
    pairs = np.unique(np.c_[ref.ravel(), lab.ravel()], axis=0)
    assert len(pairs) == n + 1
    assert np.array_equal((lab > 0), mask)


@pytest.mark.parametrize("n_fold,rod,tol_deg", [(2, True, 1.5), (3, False, 1.5), (4, False, 3.0)])
def test_orientation_of_rasterised_shapes(n_fold, rod, tol_deg):
    rng = np.random.default_rng(n_fold)
    period = 2 * np.pi / n_fold
    errs = []
    for phi in rng.uniform(-np.pi, np.pi, 30):
        _, t = extract_instances(rasterised(n_fold, phi, rod=rod), n_fold=n_fold)
        assert len(t["angle"]) == 1
        assert -period / 2 - 1e-12 <= t["angle"][0] <= period / 2 + 1e-12
        errs.append((t["angle"][0] - phi + period / 2) % period - period / 2)
    assert np.degrees(np.max(np.abs(errs))) < tol_deg
    assert t["orientation_strength"][0] > 0.3


def test_orientation_strength_low_for_disk():
    m = np.zeros((64, 64), bool)
    rr, cc = disk((32, 32), 14)
    m[rr, cc] = True
    _, t = extract_instances(m, n_fold=4)
    assert t["orientation_strength"][0] < 0.1  # pixel grid leaves ~0.03; a square gives 0.42


def test_probability_weighted_centroid_and_score():
    p = np.zeros((2, 40, 40), np.float32)
    p[0] = 1
    p[1, 10:20, 10:20] = 0.6
    p[1, 10:20, 15:20] = 1.0   # the right half is more certain
    p[0] = 1 - p[1]
    _, t = extract_instances(p)
    w = p[1, 10:20, 10:20]
    cols = np.arange(10, 20)
    assert t["x"][0] == pytest.approx((w.sum(0) * cols).sum() / w.sum())
    assert t["y"][0] == pytest.approx(14.5)
    assert t["score"][0] == pytest.approx(np.maximum(p[0], p[1])[10:20, 10:20].mean())
    img = np.zeros((40, 40))
    img[10:20, 10:12] = 5.0
    img[10:20, 12:20] = 1.0
    _, ti = extract_instances(p, intensity=img)
    assert ti["x"][0] == pytest.approx((img[10:20, 10:20].sum(0) * cols).sum() / img.sum())


def test_min_area_drops_and_relabels():
    m = np.zeros((50, 50), bool)
    m[2:4, 2:4] = True          # 4 px
    m[10:20, 10:20] = True      # 100 px
    m[30:33, 30:33] = True      # 9 px
    labels, t = extract_instances(m, min_area=8)
    assert labels.max() == 2
    np.testing.assert_array_equal(t["area"], [100, 9])
    assert np.all(labels[2:4, 2:4] == 0)
    assert set(np.unique(labels)) == {0, 1, 2}
    np.testing.assert_array_equal(t["label"], [1, 2])


def test_boundary_class_separates_touching():
    h = w = 48
    p = np.zeros((3, h, w), np.float32)
    p[0] = 1
    a = np.zeros((h, w), bool)
    b = np.zeros((h, w), bool)
    a[10:30, 5:22] = True
    b[10:30, 22:40] = True
    for m in (a, b):
        inner = np.zeros_like(m)
        inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        p[1][inner] = 0.9
        p[2][m & ~inner] = 0.9
    p[0] = 1 - p[1] - p[2]
    labels, t = extract_instances(p, classes=("background", "particle", "boundary"))
    assert labels.max() == 2
    # cores grown back into the boundary ring: areas close to the full squares
    np.testing.assert_allclose(np.sort(t["area"]), np.sort([a.sum(), b.sum()]), rtol=0.08)
    # same mask as one class would merge them
    two = np.stack([p[0], p[1] + p[2]])
    assert extract_instances(two)[0].max() == 1


def test_layers():
    p = np.zeros((4, 40, 40), np.float32)
    p[0] = 1
    p[:, 5:15, 5:15] = [[[0.1]], [[0.7]], [[0.1]], [[0.1]]]
    p[:, 20:30, 20:30] = [[[0.1]], [[0.1]], [[0.2]], [[0.6]]]
    labels, t = extract_instances(p, classes=("background", "layer_a", "layer_b", "both"))
    assert labels.max() == 2
    np.testing.assert_array_equal(t["layer"], [1, 3])
    assert t["layer"].dtype == np.int8


def test_split_touching_watershed():
    m = np.zeros((64, 80), bool)
    for c in (25, 43):
        rr, cc = disk((32, c), 10, shape=m.shape)
        m[rr, cc] = True
    assert extract_instances(m)[0].max() == 1
    labels, t = extract_instances(m, split_touching=True, split_min_distance=5)
    assert labels.max() == 2
    np.testing.assert_allclose(np.sort(t["x"]), [25, 43], atol=1.0)


def test_empty_and_bad_input():
    labels, t = extract_instances(np.zeros((2, 16, 16), np.float32))
    assert labels.max() == 0
    assert all(len(t[k]) == 0 for k in t)
    with pytest.raises(ValueError, match="boolean mask"):
        extract_instances(np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="channels"):
        extract_instances(np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="background"):
        extract_instances(np.zeros((2, 8, 8)), classes=("particle", "background"))
    with pytest.raises(ValueError, match="n_fold"):
        extract_instances(np.zeros((8, 8), bool), n_fold=0)
    with pytest.raises(ValueError, match="unknown labeller"):
        extract_instances(np.zeros((8, 8), bool), labeller="nope")
    with pytest.raises(ValueError, match="intensity"):
        extract_instances(np.ones((8, 8), bool), intensity=np.ones((4, 4)))
