"""The dashboard as a separate process: a subscriber on the results feed (ZeroMQ XPUB,
schema temstream-results-1, written by temstream.stream.results.ResultsPublisher)."""

import json
import threading

import numpy as np
import pytest

from temstream.gui.bridge import DisplaySink
from temstream.gui.feed import FeedSubscriber, parse_message
from temstream.pipeline.runner import FrameResult, RunSummary
from temstream.stream.events import Frame, SeriesStart
from temstream.stream.results import ResultsPublisher


def frame_result(i, n=3, size=48):
    labels = np.zeros((size, size), np.int32)
    labels[5:15, 5:15] = 1
    table = {"x": np.array([10.0 + i, 20.0, 30.0]), "y": np.array([10.0, 20.0, 30.0]),
             "area": np.full(n, 50.0), "angle": np.full(n, 0.1), "particle": np.arange(n),
             "score": np.ones(n, np.float32)}
    image = np.random.default_rng(i).integers(0, 4000, (size, size)).astype(np.uint16)
    return FrameResult(frame=Frame(image=image, series=2, index=i,
                                   meta={"pixel_size_nm": 0.5}),
                       labels=labels, table=table, stamps={"received": 0.0, "link": 0.0})


def test_parse_message_of_the_schema():
    msg = {"schema": "temstream-results-1", "series": 2, "frame": 4, "latency_ms": 3.0,
           "pixel_size_nm": 0.5, "labels": {"shape": [4, 6], "dtype": "<i4"},
           "particles": {"x": [1.0, None], "y": [2.0, 3.0], "particle": [7, 8],
                         "area": [5.0, 6.0]}}
    lab = np.arange(24, dtype=np.int32).reshape(4, 6)
    kind, (frame, meta) = parse_message([b"frame", json.dumps(msg).encode(), lab.tobytes()])
    assert kind == "frame" and frame.index == 4 and frame.series == 2
    assert frame.table["particle"].tolist() == [7, 8] and np.isnan(frame.table["x"][1])
    assert (frame.labels == lab).all() and meta == {"pixel_size_nm": 0.5}
    assert frame.latency_ms == 3.0
    summary = {"schema": "temstream-results-1", "summary": {"dropped": {"gap": 2}}}
    assert parse_message([b"summary", json.dumps(summary).encode()]) == \
        ("summary", {"dropped": {"gap": 2}})
    for bad in ([b"frame", b"not json"], [b"frame"], [b"frame", b'{"schema": "other"}'],
                [b"other", json.dumps(msg).encode()]):
        with pytest.raises(ValueError):
            parse_message(bad)


def publish_run(pub, n_frames, ready):
    """What the runner's link thread does with the publisher."""
    ready.wait(10)
    pub.wait_for_subscriber(10)
    pub.series_start(SeriesStart(2, {"pixel_size_nm": 0.5}))
    for i in range(n_frames):
        pub.write(frame_result(i))
    pub.close(RunSummary(received=n_frames + 1, processed=n_frames,
                         dropped={"queue-full": 1}))


def test_subscriber_feeds_the_sink_until_the_run_summary(zmq_context):
    pub = ResultsPublisher("tcp://127.0.0.1:0", labels=True, context=zmq_context)
    ready = threading.Event()
    sender = threading.Thread(target=publish_run, args=(pub, 12, ready))
    sender.start()
    sink = DisplaySink()
    sub = FeedSubscriber(pub.endpoint, sink, context=zmq_context)
    ready.set()
    sub.run()  # returns on the summary message
    sender.join()
    take = sink.take()
    assert sub.stopped_by == "end of run" and take.closed
    assert sub.frames_received == take.processed == 12
    assert take.meta["pixel_size_nm"] == 0.5 and take.dropped == {"queue-full": 1}
    assert take.latest.index == 11 and take.latest.labels.shape == (48, 48)
    assert take.latest.table["x"][0] == 21.0
    assert sub.health()["received"] == 13


@pytest.mark.gui
def test_feed_dashboard_snapshot(qapp, zmq_context, tmp_path):
    import pyqtgraph  # noqa: F401 - [gui] extra: run or fail, never skip
    from pyqtgraph.Qt import QtGui

    from temstream.gui import run_feed_dashboard

    pub = ResultsPublisher("tcp://127.0.0.1:0", labels=True, context=zmq_context)
    ready = threading.Event()
    ready.set()
    sender = threading.Thread(target=publish_run, args=(pub, 30, ready))
    sender.start()
    shot = tmp_path / "feed.png"
    result = run_feed_dashboard(pub.endpoint, snapshot=shot)
    sender.join()
    assert result["frames"] == 30
    image = QtGui.QImage(str(shot))
    assert not image.isNull() and image.width() > 500
    from testkit import assert_shows_a_picture

    assert_shows_a_picture(shot)  # not a blank window


def test_feed_carries_a_binned_rate_limited_frame_back_on_the_full_grid(zmq_context):
    from temstream.stream.results import bin_frame

    img = np.arange(100 * 90, dtype=np.uint16).reshape(100, 90)
    binned, b = bin_frame(img, 32)
    assert b == 4 and binned.shape == (25, 22) and binned.dtype == np.uint16
    assert binned[0, 0] == round(img[:4, :4].mean())
    assert bin_frame(img, 512)[1] == 1

    def run(pub, n, ready):
        ready.wait(10)
        pub.wait_for_subscriber(10)
        pub.series_start(SeriesStart(2, {"pixel_size_nm": 0.5}))
        for i in range(n):
            r = frame_result(i)
            r.frame.image = np.full((48, 48), 100 + i, np.uint16)
            pub.write(r)
        pub.close(RunSummary(received=n, processed=n))

    pub = ResultsPublisher("tcp://127.0.0.1:0", frames=True, frame_interval_s=3600,
                           frame_max_side=16, context=zmq_context)
    ready = threading.Event()
    sender = threading.Thread(target=run, args=(pub, 5, ready))
    sender.start()
    sink = DisplaySink()
    sub = FeedSubscriber(pub.endpoint, sink, context=zmq_context)
    ready.set()
    sub.run()
    sender.join()
    take = sink.take()
    assert pub.frames_sent == 1  # rate-limited: one frame an hour
    # the last message had no frame: the first one stays, on the full 48 x 48 grid (binned 3x)
    assert take.latest.index == 4 and take.latest.image.shape == (48, 48)
    assert (take.latest.image == 100).all() and take.latest.labels is None
    assert take.meta["frame_shape"] == (48, 48) and take.meta["feed_missing"] == ("labels",)


def test_parse_message_with_labels_and_a_binned_frame():
    msg = {"schema": "temstream-results-1", "frame": 1, "shape": [5, 6],
           "labels": {"shape": [5, 6], "dtype": "<i4"},
           "image": {"shape": [2, 3], "dtype": "<u2", "binning": 2}}
    lab = np.ones((5, 6), np.int32)
    img = np.array([[1, 2, 3], [4, 5, 6]], np.uint16)
    _, (frame, meta) = parse_message([b"frame", json.dumps(msg).encode(), lab.tobytes(),
                                      img.tobytes()])
    assert (frame.labels == 1).all() and frame.image.shape == (5, 6)
    assert frame.image[0].tolist() == [1, 1, 2, 2, 3, 3] and frame.image[4, 5] == 6
    assert meta["frame_shape"] == (5, 6)


@pytest.mark.gui
def test_dashboard_says_what_the_feed_is_missing(qapp):
    pytest.importorskip("pyqtgraph")
    from temstream.gui.bridge import DisplayFrame
    from temstream.gui.dashboard import Dashboard, feed_missing_message

    assert feed_missing_message(()) == ""
    sink = DisplaySink()
    sink.set_series(0, {"frame_shape": (40, 50), "feed_missing": ("frames", "labels")})
    sink.push(DisplayFrame(index=0, table={"x": np.array([3.0]), "y": np.array([4.0])}))
    window = Dashboard(sink, start_timer=False)
    window.refresh()
    text = window.view.message.toPlainText()
    assert window.view.message.isVisible() and "no frame and no labels" in text
    assert "results.frames=true results.labels=true" in text
    assert window.view.image.image.shape == (40, 50)  # black at the frame's size, not 1 x 1
    sink.update_meta({"feed_missing": ()})
    sink.push(DisplayFrame(index=1, image=np.ones((40, 50), np.uint16)))
    window.refresh()
    assert not window.view.message.isVisible()
    window.close()
