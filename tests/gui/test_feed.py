"""The dashboard as a separate process: a subscriber on a results feed (ZeroMQ PUB)."""

import json
import threading

import numpy as np
import pytest
import zmq

from temstream.gui.bridge import DisplaySink
from temstream.gui.feed import FeedSubscriber, parse_message


def feed_message(i, n=3, size=48, labels=True):
    msg = {"htype": "temstream-results-1", "series": 2, "frame": i, "n_particles": n,
           "latency_ms": 5.0, "pixel_size_nm": 0.5, "received": i + 1,
           "dropped": {"queue-full": 1},
           "particles": {"particle": list(range(n)), "x": [10.0 + i, 20.0, 30.0],
                         "y": [10.0, 20.0, 30.0], "area": [50.0] * n, "angle": [0.1] * n}}
    parts = [json.dumps(msg).encode()]
    if labels:
        lab = np.zeros((size, size), np.int32)
        lab[5:15, 5:15] = 1
        msg.update(labels_shape=[size, size], labels_dtype="<i4")
        parts = [json.dumps(msg).encode(), lab.tobytes()]
    return parts


def test_parse_message_reads_columns_labels_and_boundaries():
    kind, (frame, meta, _msg) = parse_message(feed_message(4))
    assert kind == "frame" and frame.index == 4 and frame.series == 2
    assert frame.table["x"].tolist() == [14.0, 20.0, 30.0]
    assert frame.table["particle"].dtype == np.int64
    assert frame.labels.shape == (48, 48) and frame.labels[7, 7] == 1
    assert meta == {"pixel_size_nm": 0.5}
    rows = {"frame": 1, "particles": [{"x": 1.0, "y": 2.0, "particle": 3}]}
    assert parse_message([json.dumps(rows).encode()])[1][0].table["particle"].tolist() == [3]
    start = {"htype": "temstream-series-1", "series": 5, "pixel_size_nm": 0.8}
    assert parse_message([json.dumps(start).encode()]) == \
        ("series", (5, {"series": 5, "pixel_size_nm": 0.8}))
    assert parse_message([b'{"htype": "temstream-series-end-1", "series": 5}'])[0] == "end"
    with pytest.raises(ValueError):
        parse_message([b"not json"])


class Publisher(threading.Thread):
    """Publishes feed messages until stopped (SUB sockets join late)."""

    def __init__(self, ctx):
        super().__init__(daemon=True)
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.wait(0.01):
            self.sock.send(b"garbage") if i == 3 else self.sock.send_multipart(feed_message(i))
            i += 1
        self.sock.close(0)


def test_subscriber_feeds_the_sink(zmq_context):
    pub = Publisher(zmq_context)
    pub.start()
    sink = DisplaySink()
    sub = FeedSubscriber(pub.endpoint, sink, frames=10, context=zmq_context)
    sub.run()  # returns after 10 frames
    pub.halt.set()
    pub.join()
    take = sink.take()
    assert take.processed == 10 and take.closed and sub.stopped_by == "frame limit"
    assert take.meta["pixel_size_nm"] == 0.5 and take.dropped == {"queue-full": 1}
    assert take.latest.labels.shape == (48, 48)
    assert sub.health()["received"] >= 10


@pytest.mark.gui
def test_feed_dashboard_snapshot(qapp, zmq_context, tmp_path):
    pytest.importorskip("pyqtgraph")
    from pyqtgraph.Qt import QtGui

    from temstream.gui import run_feed_dashboard

    pub = Publisher(zmq_context)
    pub.start()
    shot = tmp_path / "feed.png"
    try:
        result = run_feed_dashboard(pub.endpoint, snapshot=shot, frames=30)
    finally:
        pub.halt.set()
        pub.join()
    assert result["frames"] == 30
    assert not QtGui.QImage(str(shot)).isNull()
