"""Messages that decode correctly but stress the stages behind the decoder (issue 22, items
5-10), sent over real loopback sockets in both the native and the DECTRIS Stream V2 protocol:
huge frame and series ids (>= 2**63), metadata of the wrong type, NaN and inf pixels, numbering
that jumps, repeats and goes back, frame shapes and dtypes that alternate, and a series start
that announces a frame far beyond the pixel budget. The run must not stop, memory must stay
bounded, and every valid frame must be accounted for exactly once."""

import resource
import time

import h5py
import numpy as np
import pytest

from temstream.config import load_config
from temstream.models.classical import ClassicalSegmenter
from temstream.pipeline.assemble import build_stages
from temstream.pipeline.runner import Runner
from temstream.record import RecorderSink
from temstream.stream.publish import FramePublisher
from temstream.stream.sources import ZmqSource

from testkit import disks_movie

BIG = 2**63


def _frames():
    movie, _ = disks_movie(n_frames=6, size=64)
    u16 = movie.astype(np.uint16)
    nan = u16[2].astype(np.float32)
    nan[10:20, 10:20] = np.nan
    nan[0, :] = np.inf
    small = (movie[3][:32, :48] // 256).astype(np.uint8)
    all_nan = np.full((64, 64), np.nan, np.float32)
    s1 = 7
    s2 = BIG + 1
    # (series, index, image, meta, accepted)
    return s1, s2, [
        (s1, 0, u16[0], {"pixel_size_nm": "abc"}, True),
        (s1, 1, u16[1], {"pixel_size_nm": [1, 2]}, True),
        (s1, 2, nan, {"exposure_s": -1.0, "pixel_size_nm": 0.5}, True),
        (s1, 3, small, {}, True),                          # another shape and dtype
        (s1, 4, u16[4], {"frame_time_s": "fast"}, True),   # and back
        (s1, 4, u16[4], {}, False),                        # repeated
        (s1, 3, small, {}, False),                         # late
        (s1, 100_005, u16[5], {}, True),                   # jumps by 100,000
        (s1, BIG + 5, all_nan, {}, True),                  # id >= 2**63, every pixel NaN
        (s1, 2**64 - 1, u16[0], {}, True),                 # the largest uint64
        (s2, 0, u16[1], {}, True),                         # a series >= 2**63, joined
        (s2, 1, u16[2], {"pixel_size_nm": None}, True),    # without its start message
    ]


def _rows(paths):
    rows = []
    for p in paths:
        with h5py.File(p, "r") as f:  # plain h5py, every file
            assert bool(f.attrs["closed_cleanly"])
            info = f["frames_info"][()]
            n_data = f["data/labels/data"].shape[0]
            processed = info[info["status"] == b"processed"]
            assert len(processed) == n_data  # the table lists what the data holds
            rows += [(int(r["series"]), int(r["frame"]), int(r["count"]),
                      r["status"].decode(), r["reason"].decode()) for r in info]
    return rows


@pytest.mark.parametrize("protocol", ["native", "dectris-v2"])
def test_valid_but_hostile_messages_never_stop_the_run(protocol, zmq_context, tmp_path):
    s1, s2, frames = _frames()
    config = load_config(None, ["instances.outline=threshold", "instances.min_area=4"])
    pub = FramePublisher("tcp://127.0.0.1:0", protocol=protocol, context=zmq_context,
                         sndhwm=1000)
    src = ZmqSource(pub.endpoint, protocol=protocol, context=zmq_context, rcvhwm=1000)
    sink = RecorderSink(tmp_path / "adv.h5")
    runner = Runner(src, **build_stages(config, ClassicalSegmenter()), sinks=[sink],
                    flow="lossless", stop_at_series_end=True, idle_timeout_s=20)
    time.sleep(0.1)
    # a start that announces a 16384 x 16384 float32 frame (1 GiB): no warm-up that size
    pub.start_series({"shape": [16384, 16384], "dtype": "<f4", "pixel_size_nm": "wide"},
                     series=s1)
    for series, index, image, meta, _ in frames:
        if series != pub.series:
            pub.series = series  # the sender restarted: no start message for this series
        pub.send(image, frame=index, timestamp=1000.0 + index % 1000, **meta)
    pub.end_series()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    summary = runner.run()
    took = time.monotonic() - t0
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    pub.close(0)

    assert summary.stopped_by == "end of series", summary
    assert took < 60 and grew_mb < 500, (took, grew_mb)
    accepted = [(s, i) for s, i, _, _, ok in frames if ok]
    assert summary.processed == len(accepted)
    assert summary.anomalies["late-or-repeated"] == 2
    assert summary.anomalies["non-finite-pixels"] == 2
    bad_meta = {k: v for k, v in summary.anomalies.items() if k.startswith("bad-metadata")}
    assert sum(bad_meta.values()) >= 4, summary.anomalies
    rows = _rows(sink.paths)
    processed = sorted((s, i) for s, i, _, status, _ in rows if status == "processed")
    assert processed == sorted(accepted)
    # every index from the first to the last of each series is on exactly one row
    for series in (s1, s2):
        mine = sorted((i, c) for s, i, c, _, _ in rows if s == series)
        covered = 0
        for (i, c), (j, _) in zip(mine, mine[1:] + [(None, None)]):
            assert j is None or i + c == j  # no overlap, no hole
            covered += c
        assert covered == mine[-1][0] + mine[-1][1] - mine[0][0]
    gap = 100_000 + (BIG + 5 - 100_005 - 1) + (2**64 - 1 - (BIG + 5) - 1)
    assert summary.dropped == {"gap": gap}
