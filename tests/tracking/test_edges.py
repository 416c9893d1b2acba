"""Half-contrast outlines: where the edge lands, which particle owns which pixel, fallbacks."""

import numpy as np
import pytest
from scipy import ndimage

from temstream.tracking.edges import (_medians, _nearest_particle, contrast_significance,
                                      half_contrast_outlines)
from temstream.config.schema import InstancesConfig
from temstream.tracking.instances import extract_instances


def extract(p, *, threshold=0.5, frame=None, **changes):
    """The instance stage with half-contrast outlines, no seed or merge rule (two classes)."""
    settings = InstancesConfig(outline="half-contrast", min_score=0.0, faint_contrast_z=0.0)
    return extract_instances(p, settings.replace(**changes), threshold=threshold, frame=frame)


def soft_disks(shape, centres, inner, outer, *, background=1000.0, depth=400.0, sign=-1):
    """Noise-free frame of disks whose contrast falls linearly from ``depth`` at radius
    ``inner`` to 0 at ``outer``: the half-contrast edge is at (inner + outer) / 2."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    frame = np.full(shape, background)
    for cy, cx in centres:
        r = np.hypot(yy - cy, xx - cx)
        frame += sign * depth * np.clip((outer - r) / (outer - inner), 0, 1)
    return frame


def disk_labels(shape, centres, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.int32)
    for k, (cy, cx) in enumerate(centres, start=1):
        labels[np.hypot(yy - cy, xx - cx) < radius] = k
    return labels


@pytest.mark.parametrize("sign", [-1, 1], ids=["dark", "bright"])
def test_outline_lands_at_half_contrast_under_shot_noise(sign):
    centres = [(40, 40), (40, 120), (110, 80)]
    expected = soft_disks((150, 160), centres, 8.0, 16.0, sign=sign)  # half contrast: r = 12
    rng = np.random.default_rng(3)
    frame = rng.poisson(expected).astype(np.uint16)
    found = disk_labels(frame.shape, centres, 15.0)  # a network's outlines, 3 px too wide
    drawn = half_contrast_outlines(frame, found)
    truth = disk_labels(frame.shape, centres, 12.0)
    for k in (1, 2, 3):
        area = (drawn == k).sum()
        radius = np.sqrt(area / np.pi)
        assert radius == pytest.approx(12.0, abs=0.6)
        dice = 2 * ((drawn == k) & (truth == k)).sum() / (area + (truth == k).sum())
        assert dice > 0.95
    found_dice = 2 * ((found > 0) & (truth > 0)).sum() / ((found > 0).sum() + (truth > 0).sum())
    assert found_dice < 0.85  # the redraw is what fixed it


def test_speckled_particles_come_out_whole_and_grow_to_their_edge():
    centres = [(50, 50)]
    frame = soft_disks((100, 100), centres, 10.0, 14.0)  # edge at r = 12
    found = disk_labels(frame.shape, centres, 9.0)  # too small ...
    rng = np.random.default_rng(0)
    found[rng.random(found.shape) < 0.3] = 0  # ... and full of holes
    found[50, 50] = 1
    drawn = half_contrast_outlines(frame, found, smooth_px=1.0)
    truth = disk_labels(frame.shape, centres, 12.0)
    assert not ndimage.binary_fill_holes(drawn > 0)[drawn == 0].any()  # no holes
    assert 2 * ((drawn > 0) & (truth > 0)).sum() / ((drawn > 0).sum() + truth.sum()) > 0.97


def test_touching_particles_keep_their_ids_and_their_side():
    centres = [(40, 30), (40, 54)]  # outer radius 14: the soft edges overlap
    frame = soft_disks((80, 90), centres, 8.0, 14.0)
    found = disk_labels(frame.shape, centres, 12.5)
    drawn = half_contrast_outlines(frame, found, smooth_px=1.0)
    assert set(np.unique(drawn)) == {0, 1, 2}
    xx = np.mgrid[:80, :90][1]
    assert (xx[drawn == 1] <= 42).all() and (xx[drawn == 2] >= 42).all()
    for k in (1, 2):
        assert ndimage.label(drawn == k)[1] == 1  # one piece each


def test_particles_without_contrast_keep_their_found_outline():
    frame = np.full((64, 64), 500.0)
    found = disk_labels(frame.shape, [(32, 32)], 10.0)
    assert np.array_equal(half_contrast_outlines(frame, found), found)
    # a particle without background around it (it fills the frame) keeps its outline too
    whole = np.ones((40, 40), np.int32)
    assert np.array_equal(half_contrast_outlines(np.zeros((40, 40)), whole), whole)
    empty = np.zeros((40, 40), np.int32)
    assert not half_contrast_outlines(np.zeros((40, 40)), empty).any()
    with pytest.raises(ValueError, match="same"):
        half_contrast_outlines(np.zeros((40, 41)), empty)


def test_medians_match_scipy():
    rng = np.random.default_rng(2)
    values = rng.normal(100, 30, 5000).astype(np.float32)
    ids = rng.integers(1, 9, 5000)
    ids[ids == 4] = 5  # id 4 has no pixels
    got = _medians(values, ids, 10)
    want = ndimage.median(values, ids, np.arange(1, 11))
    assert np.isnan(got[[3, 8, 9]]).all()
    keep = ~np.isnan(got)
    assert np.allclose(got[keep], np.asarray(want)[keep])


def test_nearest_particle_matches_scipy_away_from_ties():
    rng = np.random.default_rng(5)
    labels = np.zeros((120, 120), np.int32)
    yy, xx = np.mgrid[:120, :120]
    for k in range(1, 9):
        cy, cx, r = rng.uniform(15, 105), rng.uniform(15, 105), rng.uniform(4, 9)
        labels[(np.hypot(yy - cy, xx - cx) < r) & (labels == 0)] = k
    dist = []
    for k in range(1, 9):  # distance to each particle, to find the pixels with a clear nearest
        dist.append(ndimage.distance_transform_edt(labels != k))
    dist = np.sort(np.stack(dist), axis=0)
    clear = (dist[1] - dist[0]) > 1.5
    exact, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    want = labels[iy, ix]
    dist, got = _nearest_particle(labels, labels > 0)
    assert np.array_equal(got[labels > 0], labels[labels > 0])
    assert (got[clear] == want[clear]).mean() > 0.995
    assert (dist[labels > 0] == 0).all()
    assert np.abs(dist - exact).max() < 0.05 * exact.max() + 0.5  # OpenCV's 5x5 mask


def test_extract_instances_redraws_outlines_and_measures_the_new_ones():
    centres = [(30, 30), (30, 80)]
    frame = soft_disks((60, 110), centres, 7.0, 13.0)  # edge at r = 10
    p = np.zeros((2, 60, 110), np.float32)
    wide = disk_labels(frame.shape, centres, 13.0) > 0
    p[1] = np.where(wide, 0.9, 0.05)
    p[0] = 1 - p[1]
    found, t_found = extract(p, min_area=1)
    drawn, t_drawn = extract(p, min_area=1, frame=frame)
    assert len(t_drawn["x"]) == len(t_found["x"]) == 2
    assert np.array_equal(t_drawn["area"], np.bincount(drawn.ravel())[1:])
    assert np.sqrt(t_drawn["area"] / np.pi) == pytest.approx([10.0, 10.0], abs=0.5)
    assert np.allclose(t_drawn["x"], t_found["x"], atol=0.1)
    with pytest.raises(ValueError, match="frame"):
        extract(p, frame=frame[:, :-1])


def test_small_particles_are_smoothed_less():
    # radius 5 next to radius 20: one 5-px Gaussian would shrink the small one's contour
    centres = [(30, 30), (30, 90)]
    yy, xx = np.mgrid[:60, :130]
    frame = (soft_disks((60, 130), centres[:1], 3.0, 7.0)
             + soft_disks((60, 130), centres[1:], 16.0, 24.0) - 1000.0)
    rng = np.random.default_rng(1)
    frame = rng.poisson(frame).astype(np.float32)
    found = np.zeros((60, 130), np.int32)
    found[np.hypot(yy - 30, xx - 30) < 7] = 1
    found[np.hypot(yy - 30, xx - 90) < 23] = 2
    drawn = half_contrast_outlines(frame, found)
    radius = np.sqrt(np.bincount(drawn.ravel())[1:] / np.pi)
    assert radius == pytest.approx([5.0, 20.0], abs=0.6)


@pytest.mark.parametrize("frame", [np.full((48, 48), np.inf), np.full((48, 48), np.nan),
                                   np.zeros((48, 48), bool)], ids=["inf", "nan", "bool"])
def test_frames_without_numbers_keep_the_found_outlines_quietly(frame):
    found = disk_labels(frame.shape, [(24, 24)], 9.0)
    with np.errstate(all="raise"):
        drawn = half_contrast_outlines(frame, found)
    assert np.array_equal(drawn, found)


def test_contrast_significance_is_the_contrast_in_standard_errors():
    # Gaussian noise of known sigma: z = depth / sigma * sqrt(area / (pi 5^2)), up to the
    # medians' sampling error
    centres = [(40, 40), (40, 120), (110, 80)]
    rng = np.random.default_rng(5)
    sigma, depths = 20.0, [10.0, 20.0, 40.0]
    frame = rng.normal(1000.0, sigma, (150, 160))
    labels = disk_labels(frame.shape, centres, 12.0)
    for k, d in enumerate(depths, start=1):
        frame[labels == k] -= d
    z = contrast_significance(frame, labels)
    area = np.bincount(labels.ravel())[1:]
    want = np.array(depths) / sigma * np.sqrt(area / (np.pi * 25.0))
    assert z == pytest.approx(want, rel=0.25)
    assert np.all(np.diff(z) > 0)
    # same for bright particles, and the noise is the ring's own
    assert contrast_significance(2000.0 - frame, labels) == pytest.approx(z, rel=1e-9)
    assert contrast_significance(3 * frame, labels) == pytest.approx(z, rel=1e-9)
    # measuring a subset changes nothing for it
    some = contrast_significance(frame, labels, which=np.array([False, True, False, True]))
    assert some.tolist() == [z[0], 0.0, z[2]]


@pytest.mark.parametrize("frame", [np.full((48, 48), np.inf), np.full((48, 48), 7.0)],
                         ids=["inf", "constant"])
def test_contrast_significance_is_zero_without_contrast_or_noise(frame):
    with np.errstate(all="raise"):
        z = contrast_significance(frame, disk_labels(frame.shape, [(24, 24)], 9.0))
    assert z.tolist() == [0.0]


def test_faint_particles_with_contrast_in_the_frame_are_kept():
    # two particles whose probabilities are below min_score: one is in the frame (a faint
    # particle, speckled output), the other is not (a speck of mottle the network half saw)
    centres = [(40, 40), (40, 120)]
    rng = np.random.default_rng(2)
    expected = soft_disks((80, 160), centres[:1], 8.0, 14.0, depth=60.0)
    frame = rng.poisson(expected).astype(np.float32)
    p = np.zeros((2, 80, 160), np.float32)
    p[1] = np.where(disk_labels(frame.shape, centres, 12.0) > 0, 0.55, 0.02)
    p[0] = 1 - p[1]
    kw = dict(min_area=1, min_score=0.65, frame=frame)
    strict, _ = extract(p, faint_contrast_z=0.0, **kw)
    rescued, table = extract(p, faint_contrast_z=4.0, **kw)
    assert strict.max() == 0
    assert len(table["x"]) == 1
    assert (table["x"][0], table["y"][0]) == pytest.approx((40, 40), abs=0.5)
    assert np.sqrt(table["area"][0] / np.pi) == pytest.approx(11.0, abs=1.0)
    # without the frame there is nothing to judge the contrast by: min_score alone
    assert extract(p, min_area=1, min_score=0.65, faint_contrast_z=4.0)[0].max() == 0


def test_particles_seen_only_below_the_threshold_are_found_when_the_frame_shows_them():
    # A: found, with a faint rim; B: seen only at 0.2 and in the frame; C: seen at 0.2, not in
    # the frame (a speck of mottle); D: in the frame, found only as a core too small to keep
    shape, level = (96, 256), 0.1
    centres = [(48, 40), (48, 100), (48, 160), (48, 220)]
    rng = np.random.default_rng(3)
    in_frame = [centres[k] for k in (0, 1, 3)]
    frame = rng.poisson(soft_disks(shape, in_frame, 8.0, 14.0, depth=100.0)).astype(np.float32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    p = np.full((2, *shape), 0.02, np.float32)
    for k, (cy, cx) in enumerate(centres):
        r = np.hypot(yy - cy, xx - cx)
        p[1][r < 15] = 0.2
        if k == 0:  # found inside its half-contrast edge, the rest of it a faint rim
            p[1][r < 8] = 0.9
        if k == 3:
            p[1][r < 3] = 0.9
    p[0] = 1 - p[1]
    kw = dict(threshold=0.5, min_area=50, min_score=0.65, frame=frame, faint_contrast_z=5.0)
    plain, _ = extract(p, faint_threshold=0.0, **kw)
    labels, table = extract(p, faint_threshold=level, **kw)
    assert plain.max() == 1
    assert labels.max() == len(table["x"]) == 3  # ids stay consecutive
    order = np.argsort(table["x"])
    assert table["x"][order] == pytest.approx([40, 100, 220], abs=1)
    assert table["y"][order] == pytest.approx([48, 48, 48], abs=1)
    # each is outlined at half of its contrast (radius 11), A's rim is not a particle of its own
    assert np.sqrt(table["area"] / np.pi) == pytest.approx(np.full(3, 11.0), abs=1.0)
    # not below the card's threshold, or without the frame to judge by: nothing is added
    assert extract(p, faint_threshold=0.6, **kw)[0].max() == 1
    no_frame = {**kw, "frame": None}
    assert extract(p, faint_threshold=level, **no_frame)[0].max() == 1
