"""Qt-free parts of the dashboard: tails, MSD, stats, rendering, the display sink, controls."""

import threading
import time

import numpy as np
import pytest

from temstream.gui.bridge import DisplayFrame, DisplaySink
from temstream.gui.accumulators import FrameTracks, MSDAccumulator, SeriesBuffer, TrackHistory
from temstream.gui.render import (label_indices, label_lut, label_outlines,
                                  to_display_uint8)
from temstream.gui.stats import (RateMeter, SizeWindow, format_bytes, latency_percentiles,
                                 nice_length, percentile_levels)
from temstream.pipeline.runner import FrameResult
from temstream.stream.events import Frame, SeriesStart


def tracks(frame, ids, x, y, angle=None):
    table = {"particle": np.asarray(ids), "x": np.asarray(x, float), "y": np.asarray(y, float)}
    if angle is not None:
        table["angle"] = np.asarray(angle, float)
    return FrameTracks.from_table(frame, table)


def test_frame_tracks_sorted_and_unlinked_dropped():
    t = tracks(0, [5, -1, 2], [1, 2, 3], [4, 5, 6])
    assert t.ids.tolist() == [2, 5]
    assert t.x.tolist() == [3.0, 1.0]


def test_tails_group_by_track_in_time_order_with_connect():
    h = TrackHistory(10)
    h.push(tracks(0, [0, 1], [0, 10], [0, 0]))
    h.push(tracks(1, [1, 0, 2], [11, 1, 20], [0, 0, 0]))
    h.push(tracks(2, [0], [2], [0]))
    x, y, connect = h.tails(10)
    # track 0: 0,1,2 ; track 1: 10,11 ; track 2: 20
    assert x.tolist() == [0, 1, 2, 10, 11, 20]
    assert connect.tolist() == [True, True, False, True, False, False]
    x2, _, c2 = h.tails(2)  # last two frames only
    assert x2.tolist() == [1, 2, 11, 20]
    assert c2.tolist() == [True, False, False, False]


def test_history_restarts_when_frames_go_back():
    h = TrackHistory(5)
    h.push(tracks(3, [0], [0], [0]))
    h.push(tracks(1, [0], [0], [0]))
    assert len(h) == 1


def test_msd_of_uniform_motion_is_v2_lag2_and_angular_msd():
    h = TrackHistory(20)
    acc = MSDAccumulator(max_lag=5)
    assert MSDAccumulator(50)._want.sum() < 25  # sparse lags by default
    vx, vy, w = 1.5, -2.0, 0.1
    for t in range(12):
        ids = np.arange(4)
        h.push(tracks(t, ids, 10 * ids + vx * t, vy * t + 0 * ids, angle=w * t + ids))
        acc.add_latest(h)
    lags, msd = acc.msd()
    assert lags.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(msd, (vx ** 2 + vy ** 2) * lags ** 2)
    alags, amsd = acc.angular_msd()
    np.testing.assert_allclose(amsd, (w * alags) ** 2)


def test_msd_uses_frame_numbers_for_lags_and_only_common_tracks():
    h = TrackHistory(10)
    acc = MSDAccumulator(max_lag=10)
    h.push(tracks(0, [0, 1], [0, 0], [0, 0]))
    acc.add_latest(h)
    h.push(tracks(3, [1, 7], [3, 99], [4, 99]))  # frames 1, 2 missing; track 7 new
    acc.add_latest(h)
    lags, msd = acc.msd()
    assert lags.tolist() == [3]
    assert msd.tolist() == [25.0]
    assert acc.angular_msd()[0].size == 0


def test_series_buffer_wraps_in_order():
    b = SeriesBuffer(3)
    for i in range(5):
        b.append(i, 10 * i)
    x, y = b.data()
    assert x.tolist() == [2, 3, 4] and y.tolist() == [20, 30, 40]


def test_stats_helpers():
    assert nice_length(73) == 50 and nice_length(19.9) == 10 and nice_length(2.0) == 2
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"
    img = np.arange(100 * 100, dtype=np.uint16).reshape(100, 100)
    lo, hi = percentile_levels(img, 1, 99)
    assert 50 < lo < 150 and 9850 < hi < 9950
    assert percentile_levels(np.zeros((5, 5))) == (0.0, 1.0)
    now = [0.0]
    meter = RateMeter(window_s=2.0, clock=lambda: now[0])
    for i in range(10):
        now[0] = i * 0.5
        rate = meter.update(30 * i)
    assert rate == pytest.approx(60.0)
    p50, p99 = latency_percentiles(range(101))
    assert p50 == 50 and p99 == pytest.approx(99)
    s = SizeWindow(2)
    s.push(np.array([np.pi * 4.0]))  # d = 4
    edges, counts = s.histogram(scale=0.5, bins=4)
    assert counts.sum() == 1 and edges[0] == pytest.approx(2.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.int32])
def test_to_display_uint8_matches_reference(dtype):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 250, (37, 53)).astype(dtype)
    out = to_display_uint8(img, (20, 200))
    ref = np.clip(np.round((img.astype(float) - 20) * 255 / 180), 0, 255)
    assert out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_label_indices_and_outlines():
    lab = np.zeros((8, 8), np.int32)
    lab[2:6, 2:6] = 3
    lab[0, 0] = 256
    idx = label_indices(lab)
    assert idx[3, 3] == 3 and idx[0, 0] == 1 + 255 % 255 and idx[7, 7] == 0
    ol = label_outlines(lab)
    assert ol[3, 3] == 0 and ol[2, 3] == 3 and ol[2, 2] == 3 and ol[7, 7] == 0
    lut = label_lut(alpha=90)
    assert lut.shape == (256, 4) and lut[0, 3] == 0 and (lut[1:, 3] == 90).all()


def result(i, n=3, size=32):
    frame = Frame(image=np.full((size, size), i, np.uint16), series=1, index=i)
    table = {"x": np.arange(n, dtype=float), "y": np.ones(n), "area": np.full(n, 9.0),
             "particle": np.arange(n), "score": np.ones(n)}
    return FrameResult(frame=frame, labels=np.zeros((size, size), np.int32), table=table,
                       stamps={"received": 1.0, "link": 1.002})


def test_display_sink_keeps_latest_frame_and_every_table():
    sink = DisplaySink(history=4)
    sink.series_start(SeriesStart(1, {"pixel_size_nm": 0.8}))
    for i in range(6):
        sink.write(result(i))
    sink.dropped({"reason": "queue-full"})
    take = sink.take()
    assert take.latest.index == 5 and take.latest.latency_ms == pytest.approx(2.0)
    assert "score" not in take.latest.table  # only the display columns
    assert [t[0] for t in take.tables] == [2, 3, 4, 5] and take.skipped == 2
    assert take.processed == 6 and take.dropped == {"queue-full": 1}
    assert take.meta["pixel_size_nm"] == 0.8 and take.new_series
    again = sink.take()
    assert again.latest is None and again.tables == [] and not again.new_series


def test_display_sink_write_never_waits_for_the_reader():
    """The pipeline hands frames to the dashboard without waiting for it: a GUI that stalls
    (busy drawing, or not taking at all) for two seconds holds back none of 5,000 writes, and
    what it has not taken is bounded (older tables are skipped and counted). A sink whose
    write waited for the reader (a bounded queue, or a lock held while drawing) fails."""
    import threading

    sink = DisplaySink(history=64)
    taken, stalled = threading.Event(), threading.Event()

    def gui():
        sink.take()
        taken.set()
        stalled.wait(10)  # drawing... (or hung)

    reader = threading.Thread(target=gui)
    reader.start()
    taken.wait(5)
    t0 = time.monotonic()
    for i in range(5_000):
        sink.write(result(i, n=1, size=4))
    took = time.monotonic() - t0
    done_while_stalled = not stalled.is_set()
    stalled.set()
    reader.join()
    assert done_while_stalled and took < 5, took
    take = sink.take()
    assert take.processed == 5_000 and len(take.tables) == 64 and take.skipped > 0


def test_display_frame_from_result_is_zero_copy():
    r = result(3)
    f = DisplayFrame.from_result(r)
    assert f.image is r.frame.image and f.labels is r.labels and f.table["x"] is r.table["x"]


def test_pipeline_control_changes_settings_between_frames(tmp_path):
    from temstream.cli._pipeline import build_runner
    from temstream.config import load_config
    from temstream.gui.control import PipelineControl
    from temstream.stream.sources import MemorySource

    runner = build_runner(load_config(None, ["segment.model=classical"]), MemorySource([]),
                          out=tmp_path / "r.h5")
    sink = DisplaySink()
    runner.sinks.append(sink)
    control = PipelineControl(runner, sink)
    instances = runner.instances
    before = instances.settings
    control.set_threshold(0.3)
    assert instances.threshold == 0.3 and control.threshold == 0.3
    with pytest.raises(ValueError, match="segment.threshold"):
        control.set_threshold(1.5)
    assert control.outline == instances.settings.outline == "threshold"  # classical
    control.set_outline("half-contrast")
    assert instances.settings == before.replace(outline="half-contrast")
    assert control.outline == "half-contrast"
    with pytest.raises(ValueError, match="instances.outline"):
        control.set_outline("tight")
    control.set_search_range(17.0)
    assert runner.link.linker.search_range != 17.0  # not before the next frame
    assert control.search_range == 17.0
    runner.link({"x": np.zeros(0), "y": np.zeros(0)})  # the link thread's next frame
    assert runner.link.linker.search_range == 17.0
    assert control.can_record and control.recording
    control.set_recording(False)
    assert control.recorder.paused and control.health()["recording"] == "paused"
    control.set_recording(True)
    assert not control.recorder.paused
    assert control.health()["queues"] == {"compute": 0, "link": 0}
    runner.run()
