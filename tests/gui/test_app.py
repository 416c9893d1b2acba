"""The dashboard beside a real runner (in-process) and from the command line."""

import numpy as np
import pytest

import pyqtgraph  # noqa: E402,F401 - [gui] extra: run or fail, never skip

from pyqtgraph.Qt import QtCore, QtGui  # noqa: E402

from temstream.cli._pipeline import build_runner  # noqa: E402
from temstream.config import load_config  # noqa: E402
from temstream.gui import run_with_dashboard  # noqa: E402
from temstream.gui.bridge import DisplaySink  # noqa: E402
from temstream.stream.sources import MemorySource  # noqa: E402

from testkit import assert_shows_a_picture, disks_movie  # noqa: E402

pytestmark = pytest.mark.gui


def make_runner(n_frames=30, out=None, frames=None):
    config = load_config(None, ["segment.model=classical"])  # the dashboard, not the model
    if frames is None:
        frames, _ = disks_movie(n_frames=n_frames, size=96, n_disks=4)
    source = MemorySource(frames, meta={"pixel_size_nm": 0.8, "frame_time_s": 0.05})
    return config, build_runner(config, source, out=out, flow="lossless")


def test_run_with_dashboard_processes_everything_and_saves_a_snapshot(qapp, tmp_path):
    config, runner = make_runner(out=tmp_path / "rec.h5")
    shot = tmp_path / "dash.png"
    summary = run_with_dashboard(runner, config=config, snapshot=shot)
    assert summary.processed == 30 and not summary.dropped
    sink = next(s for s in runner.sinks if isinstance(s, DisplaySink))
    assert sink.processed == 30 and sink.closed
    image = QtGui.QImage(str(shot))
    assert not image.isNull() and image.width() > 500
    assert_shows_a_picture(shot)  # not a blank window


def test_closing_the_window_stops_the_runner(qapp):
    frames = (np.full((64, 64), 1000, np.uint16) for _ in range(10**9))  # endless

    def close_soon():
        for w in qapp.topLevelWidgets():
            if w.isVisible() and w.windowTitle() == "temstream":
                w.close()

    config, runner = make_runner(frames=frames)
    QtCore.QTimer.singleShot(1500, close_soon)
    summary = run_with_dashboard(runner, config=config)
    assert summary.stopped_by == "window closed"
    assert summary.processed > 0


def test_stage_errors_are_reraised(qapp):
    from temstream.pipeline.stages import Link

    config, runner = make_runner(n_frames=5)

    class Broken(Link):
        def __call__(self, table, frame=None, **kw):
            raise RuntimeError("linker exploded")

    runner.link = Broken()
    with pytest.raises(Exception, match="linker exploded"):
        run_with_dashboard(runner, config=config)


def test_demo_cli_snapshot(tmp_path):
    from temstream.cli import main

    shot = tmp_path / "demo.png"
    rc = main(["demo", "--frames", "20", "--out", str(tmp_path / "demo.h5"), "--snapshot",
               str(shot), "demo.size=128", "demo.fps=100"])
    assert rc == 0
    assert not QtGui.QImage(str(shot)).isNull()
    assert_shows_a_picture(shot)
