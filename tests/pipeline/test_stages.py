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


def _row(*xs, y=10.0):
    return {"x": np.array(xs, float), "y": np.full(len(xs), y)}


def test_link_memory_does_not_count_frames_that_never_came():
    from temstream.config.schema import TrackingConfig

    link = Link(TrackingConfig(search_range=5.0, memory=1))
    first = link(_row(10.0, 60.0), 0)
    # frames 1-6 were dropped under load: nothing was seen in them, so nothing was missed
    assert link(_row(11.0, 61.0), 7).tolist() == first.tolist()
    # a frame in which particle 60 is not found uses its memory; two in a row end it
    link(_row(12.0), 8)
    link(_row(13.0), 9)
    assert link(_row(14.0, 61.0), 10).tolist() == [first[0], first[1] + 1]


def test_link_bridges_a_bad_frame_and_links_in_registered_coordinates():
    from temstream.config.schema import TrackingConfig

    link = Link(TrackingConfig(search_range=4.0, memory=0))
    a = link({**_row(10.0, 60.0), "x_reg": np.array([10.0, 60.0]),
              "y_reg": np.array([10.0, 10.0])}, 0)
    bad = link(_row(30.0, 200.0), 1, bridge=True)  # a smeared frame: looked up, not linked
    assert bad.tolist() == [-1, -1]
    # the stage jumped by 40 px: the detector coordinates moved, the registered ones did not
    b = link({**_row(50.5, 100.5), "x_reg": np.array([10.5, 60.5]),
              "y_reg": np.array([10.0, 10.0])}, 2)
    assert b.tolist() == a.tolist()  # memory 0, yet the bad frame did not end the tracks


def test_link_search_range_from_the_data():
    from temstream.config.schema import TrackingConfig

    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 1000, (150, 2))
    link = Link(TrackingConfig(search_range=0.0, memory=0))
    fixed = Link(TrackingConfig(search_range=10.0, memory=0))
    assert link.automatic and link.search_range == 10.0  # until there is data
    ids = link({"x": pos[:, 0], "y": pos[:, 1]}, 0)
    fixed({"x": pos[:, 0], "y": pos[:, 1]}, 0)
    for frame in range(1, 6):
        pos = pos + rng.normal(0, 5.0, pos.shape)  # steps of ~6 px, often beyond 10
        new = link({"x": pos[:, 0], "y": pos[:, 1]}, frame)
        old = fixed({"x": pos[:, 0], "y": pos[:, 1]}, frame)
    assert (new == ids).mean() > 0.97 and (old == ids).mean() < 0.7
    assert 16 < link.search_range < 45
    s = link.summary()
    assert s["search_range"] == "automatic" and s["frame_pairs"] == 5
    link.set_search_range(12.0)
    link({"x": pos[:, 0], "y": pos[:, 1]}, 6)
    assert not link.automatic and link.search_range == 12.0
    link.set_search_range(0)  # back to automatic
    link({"x": pos[:, 0], "y": pos[:, 1]}, 7)
    assert link.automatic and link.search_range > 16


def test_register_stage_adds_registered_coordinates():
    from temstream.config.schema import RegisterConfig
    from temstream.pipeline.stages import Register

    rng = np.random.default_rng(4)
    frame = rng.poisson(300, (96, 96)).astype(np.uint16)
    reg = Register()
    table = _row(5.0, 7.0)
    out = reg(frame, table)
    assert out.shift_x == 0.0 and table["x_reg"].tolist() == [5.0, 7.0]
    off = Register(RegisterConfig(enabled=False, quality=False))
    table = _row(5.0)
    assert off(frame, table).quality == "" and "x_reg" not in table


def test_link_keeps_tracks_that_a_stage_jump_pushed_out_of_view():
    from temstream.config.schema import TrackingConfig

    def run(with_view):
        link = Link(TrackingConfig(search_range=4.0, memory=2))
        ids = []
        for frame in range(30):
            # registered coordinates; the view (x from 0 to 100 before the jump) moves 40 px
            # right for frames 5-24: the particle at x = 20 is out of view then
            out = 5 <= frame < 25
            x0 = 40.0 if out else 0.0
            xs = [60.0] if out else [20.0, 60.0]
            view = (x0, 0.0, x0 + 100.0, 100.0) if with_view else None
            ids.append(link(_row(*xs), frame, view=view))
        return ids

    held = run(True)
    assert held[-1].tolist() == held[0].tolist()  # the same two tracks after 20 frames away
    lost = run(False)
    assert lost[-1][1] == lost[0][1] and lost[-1][0] != lost[0][0]  # memory 2 alone: a new one


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


def test_the_summary_of_a_run_without_frames_says_no_range_was_measured():
    from temstream.pipeline.runner import RunSummary

    link = Link()  # automatic, nothing seen
    lines = RunSummary(tracking=link.summary())._tracking_lines()
    assert lines == ["search range      automatic (no two frames linked)"]
