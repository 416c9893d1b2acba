"""Outlines at the true edge (edge model) and the contrast test every particle must pass."""

import cv2
import numpy as np
import pytest

from temstream.config.schema import InstancesConfig
from temstream.tracking.edge_model import edge_profiles, fit_edges, fitted_outlines
from temstream.tracking.instances import extract_instances

SIZE = 96


def particle_frame(profile, radius=12.0, sigma=1.2, dose=400.0, seed=0, mfp=30.0):
    """A frame of one particle (flat disk or sphere) by Beer-Lambert attenuation, Gaussian
    blur and Poisson noise, rendered at 4x and averaged; and its true extent (pixel centres
    inside the radius)."""
    ss = 4
    yy, xx = (np.mgrid[:SIZE * ss, :SIZE * ss] + 0.5) / ss - 0.5
    r = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    if profile == "flat":
        t = np.where(r < radius, radius, 0.0)
    else:
        t = 2 * np.sqrt(np.clip(radius ** 2 - r ** 2, 0, None))
    trans = np.exp(-t / mfp).reshape(SIZE, ss, SIZE, ss).mean(axis=(1, 3))
    expected = cv2.GaussianBlur(dose * trans, (0, 0), sigma)
    frame = np.random.default_rng(seed).poisson(expected).astype(np.uint16)
    cy, cx = np.mgrid[:SIZE, :SIZE]
    truth = np.hypot(cy - SIZE / 2, cx - SIZE / 2) < radius
    return frame, truth


@pytest.mark.parametrize("profile", ["flat", "sphere"])
@pytest.mark.parametrize("start", [-2, 2])
def test_the_fitted_outline_finds_the_true_edge_from_a_wrong_one(profile, start):
    frame, truth = particle_frame(profile)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(start) + 1,) * 2)
    op = cv2.dilate if start > 0 else cv2.erode
    found = op(truth.astype(np.uint8), kernel).astype(np.int32)
    drawn, err = fitted_outlines(frame, found)
    true_r, found_r = np.sqrt(truth.sum() / np.pi), np.sqrt(found.sum() / np.pi)
    assert abs(found_r - true_r) > 1.5                      # it started well off
    assert np.sqrt(drawn.sum() / np.pi) == pytest.approx(true_r, abs=0.6)
    assert 0 < err[0] < 2


def test_a_flat_edge_is_told_from_a_spheres_and_the_blur_measured():
    fits = {}
    for profile in ("flat", "sphere"):
        frame, truth = particle_frame(profile, radius=16, sigma=1.2, dose=4000)
        mean, count, _, _ = edge_profiles(frame, truth.astype(np.int32))
        offset, sigma, shape, *_ = fit_edges(mean, count, np.array([16.0]))
        fits[profile] = (offset[0], sigma[0], shape[0])
    assert fits["flat"][2] == 0.0 and fits["sphere"][2] > 0
    assert fits["flat"][1] == pytest.approx(1.2, abs=0.45)
    assert abs(fits["flat"][0]) <= 0.5 and abs(fits["sphere"][0]) <= 0.75


def test_particles_without_a_usable_profile_keep_their_outline():
    frame = np.full((SIZE, SIZE), 100, np.uint16)        # no contrast at all
    found = np.zeros((SIZE, SIZE), np.int32)
    found[40:50, 40:50] = 1
    found[2, 2] = 2                                      # one pixel: no profile inside
    drawn, err = fitted_outlines(frame, found)
    assert np.array_equal(drawn, found) and np.isnan(err).all()


def _one_disk_probabilities(radius=14):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    fg = (np.hypot(yy - SIZE / 2, xx - SIZE / 2) < radius).astype(np.float32) * 0.9
    return np.stack([1 - fg, fg])


def test_the_stage_draws_edge_model_outlines_with_an_area_uncertainty():
    frame, truth = particle_frame("flat", radius=12)
    probs = _one_disk_probabilities(radius=14)            # found 2 px too wide
    settings = InstancesConfig(outline="edge-model", min_area=1)
    labels, table = extract_instances(probs, settings, frame=frame)
    assert len(table["x"]) == 1
    assert table["area"][0] == pytest.approx(truth.sum(), rel=0.08)
    assert 0 < table["area_err"][0] < 0.3 * table["area"][0]
    _, plain = extract_instances(probs, settings.replace(outline="threshold"), frame=frame)
    assert np.isnan(plain["area_err"]).all() and plain["area"][0] > 1.2 * truth.sum()


def test_no_particle_is_found_where_the_frame_shows_only_noise():
    rng = np.random.default_rng(3)
    noise = rng.poisson(2.0, (SIZE, SIZE)).astype(np.uint16)  # a counting detector, 0-4
    frame, _ = particle_frame("flat", radius=10, dose=60)
    probs = np.zeros((2, SIZE, SIZE), np.float32)
    probs[0] = 1
    for cy, cx in ((20, 20), (20, 70), (70, 20)):            # a segmenter's false specks
        probs[:, cy - 3:cy + 3, cx - 3:cx + 3] = np.array([0.1, 0.9], np.float32)[:, None, None]
    real = _one_disk_probabilities(radius=10)[1] > 0
    probs[:, real] = np.array([0.1, 0.9], np.float32)[:, None]
    settings = InstancesConfig(outline="threshold", min_area=1, min_contrast_z=5.0)
    _, on_noise = extract_instances(probs, settings, frame=noise)
    _, on_frame = extract_instances(probs, settings, frame=frame)
    _, untested = extract_instances(probs, settings.replace(min_contrast_z=0.0), frame=noise)
    assert len(on_noise["x"]) == 0
    assert len(untested["x"]) == 4
    assert len(on_frame["x"]) == 1                           # the particle the frame shows
    assert on_frame["x"][0] == pytest.approx(SIZE / 2 - 0.5, abs=1)
