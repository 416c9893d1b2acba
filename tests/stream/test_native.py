"""Native wire format: round trip over real sockets, zero copy, and every malformed kind."""

import json
import time

import numpy as np
import pytest
import zmq

from temstream.stream import native
from temstream.stream.events import Frame, MalformedMessage, SeriesEnd, SeriesStart
from temstream.stream.publish import FramePublisher
from temstream.stream.sources import ZmqSource

from testkit import receive_all


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.float32])
def test_round_trip_over_push_pull(dtype, zmq_context):
    rng = np.random.default_rng(1)
    frames = [(rng.random((48, 80)) * 200).astype(dtype) for _ in range(3)]
    pub = FramePublisher("tcp://127.0.0.1:0", context=zmq_context)
    src = ZmqSource(pub.endpoint, context=zmq_context)
    series = pub.start_series({"detector": "test", "pixel_size_nm": 0.8})
    for i, f in enumerate(frames):
        pub.send(f, frame=10 + i, timestamp=1000.0 + i, pixel_size_nm=0.8, exposure_s=0.04)
    pub.end_series()
    events = receive_all(src, 5)
    assert isinstance(events[0], SeriesStart) and events[0].series == series
    assert events[0].meta == {"detector": "test", "pixel_size_nm": 0.8}
    assert isinstance(events[-1], SeriesEnd) and events[-1].series == series
    for i, ev in enumerate(events[1:4]):
        assert isinstance(ev, Frame)
        assert ev.index == 10 + i and ev.series == series and ev.timestamp == 1000.0 + i
        assert ev.meta == {"pixel_size_nm": 0.8, "exposure_s": 0.04}
        assert ev.image.dtype == dtype and ev.image.shape == (48, 80)
        np.testing.assert_array_equal(ev.image, frames[i])
    src.close(), pub.close()


def test_pub_sub(zmq_context):
    pub = FramePublisher("tcp://127.0.0.1:0", socket="pub", context=zmq_context)
    src = ZmqSource(pub.endpoint, socket="sub", context=zmq_context)
    time.sleep(0.2)  # slow joiner: the subscription must reach the publisher first
    img = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    pub.send(img, frame=0)
    (ev,) = receive_all(src, 2, timeout_s=2)[1:] or receive_all(src, 1)
    np.testing.assert_array_equal(ev.image, img)
    src.close(), pub.close()


def test_large_frames_are_received_without_a_copy(push_pull):
    push, pull, _ = push_pull
    img = np.random.default_rng(0).integers(0, 60000, (512, 512), dtype=np.uint16)
    header = native.encode_frame_header(img, series=1, frame=0)
    push.send(header, zmq.SNDMORE)
    push.send(img, copy=False)
    parts = pull.recv_multipart(copy=False)
    ev = native.decode(parts)
    # the array is a view of the ZeroMQ frame's buffer: same memory, nothing copied
    assert not ev.image.flags.owndata
    assert np.shares_memory(ev.image, np.frombuffer(parts[1].buffer, dtype=np.uint8))
    np.testing.assert_array_equal(ev.image, img)


def test_big_endian_is_converted():
    img = np.arange(12, dtype=">u2").reshape(3, 4)
    ev = native.decode([native.encode_frame_header(img, series=0, frame=0), img.tobytes()])
    assert ev.image.dtype.isnative
    np.testing.assert_array_equal(ev.image, np.arange(12).reshape(3, 4))


GOOD = {"htype": "temstream-frame-1", "series": 1, "frame": 0, "shape": [4, 4], "dtype": "<u2"}


def msg(header, payload=b"\0" * 32):
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [head] if payload is None else [head, payload]


MALFORMED = {
    "bad-json": msg(b"{not json"),
    "bad-json-array": msg(b"[1, 2]"),
    "unknown-htype": msg({**GOOD, "htype": "dimage-1.0"}),
    "bad-dtype": msg({**GOOD, "dtype": "<f8"}),
    "bad-shape": msg({**GOOD, "shape": [4, -4]}),
    "bad-shape-3d": msg({**GOOD, "shape": [4, 4, 4]}),
    "absurd-shape": msg({**GOOD, "shape": [10**9, 10**9]}),
    "size-mismatch": msg(GOOD, b"\0" * 31),
    "missing-part": msg(GOOD, None),
    "extra-part": msg(GOOD) + [b"x"],
    "bad-field": msg({**GOOD, "frame": -1}),
    "bad-timestamp": msg({**GOOD, "timestamp": "yesterday"}),
    "empty": [],
}
KIND = {"bad-json-array": "bad-json", "bad-shape-3d": "bad-shape", "absurd-shape": "bad-shape",
        "bad-timestamp": "bad-field", "empty": "missing-part"}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_decode_rejects_each_malformed_kind(name):
    with pytest.raises(MalformedMessage) as info:
        native.decode(MALFORMED[name])
    assert info.value.kind == KIND.get(name, name)


def test_receiver_counts_and_skips_malformed_messages(zmq_context, caplog):
    pub_sock = zmq_context.socket(zmq.PUSH)
    port = pub_sock.bind_to_random_port("tcp://127.0.0.1")
    src = ZmqSource(f"tcp://127.0.0.1:{port}", context=zmq_context)
    good = np.ones((4, 4), np.uint16)
    sent = 0
    for name, parts in MALFORMED.items():
        if parts:
            pub_sock.send_multipart(parts)
            sent += 1
        for _ in range(2):  # each malformed kind twice: logged once, counted twice
            if parts:
                pub_sock.send_multipart(parts)
    pub_sock.send_multipart([native.encode_frame_header(good, series=1, frame=0), good])
    ev = None
    deadline = time.monotonic() + 5
    while not isinstance(ev, Frame) and time.monotonic() < deadline:
        ev = src.receive(timeout_ms=100)
        # a frame whose series start was never seen is preceded by a synthetic start
        assert ev is None or isinstance(ev, Frame) or ev.meta.get("synthetic")
    assert isinstance(ev, Frame) and ev.index == 0
    assert sum(src.malformed.values()) == 3 * sent
    assert src.stats["frames"] == 1
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == len(src.malformed)  # once per kind
    src.close()
    pub_sock.close(0)
