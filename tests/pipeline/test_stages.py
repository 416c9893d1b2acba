"""The Instances and Link stages: outline rules, live settings, and what the configuration
selects."""

import numpy as np
import pytest

from temstream.config import ConfigError
from temstream.config.schema import InstancesConfig
from temstream.pipeline.stages import Instances, Link
from temstream.tracking.instances import extract_instances
from temstream.tracking.outlines import expected_dice_threshold


def stage(outline, **changes):
    settings = InstancesConfig(outline=outline, min_area=1, min_score=0.0, **changes)
    return Instances(settings, classes=CLASSES, threshold=0.35), settings

CLASSES = ("background", "particle", "boundary")


def _ringed_squares():
    """Two confident squares, each in a ring at P(particle) = 0.4 (above the 0.35 threshold,
    below the frame's expected-Dice threshold)."""
    p = np.zeros((3, 40, 80), np.float32)
    for x0 in (8, 48):
        p[1, 8:32, x0:x0 + 24] = 0.4
        p[1, 11:29, x0 + 3:x0 + 21] = 0.95
    p[2] = np.where(p[1] > 0, 0.02, 0.0)
    p[0] = 1 - p[1] - p[2]
    return p


def test_expected_dice_outlines_trim_the_rings_of_the_found_particles():
    p = _ringed_squares()
    at_threshold, t_found = stage("threshold")[0](p)
    dice_stage, settings = stage("expected-dice")
    drawn, t_drawn = dice_stage(p)
    assert expected_dice_threshold(1 - p[0], floor=0.35) > 0.4
    reference, _ = extract_instances(p, settings, classes=CLASSES, threshold=0.35)
    assert np.array_equal(drawn, reference)
    assert len(t_found["x"]) == len(t_drawn["x"]) == 2
    assert np.array_equal(drawn > 0, p[1] >= 0.95)
    assert np.array_equal(at_threshold > 0, p[1] >= 0.4)
    with pytest.raises(ConfigError, match="instances.outline"):
        stage("tight")


def test_half_contrast_outlines_are_redrawn_from_the_frame_the_stage_is_given():
    p = _ringed_squares()  # found at 0.35: the 24-px squares with their rings
    frame = np.full((40, 80), 1000.0)
    frame[10:30, 10:30] = 600.0  # the particles the frame shows are 20 px wide
    frame[10:30, 50:70] = 600.0
    half, settings = stage("half-contrast")
    drawn, table = half(p, frame)
    reference, _ = extract_instances(p, settings, classes=CLASSES, threshold=0.35, frame=frame)
    assert np.array_equal(drawn, reference)
    assert len(table["x"]) == 2
    assert np.abs(table["area"] - 400).max() < 20  # the frame's squares, not the 24-px rings
    # without a frame (a probabilities-only caller) the particles keep the found outlines
    found, _ = half(p)
    assert np.array_equal(found > 0, p[1] >= 0.4)


def test_update_changes_the_next_frame_and_refuses_bad_values_whole():
    p = _ringed_squares()
    live, _ = stage("threshold")
    before = live(p)[0]
    with pytest.raises(ConfigError, match="instances.min_area"):
        live.update(outline="expected-dice", min_area=-1)   # nothing of it applies
    with pytest.raises(ConfigError, match="segment.threshold"):
        live.update(threshold=1.5)
    assert live.settings.outline == "threshold" and live.threshold == 0.35
    assert np.array_equal(live(p)[0], before)
    live.update(outline="expected-dice", threshold=0.5)
    assert live.settings.outline == "expected-dice" and live.threshold == 0.5
    assert np.array_equal(live(p)[0] > 0, p[1] >= 0.95)
    with pytest.raises(ConfigError, match="unknown config key 'instances.outlines'"):
        live.update(outlines="threshold")


def test_link_search_range_applies_from_the_next_frame():
    from temstream.config.schema import TrackingConfig

    link = Link(TrackingConfig(search_range=2.0, memory=0))
    table = {"x": np.array([10.0]), "y": np.array([10.0])}
    first = link(dict(table))
    link.set_search_range(6.0)
    assert link.search_range == 6.0 and link.linker.search_range == 2.0  # not yet applied
    moved = link({"x": np.array([14.0]), "y": np.array([10.0])})  # 4 px: within 6, not 2
    assert moved.tolist() == first.tolist() and link.linker.search_range == 6.0
    with pytest.raises(ConfigError, match="tracking.search_range"):
        link.set_search_range(float("nan"))


@pytest.mark.parametrize("overrides, outline", [
    (["segment.model=default"], "expected-dice"),
    (["segment.model=default", "instances.outline=threshold"], "threshold"),
    (["segment.model=default", "instances.outline=half-contrast"], "half-contrast"),
    (["segment.model=classical"], "threshold"),   # its probabilities are not calibrated
])
def test_configuration_selects_the_outline_rule(overrides, outline):
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.stream.sources import MemorySource

    runner = build_runner(load_config(None, overrides), MemorySource([]))
    assert runner.instances.settings.outline == outline


def test_configuration_reaches_the_stage_whole():
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.stream.sources import MemorySource

    for z, level in ((0.0, 0.0), (6.5, 0.15)):
        config = load_config(None, ["instances.outline=half-contrast",
                                    f"instances.faint_contrast_z={z}",
                                    f"instances.faint_threshold={level}"])
        runner = build_runner(config, MemorySource([]))
        assert runner.instances.settings == config.instances


@pytest.mark.parametrize("classes", [CLASSES, ("background", "a", "b", "both")])
def test_warm_up_particles_exercise_the_outline_cut(classes):
    # the runner warms up on these: their rings must be cut, or the cut's kernel would first
    # compile on a live frame
    from temstream.pipeline.stages import synthetic_particles

    blank = np.zeros((len(classes), 96, 96), np.float32)
    blank[0] = 0.7
    blank[1:] = 0.3 / (len(classes) - 1)
    p = synthetic_particles(blank)
    np.testing.assert_allclose(p.sum(0), 1, atol=1e-6)
    kw = dict(classes=classes, threshold=0.35)
    _, at_threshold = Instances(InstancesConfig(outline="threshold", min_area=1), **kw)(p)
    _, drawn = Instances(InstancesConfig(outline="expected-dice", min_area=1), **kw)(p)
    assert len(drawn["x"]) == len(at_threshold["x"]) == 5
    assert (drawn["area"] < at_threshold["area"]).all()


def test_warm_up_particles_compile_the_half_contrast_kernels():
    # the runner warms up on synthetic particles in a blank frame of the detector's dtype:
    # that must run every numba kernel of the redraw, or the first live frame compiles them
    from temstream.pipeline.stages import synthetic_particles
    from temstream.tracking import edges

    blank = np.zeros((3, 96, 96), np.float32)
    blank[0] = 0.7
    blank[1:] = 0.15
    p = synthetic_particles(blank)
    half = Instances(InstancesConfig(outline="half-contrast", min_area=1), classes=CLASSES,
                     threshold=0.35)
    _, table = half(p, np.zeros((96, 96), np.uint16))
    assert len(table["x"]) == 5  # a frame without contrast keeps the found particles
    for kernel in (edges._regions, edges._grow_within, edges._fill_enclosed):
        assert kernel.signatures, kernel


@pytest.mark.parametrize("overrides, line", [
    (["segment.model=default", "instances.outline=half-contrast", "segment.tta=2"],
     "default (torch-cpu-fp32, threshold 0.35, outlines half-contrast, tta 2)"),
    (["segment.model=classical", "classical.method=li"], "classical (li threshold, dark particles)"),
])
def test_the_summary_says_what_segmented_the_frames(overrides, line):
    from temstream.cli._pipeline import build_runner, describe_segmenter
    from temstream.config import load_config
    from temstream.stream.sources import MemorySource

    runner = build_runner(load_config(None, overrides + ["segment.backend=torch"]),
                          MemorySource([]))
    assert describe_segmenter(runner) == f"segmenter         {line}"


@pytest.mark.parametrize("model", ["classical", "default"])
def test_nan_and_inf_pixels_reach_no_segmenter(model):
    """Issue 22 item 7: one NaN pixel in a float32 frame stopped the run (classical: a
    zero-size reduction). The preprocess stage replaces NaN/inf before any segmenter."""
    from temstream.config import load_config
    from temstream.pipeline.assemble import build_stages, load_segmenter_from_config

    config = load_config(None, [f"segment.model={model}"])
    stages = build_stages(config, load_segmenter_from_config(config))
    rng = np.random.default_rng(0)
    frame = rng.normal(1000, 30, (64, 64)).astype(np.float32)
    frame[20:30, 20:30] = 600
    frame[5, 5], frame[6, 6], frame[7, :] = np.nan, np.inf, -np.inf
    for image in (frame, np.full((64, 64), np.nan, np.float32)):
        prepped = stages["preprocess"](image)
        assert np.isfinite(prepped).all()
        probs = stages["segment"](prepped)
        assert np.isfinite(probs).all()
        labels, table = stages["instances"](probs, prepped)
        assert labels.shape == (64, 64)
    assert stages["preprocess"].nonfinite_frames == 2
