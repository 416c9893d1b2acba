"""The results feed over a real SUB socket, and a receiver that follows a restarting sender."""

import json
import time

import numpy as np
import pytest
import zmq

from temstream.pipeline.runner import FrameResult, Runner
from temstream.record import RecorderSink, read_frames_info
from temstream.stream.events import Frame, SeriesStart
from temstream.stream.publish import FramePublisher
from temstream.stream.results import EventDetector, ResultsPublisher
from temstream.stream.sources import ZmqSource


def result(i, ids, areas, labels=None):
    table = {"x": np.arange(len(ids), dtype=float), "y": np.zeros(len(ids)),
             "area": np.asarray(areas, float), "particle": np.asarray(ids)}
    return FrameResult(frame=Frame(image=np.zeros((4, 6), np.uint16), series=5, index=i,
                                   timestamp=10.0 + i), labels=labels, table=table,
                       stamps={"received": time.perf_counter(), "link": time.perf_counter()})


def test_event_detector():
    det = EventDetector(count_threshold=2, leave_after=2, grow_ratio=1.5, shrink_ratio=0.5)
    assert det(0, np.array([0, 1]), np.array([10.0, 10.0])) == [
        {"type": "track_appeared", "particle": 0}, {"type": "track_appeared", "particle": 1}]
    ev = det(1, np.array([0, 1, 2]), np.array([16.0, 10.0, 5.0]))
    assert {"type": "count_above", "threshold": 2, "count": 3} in ev
    assert {"type": "grew", "particle": 0, "area": 16.0, "first_area": 10.0, "ratio": 1.6} in ev
    assert det(2, np.array([0, 2]), np.array([17.0, 2.0])) == [
        {"type": "count_below", "threshold": 2, "count": 2},
        {"type": "shrank", "particle": 2, "area": 2.0, "first_area": 5.0, "ratio": 0.4}]
    assert det(3, np.array([0, 2]), np.array([17.0, 2.0])) == [
        {"type": "track_left", "particle": 1, "last_frame": 1}]


@pytest.mark.parametrize("labels", [False, True])
def test_results_feed_over_sub(labels, zmq_context):
    pub = ResultsPublisher("tcp://127.0.0.1:0", labels=labels, count_threshold=1,
                           context=zmq_context)
    sub = zmq_context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub.endpoint)
    assert pub.wait_for_subscriber(10)
    pub.series_start(SeriesStart(series=5, meta={"pixel_size_nm": 0.5}))
    lab = np.arange(24, dtype=np.int32).reshape(4, 6)
    pub.write(result(0, [0], [10.0], lab))
    pub.write(result(1, [0, 1], [20.0, 5.0], lab))
    pub.close({"processed": 2})
    msgs = []
    while len(msgs) < 3 and sub.poll(5000):
        msgs.append(sub.recv_multipart())
    assert [m[0] for m in msgs] == [b"frame", b"frame", b"summary"]
    first, second = json.loads(msgs[0][1]), json.loads(msgs[1][1])
    assert first["schema"] == "temstream-results-1" and first["frame"] == 0
    assert first["series"] == 5 and first["timestamp"] == 10.0 and first["pixel_size_nm"] == 0.5
    assert second["n_particles"] == 2 and second["particles"]["area"] == [20.0, 5.0]
    assert second["particles"]["particle"] == [0, 1]
    types = [e["type"] for e in second["events"]]
    assert types == ["count_above", "grew", "track_appeared"]  # in table order
    assert second["latency_ms"] >= 0
    if labels:
        assert second["labels"] == {"shape": [4, 6], "dtype": "<i4"}
        np.testing.assert_array_equal(np.frombuffer(msgs[1][2], np.int32).reshape(4, 6), lab)
    else:
        assert len(msgs[1]) == 2
    assert json.loads(msgs[2][1])["summary"] == {"processed": 2}


def test_receiver_follows_a_restarting_sender(tmp_path, zmq_context):
    """Sender closed and re-bound on the same port: the pipeline picks up the next series,
    frame numbers restart, and the recording holds both series."""
    from temstream.config.schema import InstancesConfig
    from temstream.models.classical import ClassicalSegmenter
    from temstream.pipeline.stages import Instances, Link

    from testkit import disks_movie

    frames, _ = disks_movie(n_frames=8, size=48)
    first = FramePublisher("tcp://127.0.0.1:0", protocol="dectris-v2", context=zmq_context)
    endpoint = first.endpoint
    src = ZmqSource(endpoint, protocol="dectris-v2", context=zmq_context)
    sink = RecorderSink(tmp_path / "r.h5")
    runner = Runner(src, preprocess=lambda im: im, segment=ClassicalSegmenter(),
                    instances=Instances(InstancesConfig(outline="threshold", min_area=4)),
                    link=Link(), sinks=[sink],
                    flow="lossless", stop_at_series_end=False)
    import threading

    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        s1 = first.start_series({"pixel_size_nm": 0.5})
        for i in range(4):
            first.send(frames[i], frame=i)
        first.end_series()
        deadline = time.monotonic() + 20
        while runner.summary.processed < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        first.close(linger_ms=0)  # the "detector" goes away ...
        while True:  # libzmq releases the port asynchronously after close
            try:
                second = FramePublisher(endpoint, protocol="dectris-v2", context=zmq_context)
                break
            except ValueError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        s2 = second.start_series({"pixel_size_nm": 0.5}, series=s1 + 1)  # ... and comes back
        for i in range(4):
            second.send(frames[4 + i], frame=i)  # numbering restarts
        second.end_series()
        while runner.summary.processed < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
        thread.join(30)
    second.close()
    assert runner.summary.processed == 8 and runner.summary.series == [s1, s2]
    info = read_frames_info(tmp_path / "r.h5")
    assert list(zip(info.series, info.frame)) == [(s1, i) for i in range(4)] + \
        [(s2, i) for i in range(4)]
    assert set(info.status) == {"processed"}
