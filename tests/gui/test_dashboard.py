"""The dashboard window, offscreen: builds, updates from a worker thread, survives a repaint
soak, and its snapshot shows the overlays where the particles are."""

import threading

import numpy as np
import pytest

import pyqtgraph  # noqa: E402,F401 - [gui] extra: run or fail, never skip

from pyqtgraph.Qt import QtGui  # noqa: E402

from temstream.gui.bridge import DisplaySink  # noqa: E402
from temstream.gui.dashboard import Dashboard  # noqa: E402
from temstream.pipeline.runner import FrameResult  # noqa: E402
from temstream.stream.events import Frame, SeriesStart  # noqa: E402

pytestmark = pytest.mark.gui

SIZE = 128
CENTRES = [(30.0, 40.0), (90.0, 30.0), (60.0, 100.0)]  # (x, y)
RADIUS = 8


def disk_result(i, shift=0.0, size=SIZE):
    """A grey frame with dark disks, their labels and table (particle ids 0..2)."""
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(i)
    image = rng.normal(1000, 20, (size, size))
    labels = np.zeros((size, size), np.int32)
    xs, ys = [], []
    for k, (x, y) in enumerate(CENTRES):
        x = x + shift * i
        inside = (xx - x) ** 2 + (yy - y) ** 2 <= RADIUS ** 2
        image[inside] = 600
        labels[inside] = k + 1
        xs.append(x)
        ys.append(y)
    n = len(CENTRES)
    table = {"x": np.array(xs), "y": np.array(ys), "area": np.full(n, np.pi * RADIUS ** 2),
             "angle": np.linspace(0.1, 0.3, n) + 0.01 * i, "particle": np.arange(n)}
    frame = Frame(image=image.astype(np.uint16), series=1, index=i)
    return FrameResult(frame=frame, labels=labels, table=table,
                       stamps={"received": 0.0, "link": 0.004})


@pytest.fixture
def dashboard(qtbot):
    sink = DisplaySink()
    sink.series_start(SeriesStart(1, {"pixel_size_nm": 0.5, "frame_time_s": 0.01}))
    dash = Dashboard(sink, fps=60, tail_length=10, start_timer=False)
    dash.resize(1000, 650)
    qtbot.addWidget(dash)
    dash.show()
    qtbot.waitExposed(dash)
    return dash


def rgb(image: QtGui.QImage) -> np.ndarray:
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits().asstring(h * bpl), np.uint8).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).astype(int)


def test_window_builds_with_all_items(dashboard):
    v = dashboard.view
    for item in (v.image, v.overlay, v.tails, v.centroids):
        assert item.getViewBox() is v.vb
    assert dashboard.controls.action("record").isEnabled() is False  # nothing to record
    assert not dashboard.controls.threshold.isEnabled()  # no pipeline to tune
    assert not dashboard.controls.outline.isEnabled()
    assert "input" in dashboard.health_panel.text()


def test_results_from_a_worker_thread_update_the_items(dashboard, qtbot):
    sink = dashboard.sink
    n_frames = 20

    def feed():
        for i in range(n_frames):
            sink.write(disk_result(i, shift=1.0))

    dashboard.timer.start()
    worker = threading.Thread(target=feed)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: dashboard.latest is not None
                    and dashboard.latest.index == n_frames - 1, timeout=10_000)
    qtbot.waitUntil(lambda: dashboard.history[-1].frame == n_frames - 1, timeout=10_000)
    v = dashboard.view
    assert v.image.image.shape == (SIZE, SIZE) and v.image.image.dtype == np.uint8
    assert v.overlay.isVisible() and v.overlay.image.max() == 3
    x, y = v.centroids.getData()
    np.testing.assert_allclose(np.sort(x), np.sort([c[0] + n_frames - 1 + 0.5 for c in CENTRES]))
    # every frame went into the tails (10 frames kept per track) and the MSD
    assert len(v.tails.xData) == 3 * 10
    lags, msd = dashboard.msd.msd()
    np.testing.assert_allclose(msd, lags.astype(float) ** 2)  # 1 px per frame along x
    dashboard._draw_panels()
    assert len(dashboard.panels.msd.xData) > 0 and len(dashboard.panels.amsd.xData) > 0
    assert dashboard.view.scale_text.isVisible()
    assert dashboard.view.scale_text.textItem.toPlainText().endswith("nm")
    h = dashboard.health()
    assert h["processed"] == n_frames and h["latency_p50"] == pytest.approx(4.0)


def test_toggles_pause_and_hover(dashboard):
    sink = dashboard.sink
    sink.write(disk_result(0))
    dashboard.refresh()
    c = dashboard.controls
    c.action("labels").setChecked(False)
    assert not dashboard.view.overlay.isVisible()
    c.action("labels").setChecked(True)
    c.action("outlines").setChecked(True)
    ov = dashboard.view.overlay.image
    x, y = CENTRES[0]
    assert ov[int(y), int(x)] == 0 and ov[int(y), int(x + RADIUS)] == 1  # outline only
    c.action("pause").setChecked(True)
    shown = dashboard.displayed
    sink.write(disk_result(1))
    dashboard.refresh()
    assert dashboard.latest.index == 1 and dashboard.displayed == shown  # frozen view
    c.action("pause").setChecked(False)
    assert dashboard.displayed == shown + 1
    row = dashboard.view.particle_at(x + 0.5 + 3, y + 0.5)
    assert row == 0
    text = dashboard.view.hover_text(row)
    assert "id 0" in text and "area 201 px" in text and "nm" in text and "angle" in text
    assert dashboard.view.particle_at(5.0, 5.0) is None


def test_repaint_soak_2000(dashboard, qtbot):
    """2,000 full repaints of every item (guards against binding crashes, see reference f.2)."""
    dashboard.resize(500, 350)
    sink = dashboard.sink
    frames = [disk_result(i, shift=0.5, size=64) for i in range(8)]
    painted = 0
    for i in range(2000):
        r = frames[i % 8]
        r.frame.index = i
        sink.write(r)
        dashboard.refresh()
        assert dashboard.view.image._renderRequired  # new frame set, not painted yet
        dashboard.view.viewport().repaint()  # synchronous paint of every view item
        painted += not dashboard.view.image._renderRequired
        if i % 50 == 0:
            dashboard._draw_panels()
            for plot in (dashboard.panels.counts_plot, dashboard.panels.msd_plot):
                plot.viewport().repaint()
            qtbot.wait(1)
    assert painted == 2000
    assert dashboard.displayed == 2000
    assert not dashboard.grab().isNull()


def test_snapshot_not_blank_and_overlays_where_particles_are(dashboard, tmp_path):
    sink = dashboard.sink
    for i in range(5):
        sink.write(disk_result(i))
    dashboard.refresh()
    dashboard._draw_panels()
    path = dashboard.save_snapshot(tmp_path / "shot.png")
    shot = QtGui.QImage(str(path))
    assert not shot.isNull() and shot.width() == dashboard.width()
    pixels = rgb(shot)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    view = rgb(dashboard.view.grab().toImage())

    def colour_at(x, y):
        p = dashboard.view.map_to_widget(x, y)
        return view[p.y(), p.x()]

    def saturation(c):
        return int(c.max() - c.min())

    for k, (x, y) in enumerate(CENTRES):
        # inside the disk, off the centroid marker: the label colour over the dark disk
        inside = colour_at(x + 0.5 + RADIUS / 2, y + 0.5 + RADIUS / 2)
        assert saturation(inside) > 40, (k, inside)
        # and the centroid marker at the centre
        assert saturation(colour_at(x + 0.5, y + 0.5)) > 40
    for x, y in [(5, 5), (120, 70), (10, 120)]:  # background stays grey
        assert saturation(colour_at(x + 0.5, y + 0.5)) < 12


def test_display_slows_down_while_the_pipeline_is_behind(qtbot):
    from temstream.gui.control import NoControl
    from temstream.gui.dashboard import BEHIND_FPS

    class Behind(NoControl):
        late = True

        def behind(self):
            return self.late

    control = Behind()
    dash = Dashboard(DisplaySink(), control, fps=30, start_timer=False)
    qtbot.addWidget(dash)
    assert dash.timer.interval() == 33
    dash.refresh()
    assert dash.throttled and dash.timer.interval() == round(1000 / BEHIND_FPS)
    assert "slowed" in dash.health_panel.text()
    control.late = False
    dash._panels_at = -1e9
    dash.refresh()
    assert not dash.throttled and dash.timer.interval() == 33


def test_outline_rule_box_switches_the_pipelines_instance_stage(qtbot, tmp_path):
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.gui.control import PipelineControl
    from temstream.gui.toolbar import OUTLINE_CHOICES
    from temstream.config.schema import OUTLINE_RULES
    from temstream.stream.sources import MemorySource

    assert tuple(OUTLINE_CHOICES) == OUTLINE_RULES
    runner = build_runner(load_config(None, ["segment.model=classical"]), MemorySource([]))
    sink = DisplaySink()
    runner.sinks.append(sink)
    instances = runner.instances
    dash = Dashboard(sink, PipelineControl(runner, sink), fps=30, start_timer=False)
    qtbot.addWidget(dash)
    box = dash.controls.outline
    assert box.isEnabled() and box.currentText() == instances.settings.outline == "threshold"
    box.textActivated.emit("half-contrast")  # what choosing an item in the box sends
    assert instances.settings.outline == "half-contrast"
    assert "half-contrast" in dash.status.currentMessage()


def test_msd_log_axes_label_only_1_2_5_times_powers_of_ten(qtbot):
    from temstream.gui.panels import StatsPanels

    panels = StatsPanels()
    qtbot.addWidget(panels)
    lags = np.arange(1, 51) * 0.04                     # 0.04 .. 2 s: many minor ticks
    panels.set_msd(lags, 30.0 * lags)
    panels.resize(400, 300)
    panels.show()
    qtbot.wait(50)
    axis = panels.msd_plot.getAxis("bottom")
    lo, hi = axis.range
    labels = []
    for spacing, values in axis.tickValues(lo, hi, 300):
        labels += [s for s in axis.tickStrings(values, axis.autoSIPrefixScale, spacing) if s]
    assert labels and len(labels) <= 8               # was a label on every minor tick
    assert set(labels) <= {"0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "0.01"}


def test_health_panel_fits_its_longest_text(qtbot):
    from pyqtgraph.Qt import QtGui as G

    from temstream.gui.panels import HealthPanel, health_text

    panel = HealthPanel()
    qtbot.addWidget(panel)
    full = health_text({"dropped": {"queue-full": 3}, "queues": {"compute": 1}, "recording": "on",
                        "record_bytes": 10, "skipped": 2, "state": "running", "throttled": True,
                        "shift": (3.0, -1.5), "jumps": 2, "bad_frames": {"blank": 1},
                        "search_range": 6.5, "search_auto": True})
    assert full.count("\n") + 1 == HealthPanel.MAX_LINES
    spacing = G.QFontMetrics(panel.font()).lineSpacing()
    assert panel.minimumHeight() >= spacing * HealthPanel.MAX_LINES


def test_shift_trace_and_bad_frames_are_shown(dashboard, tmp_path):
    """The registration's shift trace fills its plot; a bad frame gets a marker there, a count
    in the health text and a banner over the image."""
    from temstream.tracking.registration import Registration

    for i in range(12):
        r = disk_result(i)
        quality = "blurred" if i == 7 else ""
        r.registration = Registration(shift_x=0.3 * i + (20.0 if i >= 5 else 0.0),
                                      shift_y=-0.1 * i, jump=i == 5, quality=quality,
                                      registered=True)
        dashboard.sink.write(r)
        dashboard.refresh()
        if i == 7:
            assert dashboard.view.banner.isVisible()
            assert "blurred frame: bridged" in dashboard.view.banner.toPlainText()
            at_bad = dashboard.save_snapshot(tmp_path / "bad.png")
    assert not dashboard.view.banner.isVisible()  # the last frame is good
    dashboard._draw_panels()
    frames, xs = dashboard.panels.shift_x.getData()
    assert len(xs) == 12 and xs[-1] == pytest.approx(23.3) and frames[-1] == 11
    bad_x, _ = dashboard.panels.bad_frames.getData()
    assert list(bad_x) == [7.0]
    assert list(dashboard.panels.jumps.getData()[0]) == [5.0]
    dashboard.health_panel.set_health(dashboard.health())  # (the panel ticks at 2 Hz)
    text = dashboard.health_panel.text()
    assert "jumps 1" in text and "bad frames blurred 1 (bridged)" in text
    shot = dashboard.save_snapshot(tmp_path / "shift.png")
    assert shot.stat().st_size > 10_000
    import os
    if os.environ.get("TEMSTREAM_SAVE_SNAPSHOTS"):  # to look at it: a folder to copy it to
        import shutil
        for path in (shot, at_bad):
            shutil.copy(path, os.environ["TEMSTREAM_SAVE_SNAPSHOTS"])


def moire_result(i, frames, planes, stages):
    """A two-layer frame through the layered stages (a stand-in model), as the runner makes it."""
    probs = stages["segment"](frames[i])
    view, table, layer_labels = stages["instances"](probs, frames[i])
    table["particle"] = stages["link"](table)
    frame = Frame(image=frames[i], series=1, index=i)
    return FrameResult(frame=frame, labels=view, table=table, layer_labels=layer_labels,
                       stamps={"received": 0.0, "link": 0.004})


def test_two_layer_results_show_both_layers_in_two_colours_with_their_panels(dashboard,
                                                                             tmp_path):
    from temstream.config import load_config
    from temstream.gui.render import LAYER_RGB
    from temstream.pipeline.assemble import build_stages
    from testkit import LayerLevelsSegmenter, moire_movie

    frames, planes, centres = moire_movie(12, size=SIZE, vibration=0.5)
    stages = build_stages(load_config(overrides=["instances.min_area=8"]),
                          LayerLevelsSegmenter())
    assert dashboard.layer_panels.isHidden()
    for i in range(12):
        dashboard.sink.write(moire_result(i, frames, planes, stages))
    dashboard.refresh()
    dashboard._draw_panels()
    assert not dashboard.layer_panels.isHidden()
    frames_a, counts_a = dashboard.layers.counts[0].data()
    assert len(frames_a) == 12 and counts_a.min() > 20
    _, twist = dashboard.layers.twist.data()
    assert np.allclose(np.abs(twist), 9.0, atol=0.5)
    _, vib = dashboard.layers.vibration[1].data()
    assert len(vib) and 0.2 < vib[-1] < 1.2
    assert "(A " in dashboard.frame_label.text()
    path = dashboard.save_snapshot(tmp_path / "moire.png")
    assert path.stat().st_size > 1000
    view = rgb(dashboard.view.grab().toImage())

    def colour_at(x, y):
        p = dashboard.view.map_to_widget(x, y)
        return view[p.y(), p.x()]

    # pixels of only layer A are tinted orange (red over blue), of only layer B cyan
    last = planes[-1]
    for k, sign in ((0, 1), (1, -1)):
        ys, xs = np.nonzero((last[k] > 0) & (last[1 - k] == 0))
        pick = np.argsort((ys - SIZE / 2) ** 2 + (xs - SIZE / 2) ** 2)[:40]
        cs = np.array([colour_at(x + 0.5, y + 0.5) for x, y in zip(xs[pick], ys[pick])])
        assert sign * np.mean(cs[:, 0] - cs[:, 2]) > 20, (k, cs[:5])
    import os

    if os.environ.get("TEMSTREAM_KEEP_SNAPSHOT"):
        import shutil

        shutil.copy(path, os.environ["TEMSTREAM_KEEP_SNAPSHOT"])
