"""Per-layer instances of two-layer models: planes, lattice checks, layer identity."""

import numpy as np
import pytest

from temstream.config.schema import InstancesConfig
from temstream.models.arch import LAYER_CLASSES
from temstream.tracking.lattice import fit_lattice, wrap_angle
from temstream.tracking.layers import LayerLattices, extract_layers, is_layered
from testkit import LayerLevelsSegmenter, layer_probabilities, moire_movie

SETTINGS = InstancesConfig(min_area=8)


def _truth_counts(planes):
    return [len(set(np.unique(p).tolist()) - {0}) for p in planes]


def test_is_layered_tells_the_two_layer_models():
    assert is_layered(LAYER_CLASSES)
    assert not is_layered(("background", "layer_a", "layer_b", "both"))
    assert not is_layered(("background", "particle", "boundary"))


def test_every_particle_of_both_layers_with_its_full_outline():
    frames, truth, _ = moire_movie(1, size=96)
    p = LayerLevelsSegmenter()(frames[0])
    view, table, planes = extract_layers(p, SETTINGS, classes=LAYER_CLASSES)
    assert planes.shape == (2, 96, 96) and planes.dtype == np.int32
    for k in (0, 1):  # every pixel of each layer, in its own plane
        assert np.array_equal(planes[k] > 0, truth[0, k] > 0)
    assert ((planes[0] > 0) & (planes[1] > 0)).any(), "overlaps are in both planes"
    # ids are unique across planes and are the table's labels, layer = the plane
    a, b = (set(np.unique(pl).tolist()) - {0} for pl in planes)
    assert not a & b
    assert sorted(a | b) == sorted(table["label"].tolist())
    for lab, layer in zip(table["label"], table["layer"]):
        assert (planes[layer - 1] == lab).any()
    # the single-plane view shows layer B over layer A, with the same ids
    assert set(np.unique(view).tolist()) - {0} <= a | b
    assert np.array_equal(view[planes[1] > 0], planes[1][planes[1] > 0])
    n_edge = [len(set(np.unique(pl).tolist()) - {0}) for pl in truth[0]]
    found = [int((table["layer"] == k).sum()) for k in (1, 2)]
    assert found[0] >= n_edge[0] - 3 and found[1] >= n_edge[1] - 3  # tiny edge pieces dropped


def test_particles_on_the_other_layers_lattice_move_there():
    frames, truth, centres = moire_movie(1, size=128, a=16.0, r_a=4.0, r_b=4.0)
    # equal-size layers named the other way round in one corner (what a network may do):
    # the particles whose centre is there change planes
    planes = truth[0].copy()
    for k in (0, 1):
        for i, (x, y) in enumerate(centres[0][k]):
            if x < 56 and y < 56:
                lab = i + 1 + 1000 * k
                planes[1 - k][(truth[0, k] == lab) & (planes[1 - k] == 0)] = lab
                planes[k][truth[0, k] == lab] = 0
    p = layer_probabilities(planes)
    _, plain, _ = extract_layers(p, SETTINGS, classes=LAYER_CLASSES)
    _, fixed, found = extract_layers(p, SETTINGS, classes=LAYER_CLASSES,
                                     lattices=LayerLattices(complete=False))

    def wrong(table):
        bad = 0
        for k in (1, 2):
            pts = np.c_[table["x"], table["y"]][table["layer"] == k]
            d = np.min(np.hypot(*(pts[:, None] - centres[0][k - 1][None]).transpose(2, 0, 1)),
                       axis=1)
            bad += int((d > 2).sum())
        return bad

    assert wrong(plain) >= 10
    assert wrong(fixed) <= 4  # left: pieces of particles the swap merged or cut
    for k in (0, 1):
        assert np.mean((found[k] > 0) == (truth[0, k] > 0)) > 0.97


def test_layer_identity_is_kept_when_the_network_swaps_the_names():
    frames, _, centres = moire_movie(4, size=128, r_a=4.0, r_b=4.0)
    seg = LayerLevelsSegmenter(swap_calls={2, 3})
    lat = LayerLattices()
    thetas = []
    for f in frames:
        _, t, _ = extract_layers(seg(f), SETTINGS, classes=LAYER_CLASSES, lattices=lat)
        thetas.append([fit_lattice(np.c_[t["x"], t["y"]][t["layer"] == k]).theta
                       for k in (1, 2)])
    thetas = np.array(thetas)
    assert np.abs(wrap_angle(thetas - thetas[0], 60.0)).max() < 0.5
    assert abs(wrap_angle(thetas[0, 1] - thetas[0, 0], 60.0)) > 5


def test_missed_interior_sites_are_completed_where_the_layer_is_present():
    frames, truth, _ = moire_movie(1, size=128)
    lab = truth[0, 0]
    target = np.bincount(lab[40:88, 40:88].ravel())[1:].argmax() + 1   # an interior A particle
    yy, xx = np.nonzero(lab == target)
    cx, cy = xx.mean(), yy.mean()

    def has(t):
        a = t["layer"] == 1
        return bool((np.hypot(t["x"][a] - cx, t["y"][a] - cy) < 2).any())

    p = LayerLevelsSegmenter()(frames[0])
    p[3][lab == target] = 0.0   # its centre map is lost: no core, no particle of its own...
    p[1][lab == target] = 0.3   # ...and its presence is doubtful: a vacancy, left empty
    _, t0, _ = extract_layers(p, SETTINGS, classes=LAYER_CLASSES, lattices=LayerLattices())
    assert not has(t0)
    # present above the threshold (0.5) but below min(min_score, threshold + 0.1): too faint
    p[1][lab == target] = 0.55
    _, t1, _ = extract_layers(p, SETTINGS, classes=LAYER_CLASSES)
    assert not has(t1)
    # ...but at a site of its layer's lattice: completed there
    _, t2, _ = extract_layers(p, SETTINGS, classes=LAYER_CLASSES, lattices=LayerLattices())
    assert has(t2)


@pytest.mark.parametrize("bad", [np.zeros((4, 8, 8)), np.zeros((5, 8))])
def test_shapes_are_checked(bad):
    with pytest.raises(ValueError):
        extract_layers(bad, classes=LAYER_CLASSES)
