"""extract_instances against scikit-image regionprops and analytic shapes."""

import numpy as np
import pytest
from skimage.draw import disk, polygon
from skimage.measure import label, regionprops

from temstream.config.schema import InstancesConfig
from temstream.tracking.instances import (TABLE_COLUMNS, Particles, Segmentation,
                                           draw_outlines, extract_instances, find_particles,
                                           label_mask)
from temstream.tracking.outlines import expected_dice_threshold


def plain(**changes):
    """The instance stage's mechanics alone: outlines at the threshold, no seed, score or
    merge rule, particles of 8 px or more; ``changes`` switch rules on."""
    return InstancesConfig(outline="threshold", min_area=8, min_score=0.0, seed_threshold=0.0,
                           min_seed_area=0, merge_below=0.0).replace(**changes)


def extract(probabilities, *, classes=("background", "particle"), threshold=0.5,
            intensity=None, frame=None, **changes):
    return extract_instances(probabilities, plain(**changes), classes=classes,
                             threshold=threshold, intensity=intensity, frame=frame)


def _random_disks(shape, count, seed, rmin=2, rmax=9):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, bool)
    for _ in range(count):
        r = rng.uniform(rmin, rmax)
        rr, cc = disk(rng.uniform(0, shape[0], 2), r, shape=shape)
        mask[rr, cc] = True
    return mask


def _regular_polygon(shape, centre, radius, n_sides, phi, aspect=1.0):
    """Vertices at angle phi + 2 pi k / n (y down), optionally stretched along phi."""
    t = phi + 2 * np.pi * np.arange(n_sides) / n_sides
    u = radius * np.cos(t - phi) * aspect
    v = radius * np.sin(t - phi)
    x = centre[1] + u * np.cos(phi) - v * np.sin(phi)
    y = centre[0] + u * np.sin(phi) + v * np.cos(phi)
    mask = np.zeros(shape, bool)
    rr, cc = polygon(y, x, shape)
    mask[rr, cc] = True
    return mask


def _angle_error(a, b, n):
    period = 2 * np.pi / n
    return np.abs((a - b + period / 2) % period - period / 2)


def test_mask_matches_regionprops():
    mask = _random_disks((256, 300), 120, seed=1)
    labels, t = extract(mask, min_area=1)
    ref = regionprops(label(mask, connectivity=2))
    assert len(ref) == len(t["x"]) == labels.max()
    # same partition (ids may be numbered differently)
    lab_ref = label(mask, connectivity=2)
    pairs = np.unique(np.stack([labels[mask], lab_ref[mask]]), axis=1)
    assert pairs.shape[1] == len(ref)
    by_ref = {}
    for p in regionprops(labels):
        by_ref[p.label] = p
    for i, lab in enumerate(t["label"]):
        p = by_ref[lab]
        assert t["area"][i] == p.area
        assert t["x"][i] == pytest.approx(p.centroid[1], abs=1e-9)
        assert t["y"][i] == pytest.approx(p.centroid[0], abs=1e-9)
        assert t["perimeter"][i] == pytest.approx(p.perimeter, abs=1e-9)
        assert t["eccentricity"][i] == pytest.approx(p.eccentricity, abs=1e-7)
        assert t["equivalent_diameter"][i] == pytest.approx(p.equivalent_diameter_area)
    assert t["score"].dtype == np.float32 and np.all(t["score"] == 1)


def test_label_mask_gives_scipys_partition_and_boxes():
    from scipy import ndimage

    mask = _random_disks((128, 128), 40, seed=2)
    lab, bbox, area = label_mask(mask)
    ref, n = ndimage.label(mask, structure=np.ones((3, 3)))
    assert lab.max() == n
    pairs = np.unique(np.stack([lab[mask], ref[mask]]), axis=1)
    assert pairs.shape[1] == n
    assert sorted(area[1:]) == sorted(np.bincount(ref.ravel())[1:])
    for k, sl in enumerate(ndimage.find_objects(lab), start=1):
        assert tuple(bbox[k]) == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)


def test_probability_weighted_centroid_and_score():
    p = np.zeros((2, 40, 40), np.float32)
    p[0] = 1.0
    rr, cc = np.mgrid[10:20, 5:15]
    w = (0.6 + 0.04 * (cc - 5)).astype(np.float32)        # increases to the right
    p[1, 10:20, 5:15] = w
    p[0, 10:20, 5:15] = 1 - w
    labels, t = extract(p)
    assert t["x"][0] == pytest.approx((w * cc).sum() / w.sum())
    assert t["y"][0] == pytest.approx(14.5)
    assert t["score"][0] == pytest.approx(np.maximum(w, 1 - w).mean(), rel=1e-6)
    # intensity weighting overrides the probabilities
    img = np.zeros((40, 40))
    img[10:20, 5:15] = 1.0
    img[10:20, 14] = 11.0
    _, t2 = extract(p, intensity=img)
    expected = (np.arange(5, 14).sum() * 10 * 1.0 + 14 * 10 * 11.0) / (90 * 1.0 + 10 * 11.0)
    assert t2["x"][0] == pytest.approx(expected)


@pytest.mark.parametrize("n_fold,n_sides,aspect,radius,tol_deg", [
    (4, 4, 1.0, 12.0, 2.0),     # squares (cubes); angle = corner direction
    (3, 3, 1.0, 12.0, 2.5),     # triangles; angle = vertex direction
    (2, 2, 1.0, 0.0, 1.0),      # rods (handled below)
])
def test_orientation_of_polygons(n_fold, n_sides, aspect, radius, tol_deg):
    rng = np.random.default_rng(3)
    errs = []
    for phi in rng.uniform(-np.pi, np.pi, 40):
        if n_fold == 2:     # 4:1 rectangle with its long axis along phi
            c, s = np.cos(phi), np.sin(phi)
            u = np.array([16, 16, -16, -16.0])
            v = np.array([-4, 4, 4, -4.0])
            x = 32.3 + u * c - v * s
            y = 31.7 + u * s + v * c
            mask = np.zeros((64, 64), bool)
            rr, cc = polygon(y, x, mask.shape)
            mask[rr, cc] = True
        else:
            mask = _regular_polygon((64, 64), (31.7, 32.3), radius, n_sides, phi)
        _, t = extract(mask, n_fold=n_fold)
        assert len(t["angle"]) == 1
        assert -np.pi / n_fold - 1e-12 < t["angle"][0] <= np.pi / n_fold + 1e-12
        errs.append(_angle_error(t["angle"][0], phi, n_fold))
    assert np.degrees(np.median(errs)) < tol_deg
    assert np.degrees(np.max(errs)) < 3 * tol_deg + 2


def test_orientation_sign_convention_y_down():
    # rod from upper-left to lower-right on screen: +45 degrees (clockwise on screen)
    mask = np.zeros((40, 40), bool)
    for k in range(-12, 13):
        mask[20 + k, 20 + k - 1:20 + k + 2] = True
    _, t = extract(mask, n_fold=2)
    assert t["angle"][0] == pytest.approx(np.pi / 4, abs=0.01)
    _, t = extract(mask[:, ::-1], n_fold=2)       # mirrored: -45 degrees
    assert t["angle"][0] == pytest.approx(-np.pi / 4, abs=0.01)
    assert t["orientation_strength"][0] > 0.8
    assert t["eccentricity"][0] > 0.95


def test_min_area_drops_and_renumbers():
    mask = np.zeros((30, 30), bool)
    mask[2:4, 2:4] = True          # 4 px, dropped
    mask[10:15, 10:15] = True      # 25 px
    mask[20:22, 20:25] = True      # 10 px
    labels, t = extract(mask, min_area=8)
    assert list(t["label"]) == [1, 2]
    assert sorted(t["area"]) == [10.0, 25.0]
    assert set(np.unique(labels)) == {0, 1, 2}
    assert labels[3, 3] == 0
    for i, lab in enumerate(t["label"]):
        assert (labels == lab).sum() == t["area"][i]


def test_empty_frame_has_all_keys():
    labels, t = extract(np.zeros((3, 16, 16), np.float32) + [[[1]], [[0]], [[0]]],
                                  classes=("background", "particle", "boundary"))
    assert labels.dtype == np.int32 and labels.max() == 0
    assert tuple(t) == TABLE_COLUMNS
    assert all(len(v) == 0 for v in t.values())
    assert t["label"].dtype == np.int32 and t["layer"].dtype == np.int16
    assert t["score"].dtype == np.float32 and t["x"].dtype == np.float64


def test_boundary_class_splits_touching_particles():
    # two squares touching along a column that the model calls "boundary"
    p = np.zeros((3, 30, 40), np.float32)
    p[0] = 1
    p[:, 5:20, 5:30] = np.array([0.05, 0.9, 0.05], np.float32)[:, None, None]
    p[:, 5:20, 17] = np.array([0.1, 0.2, 0.7], np.float32)[:, None]
    labels, t = extract(p, classes=("background", "particle", "boundary"))
    assert len(t["x"]) == 2
    assert t["area"].sum() == 15 * 25      # the boundary column is shared out
    # the plain two-class view would see one particle
    _, t1 = extract(p[:2] / p[:2].sum(0), classes=("background", "particle"))
    assert len(t1["x"]) == 1


BOUNDARY_CLASSES = ("background", "particle", "boundary")
def _two_squares_with_a_weak_neck(neck_particle=0.6):
    # two squares joined by a column where the model is unsure (no boundary class there)
    p = np.zeros((3, 30, 40), np.float32)
    p[0] = 1
    p[:, 5:20, 5:30] = np.array([0.02, 0.95, 0.03], np.float32)[:, None, None]
    p[:, 5:20, 16:19] = np.array([1 - neck_particle - 0.1, neck_particle, 0.1],
                                 np.float32)[:, None, None]
    return p


def test_seed_threshold_keeps_weak_necks_out_of_the_seeds():
    p = _two_squares_with_a_weak_neck()
    _, low = extract(p, classes=BOUNDARY_CLASSES, threshold=0.3, seed_threshold=0.5,
                               min_area=1)
    _, high = extract(p, classes=BOUNDARY_CLASSES, threshold=0.3,
                                seed_threshold=0.85, min_area=1)
    assert len(low["x"]) == 1
    assert len(high["x"]) == 2
    assert high["area"].sum() == 15 * 25          # the neck is shared out, nothing lost


def test_unseeded_foreground_components_are_kept_whole():
    p = _two_squares_with_a_weak_neck()
    # a third, faint particle: foreground but nowhere confident enough to seed
    p[:, 24:29, 30:38] = np.array([0.3, 0.6, 0.1], np.float32)[:, None, None]
    labels, t = extract(p, classes=BOUNDARY_CLASSES, threshold=0.3,
                                  seed_threshold=0.85, min_area=1)
    assert len(t["x"]) == 3
    faint = labels[26, 34]
    assert faint > 0 and np.count_nonzero(labels == faint) == 5 * 8
    assert set(np.unique(labels[5:20, 5:30])) == {labels[10, 8], labels[10, 28]}


def test_min_seed_area_drops_speckle_seeds():
    p = _two_squares_with_a_weak_neck(neck_particle=0.6)
    p[:, 5:20, 16:19] = np.array([0.3, 0.6, 0.1], np.float32)[:, None, None]
    p[:, 12, 17] = np.array([0.02, 0.95, 0.03], np.float32)   # one confident pixel in the neck
    _, keep = extract(p, classes=BOUNDARY_CLASSES, threshold=0.3,
                                seed_threshold=0.85, min_area=1, min_seed_area=0)
    _, drop = extract(p, classes=BOUNDARY_CLASSES, threshold=0.3,
                                seed_threshold=0.85, min_area=1, min_seed_area=4)
    assert len(keep["x"]) == 3
    assert len(drop["x"]) == 2
    assert drop["area"].sum() == 15 * 25


def test_layers_convention():
    p = np.zeros((4, 30, 60), np.float32)
    p[0] = 1
    for k, c0 in enumerate((5, 25, 45), start=1):
        p[0, 5:15, c0:c0 + 8] = 0.1
        p[k, 5:15, c0:c0 + 8] = 0.9
    _, t = extract(p, classes=("background", "layer_a", "layer_b", "both"))
    order = np.argsort(t["x"])
    assert list(t["layer"][order]) == [1, 2, 3]


def test_bad_input_errors():
    with pytest.raises(ValueError, match="boolean mask"):
        extract(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="classes"):
        extract(np.zeros((3, 8, 8), np.float32))
    # documented behaviour: a NaN pixel is background, never a crash
    bad = np.zeros((2, 8, 8), np.float32)
    bad[0] = 1
    bad[:, 2:6, 2:6] = np.array([0.0, 1.0], np.float32)[:, None, None]
    bad[:, 3, 3] = np.nan
    _, t = extract(bad, min_area=1)
    assert t["area"].tolist() == [15.0] and np.isfinite(t["x"]).all()
    with pytest.raises(ValueError, match="instances.n_fold"):
        extract(np.zeros((8, 8), bool), n_fold=0)
    with pytest.raises(ValueError, match="intensity"):
        m = np.zeros((8, 8), bool)
        m[2:6, 2:6] = True
        extract(m, intensity=np.zeros((4, 4)))


def _speckled_disk_and_a_touching_pair(seed=0):
    """A large disk whose P(particle) dips along a cross of unsure pixels (its seeds fragment,
    as inside real particles), beside two disks in contact along a predicted boundary line."""
    rng = np.random.default_rng(seed)
    p = np.zeros((3, 80, 140), np.float32)
    p[0] = 1
    big = np.zeros((80, 140), bool)
    rr, cc = disk((40, 40), 30, shape=big.shape)
    big[rr, cc] = True
    part = np.where(big, 0.95, 0.0).astype(np.float32)
    # a cross of unsure pixels cuts the confident core into four seeds
    cross = big & ((np.abs(np.arange(80)[:, None] - 40) < 2) | (np.abs(np.arange(140) - 40) < 2))
    part[cross] = rng.uniform(0.6, 0.8, cross.sum())
    for cx in (95, 117):
        rr, cc = disk((40, cx), 11, shape=big.shape)
        part[rr, cc] = 0.95
    contact = np.zeros_like(big)
    contact[28:53, 105:108] = True
    contact &= part > 0
    fg = part > 0
    p[1] = np.where(contact, 0.1, part)
    p[2] = np.where(contact, 0.85, np.where(fg, 0.02, 0.0))
    p[0] = 1 - p[1] - p[2]
    return p, big


def test_merge_joins_seed_fragments_but_not_particles_split_by_a_boundary():
    p, big = _speckled_disk_and_a_touching_pair()
    kw = dict(classes=BOUNDARY_CLASSES, threshold=0.35, seed_threshold=0.85, min_seed_area=10,
              min_area=1)
    split, t_split = extract(p, **kw)
    merged, t_merged = extract(p, merge_below=0.5, merge_share=0.2, **kw)
    assert len(np.unique(split[big])) == 4                 # the cross makes four fragments
    assert len(np.unique(merged[big])) == 1 and merged[40, 40] > 0
    assert np.count_nonzero(merged == merged[40, 40]) == big.sum()
    assert len(t_merged["x"]) == 3                         # big disk + the touching pair
    assert merged[40, 95] != merged[40, 117]
    # labels stay consecutive, background stays 0, table rows follow the labels
    assert set(np.unique(merged)) == {0, 1, 2, 3}
    assert np.array_equal(t_merged["label"], [1, 2, 3])
    assert t_merged["area"].sum() == t_split["area"].sum()


def test_merge_share_keeps_particles_with_a_short_weak_neck_apart():
    # two disks joined by a short uncertain neck: weak border evidence but a small share of
    # either outline, so they stay two particles
    p = np.zeros((3, 40, 80), np.float32)
    part = np.zeros((40, 80), np.float32)
    for cx in (22, 54):
        rr, cc = disk((20, cx), 14, shape=part.shape)
        part[rr, cc] = 0.95
    part[18:23, 36:41] = 0.7
    p[1] = part
    p[2] = np.where(part > 0, 0.02, 0)
    p[0] = 1 - p[1] - p[2]
    kw = dict(classes=BOUNDARY_CLASSES, threshold=0.35, seed_threshold=0.85, min_area=1)
    _, kept = extract(p, merge_below=0.5, merge_share=0.2, **kw)
    _, joined = extract(p, merge_below=0.5, merge_share=0.0, **kw)
    assert len(kept["x"]) == 2
    assert len(joined["x"]) == 1


@pytest.mark.parametrize("classes", [("background", "particle"), BOUNDARY_CLASSES])
def test_min_score_drops_faint_detections(classes):
    # a confident square and a faint one (both above the threshold); the faint one goes
    p = np.zeros((len(classes), 30, 60), np.float32)
    p[0] = 1
    p[0, 5:20, 5:20], p[1, 5:20, 5:20] = 0.05, 0.95
    p[0, 5:20, 35:50], p[1, 5:20, 35:50] = 0.45, 0.55
    kw = dict(classes=classes, threshold=0.35, min_area=1)
    _, t_all = extract(p, **kw)
    labels, t = extract(p, min_score=0.65, **kw)
    assert len(t_all["x"]) == 2
    assert len(t["x"]) == 1 and t["x"][0] == pytest.approx(12.0)
    assert labels.max() == 1 and not labels[5:20, 35:50].any()
    # a boolean mask has no probabilities: nothing is dropped
    _, t_mask = extract(p[1] > 0.35, min_score=0.65, min_area=1)
    assert len(t_mask["x"]) == 2


@pytest.mark.parametrize("classes", [("background", "particle"), BOUNDARY_CLASSES])
def test_expected_dice_outlines_trim_rings_and_drop_particles_below_them(classes):
    # particle A: a confident core in a ring of unsure pixels; B: unsure all over (found at
    # the threshold, entirely below the frame's outline level); C: confident, no ring
    p = np.zeros((len(classes), 60, 120), np.float32)
    fg = np.zeros((60, 120), np.float32)
    for (cy, cx), r, value in [((30, 20), 14, 0.4), ((30, 20), 10, 0.95),
                               ((30, 60), 10, 0.4), ((30, 100), 10, 0.95)]:
        rr, cc = disk((cy, cx), r, shape=fg.shape)
        fg[rr, cc] = value
    p[1] = fg
    p[0] = 1 - fg
    kw = dict(classes=classes, threshold=0.35, min_area=1, seed_threshold=0.85)
    found, t_found = extract(p, **kw)
    drawn, t_drawn = extract(p, outline="expected-dice", **kw)
    level = expected_dice_threshold(fg, floor=0.35)
    assert 0.4 < level <= 0.95       # the rings and B are below the frame's level
    assert len(t_found["x"]) == 3 and len(t_drawn["x"]) == 2
    # the same particles, each reduced to its pixels at or above the level
    assert np.array_equal(drawn > 0, (found > 0) & (fg >= level))
    a, c = found[30, 20], found[30, 100]
    assert np.array_equal(drawn == 1, (found == a) & (fg >= level))
    assert np.array_equal(drawn == 2, found == c)
    assert np.array_equal(t_drawn["label"], [1, 2])
    assert np.array_equal(t_drawn["area"], np.bincount(drawn.ravel())[1:])
    assert t_drawn["x"][0] == pytest.approx(t_found["x"][0])
    assert t_drawn["area"][0] == len(disk((30, 20), 10, shape=fg.shape)[0])


def test_the_phases_called_alone_give_what_extract_instances_gives():
    p, _ = _speckled_disk_and_a_touching_pair()
    settings = InstancesConfig()           # the shipped defaults, every rule on
    seg = Segmentation.of(p, BOUNDARY_CLASSES, 0.35, settings.seed_threshold)
    parts = find_particles(seg, settings)
    assert isinstance(parts, Particles) and parts.n == 3 and not parts.keep[0]
    draw_outlines(parts, seg, settings)
    whole, table = extract_instances(p, settings, classes=BOUNDARY_CLASSES, threshold=0.35)
    assert np.array_equal(parts.kept_labels() > 0, whole > 0)
    assert len(table["x"]) == int(parts.keep.sum())


def test_settings_are_validated_once_with_the_key_named():
    from temstream.config import ConfigError

    with pytest.raises(ConfigError, match="instances.min_score"):
        InstancesConfig(min_score=1.5)
    with pytest.raises(ConfigError, match="instances.outline"):
        plain(outline="watershed")
