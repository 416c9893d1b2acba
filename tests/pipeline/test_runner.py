"""The runner: frame accounting under both flow policies, gaps, errors, recording."""

import time

import numpy as np
import pytest

from temstream.models.classical import ClassicalSegmenter
from temstream.pipeline.runner import Runner, StageError
from temstream.record import RecorderSink, read_frames_info, read_particles
from temstream.stream.publish import FramePublisher
from temstream.stream.sources import MemorySource, ZmqSource
from temstream.config.schema import InstancesConfig, TrackingConfig
from temstream.pipeline.stages import Instances, Link

from testkit import disks_movie


instances = Instances(InstancesConfig(outline="threshold", min_area=4))


def make_runner(source, *, segment=None, sinks=(), **kw):
    return Runner(source, preprocess=lambda im: im, segment=segment or ClassicalSegmenter(),
                  instances=instances, link=Link(), sinks=list(sinks), **kw)


def publish(frames, zmq_context, indices=None):
    pub = FramePublisher("tcp://127.0.0.1:0", context=zmq_context, sndhwm=1000)
    src = ZmqSource(pub.endpoint, context=zmq_context, rcvhwm=1000)
    time.sleep(0.05)
    pub.start_series({"pixel_size_nm": 0.5})
    for i, f in zip(indices if indices is not None else range(len(frames)), frames):
        pub.send(f, frame=int(i), timestamp=float(i))
    pub.end_series()
    return pub, src


class SlowSegmenter(ClassicalSegmenter):
    def __call__(self, frame):
        time.sleep(0.03)
        return super().__call__(frame)


def test_live_drops_oldest_and_accounts_for_every_frame(zmq_context, tmp_path):
    frames, _ = disks_movie(n_frames=40)
    pub, src = publish(frames, zmq_context)
    out = tmp_path / "live.h5"
    runner = make_runner(src, segment=SlowSegmenter(), flow="live", queue_size=2,
                         sinks=[RecorderSink(out)])
    summary = runner.run()
    pub.close()
    assert summary.received == 40
    assert summary.dropped.get("queue-full", 0) > 0
    assert summary.processed + sum(summary.dropped.values()) == 40
    info = read_frames_info(out)
    assert sorted(info["frame"]) == list(range(40))  # every index exactly once
    assert (info["status"] == "dropped").sum() == summary.dropped["queue-full"]
    assert set(info.loc[info["status"] == "dropped", "reason"]) == {"queue-full"}
    # under live the newest frames survive: the last frame is always processed
    assert info.set_index("frame").loc[39, "status"] == "processed"


def test_lossless_drops_nothing(zmq_context, tmp_path):
    frames, _ = disks_movie(n_frames=30)
    pub, src = publish(frames, zmq_context)
    out = tmp_path / "lossless.h5"
    summary = make_runner(src, segment=SlowSegmenter(), flow="lossless", queue_size=2,
                          sinks=[RecorderSink(out)]).run()
    pub.close()
    assert summary.processed == 30 and summary.dropped == {}
    info = read_frames_info(out)
    assert list(info["frame"]) == list(range(30)) and set(info["status"]) == {"processed"}


def test_gaps_in_detector_numbering_are_recorded(zmq_context, tmp_path):
    frames, _ = disks_movie(n_frames=6)
    indices = [0, 1, 2, 5, 6, 9]
    pub, src = publish(frames, zmq_context, indices)
    out = tmp_path / "gaps.h5"
    summary = make_runner(src, flow="lossless", sinks=[RecorderSink(out)]).run()
    pub.close()
    assert summary.processed == 6 and summary.dropped == {"gap": 4}
    info = read_frames_info(out).set_index("frame")
    # one row per run of missing indices, its length in ``count``
    assert list(info.index) == [0, 1, 2, 3, 5, 6, 7, 9]
    for i in (3, 7):
        assert info.loc[i, "status"] == "dropped" and info.loc[i, "reason"] == "gap"
        assert info.loc[i, "count"] == 2
    assert (info.loc[info.status == "processed", "count"] == 1).all()
    assert read_particles(out)["frame"].isin(indices).all()


def test_stage_exception_is_reraised_with_frame_index(tmp_path):
    frames, _ = disks_movie(n_frames=10)
    out = tmp_path / "err.h5"

    def broken(probs, raw):
        broken.calls += 1
        if broken.calls == 4:
            raise ZeroDivisionError("boom")
        return instances(probs, raw)

    broken.calls = 0
    runner = Runner(MemorySource(frames), preprocess=lambda im: im,
                    segment=ClassicalSegmenter(), instances=broken, link=Link(),
                    sinks=[RecorderSink(out)], flow="lossless")
    runner.prepare()  # the kernels' warm-up calls the stage too, before any frame
    broken.calls = 0
    with pytest.raises(StageError, match="stage 'instances' failed on frame 3") as info:
        runner.run()
    assert isinstance(info.value.cause, ZeroDivisionError)
    # the recording is closed and readable, with the frames processed before the error
    table = read_frames_info(out)
    assert set(table.loc[table["status"] == "processed", "frame"]) == {0, 1, 2}
    assert (table["frame"] == 3).sum() == 1


def test_summary_counts_particles_and_tracks():
    frames, centres = disks_movie(n_frames=8, n_disks=4)
    summary = make_runner(MemorySource(frames), flow="lossless").run()
    assert summary.processed == 8
    assert summary.particles == [4] * 8
    assert summary.tracks == 4  # ids 0..3 from the in-order linker
    assert np.isfinite(summary.latency_ms(99))


def test_tracks_do_not_continue_across_series():
    from temstream.pipeline.stages import Link
    from temstream.stream.events import Frame, SeriesEnd, SeriesStart

    frames, _ = disks_movie(n_frames=4, n_disks=2)

    class TwoSeries:
        malformed = {}

        def __init__(self):
            events = []
            for series in (1, 2):
                events.append(SeriesStart(series=series))
                events += [Frame(image=f, series=series, index=i) for i, f in enumerate(frames)]
                events.append(SeriesEnd(series=series))
            self.events = iter(events)

        def receive(self, timeout_ms=100):
            return next(self.events, None)

        def close(self):
            pass

    ids = []

    class Collect:
        def series_start(self, e): pass
        def write(self, r): ids.append((r.frame.series, tuple(r.table["particle"])))
        def dropped(self, row): pass
        def close(self, s): pass

    runner = Runner(TwoSeries(), preprocess=lambda im: im, segment=ClassicalSegmenter(),
                    instances=instances, link=Link(TrackingConfig(search_range=5)),
                    sinks=[Collect()], flow="lossless", stop_at_series_end=False, idle_timeout_s=0.3)
    summary = runner.run()
    first = {i for s, t in ids if s == 1 for i in t}
    second = {i for s, t in ids if s == 2 for i in t}
    assert len(first) == 2 and len(second) == 2 and not first & second
    assert summary.tracks == 4


class BuildsOnFirstFrame(ClassicalSegmenter):
    """Takes 0.6 s on the first frame of each size, like a network compiled on first use."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def __call__(self, frame):
        if frame.shape not in [c[0] for c in self.calls]:
            time.sleep(0.6)
        self.calls.append((frame.shape, bool(frame.any())))
        return super().__call__(frame)


def _send_paced(pub, frames, meta, *, arm_s=1.0, fps=100.0):
    pub.start_series(meta)
    time.sleep(arm_s)                    # armed, waiting for the trigger
    for i, f in enumerate(frames):
        pub.send(f, frame=i, timestamp=float(i))
        time.sleep(1.0 / fps)
    pub.end_series()


@pytest.mark.parametrize("announce", [True, False])
def test_a_series_that_announces_its_frame_size_is_warmed_up_before_its_frames(
        announce, zmq_context, tmp_path):
    import threading

    frames, _ = disks_movie(n_frames=30)
    meta = {"shape": list(frames.shape[1:]), "dtype": frames.dtype.str} if announce else {}
    pub = FramePublisher("tcp://127.0.0.1:0", context=zmq_context, sndhwm=1000)
    src = ZmqSource(pub.endpoint, context=zmq_context, rcvhwm=1000)
    seg = BuildsOnFirstFrame()
    out = tmp_path / "warm.h5"
    runner = make_runner(src, segment=seg, flow="live", queue_size=2,
                         sinks=[RecorderSink(out)])
    # what `temstream run` does before it takes frames: the particle kernels are compiled
    # (or loaded from numba's cache) now, so an empty cache cannot make this test drop
    # frames (issue 22 item 22); what is left per frame size is the segmenter's set-up
    runner.prepare()
    time.sleep(0.05)
    sender = threading.Thread(target=_send_paced, args=(pub, frames, meta))
    sender.start()
    summary = runner.run()
    sender.join()
    pub.close()
    assert summary.received == 30
    assert summary.processed + sum(summary.dropped.values()) == 30
    if announce:  # one blank frame first, then every real frame in time
        assert seg.calls[0] == (frames.shape[1:], False)
        assert summary.dropped == {} and summary.processed == 30
        assert len(read_frames_info(out)) == 30  # the blank frame is not recorded
    else:         # the first real frame pays, the frames behind it are dropped
        assert seg.calls[0] == (frames.shape[1:], True)
        assert summary.dropped.get("queue-full", 0) >= 20


def test_warm_up_runs_the_compute_stages_once_and_records_nothing(tmp_path):
    frames, _ = disks_movie(n_frames=5)
    seg = BuildsOnFirstFrame()
    out = tmp_path / "w.h5"
    runner = make_runner(MemorySource(frames), segment=seg, sinks=[RecorderSink(out)],
                         flow="lossless")
    assert runner.warm_up(frames.shape[1:], frames.dtype) >= 0.6
    assert seg.calls == [(frames.shape[1:], False)]
    summary = runner.run()
    assert summary.processed == 5 and len(seg.calls) == 6
    assert len(read_frames_info(out)) == 5 and len(read_particles(out)) > 0


def test_warm_up_measures_and_links_particles_without_starting_a_track(tmp_path):
    frames, _ = disks_movie(n_frames=3)
    found, probed = [], []

    def measured(probs, raw):  # the real instance stage, counting what it finds
        labels, table = instances(probs, raw)
        found.append(len(table["x"]))
        return labels, table

    link = Link(TrackingConfig(search_range=5.0))
    probe = link.warm_up
    link.warm_up = lambda table: (probed.append(len(table["x"])), probe(table))
    out = tmp_path / "w.h5"
    runner = Runner(MemorySource(frames), preprocess=lambda im: im,
                    segment=ClassicalSegmenter(), instances=measured, link=link,
                    sinks=[RecorderSink(out)], flow="lossless")
    runner.warm_up(frames.shape[1:], frames.dtype)
    # a blank frame finds nothing; the synthetic one five particles, which were linked
    assert found[:2] == [0, 5] and probed == [5]
    runner.run()
    parts = read_particles(out)
    first = parts[parts["frame"] == parts["frame"].min()]
    # the live run's ids start at 0: the warm-up's particles left no track behind
    assert sorted(first["particle"]) == list(range(len(first)))


@pytest.mark.parametrize("meta", [
    {"shape": [10**6, 10**6], "dtype": "<u2"},      # larger than any frame may be
    {"shape": [64, 64], "dtype": "V100000000"},     # not a pixel type
    {"shape": [64, 64, 3]}, {"shape": "64x64"}, {"height": None, "width": 64},
])
def test_odd_series_announcements_are_ignored(meta, tmp_path):
    frames, _ = disks_movie(n_frames=3)
    seg = BuildsOnFirstFrame()
    summary = make_runner(MemorySource(frames, meta=meta), segment=seg,
                          flow="lossless").run()
    assert summary.processed == 3
    assert all(real for _, real in seg.calls)  # no blank warm-up frame was made


def _jumpy_disks(n_frames=16, size=128, jump_at=6, jump=(17.0, -6.0), blank_at=10, seed=0):
    """Dark disks on a textured bright field that all drift 0.5 px a frame; the stage jumps at
    ``jump_at`` and the beam is off in frame ``blank_at``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    field = rng.normal(0, 40, (size + 80, size + 80))
    import cv2
    field = cv2.GaussianBlur(field, (0, 0), 1.5)
    disks = np.array([[30, 30], [60, 30], [90, 35], [35, 60], [65, 65], [95, 90], [40, 95.0]])
    disks += rng.uniform(-3, 3, disks.shape)
    frames = []
    for t in range(n_frames):
        off = np.array([0.5 * t, 0.0]) + (np.array(jump) if t >= jump_at else 0.0)
        ox, oy = int(round(off[0])), int(round(off[1]))
        img = 1000.0 + field[40 - oy:40 - oy + size, 40 - ox:40 - ox + size]
        for x, y in disks + off:
            img[(xx - x) ** 2 + (yy - y) ** 2 <= 25] = 400.0
        if t == blank_at:
            img = np.full((size, size), 100.0)
        frames.append(rng.poisson(np.maximum(img, 1)).astype(np.uint16))
    return np.stack(frames)


def test_tracks_go_through_a_stage_jump_and_a_blank_frame(tmp_path):
    from temstream.pipeline.stages import Register

    frames = _jumpy_disks()
    out = tmp_path / "jumpy.h5"
    runner = Runner(MemorySource(frames), preprocess=lambda im: im,
                    segment=ClassicalSegmenter(), instances=instances, register=Register(),
                    link=Link(TrackingConfig(memory=0)), sinks=[RecorderSink(out)],
                    flow="lossless")
    summary = runner.run()
    info = read_frames_info(out).set_index("frame")
    assert info.loc[6, "jump"] == 1 and info["jump"].sum() == 1
    assert info.loc[6, "shift_x"] == pytest.approx(17 + 3, abs=1.0)
    assert info.loc[10, "quality"] == "blank" and (info["quality"] == "").sum() == 15
    assert np.isfinite(info["register_ms"]).all() and (info["search_range"] > 0).all()
    particles = read_particles(out)
    # whatever the classical threshold makes of the blank frame's noise starts no track, and
    # with memory 0 every disk keeps one id from the first frame to the last
    linked = particles[particles["particle"] >= 0]
    assert summary.tracks == 7 and linked["particle"].nunique() == 7
    assert (linked.groupby("particle")["frame"].nunique() == 15).all()
    # registered coordinates do not jump: each track's x_reg moves ~0.5 px a frame at most
    steps = linked.sort_values("frame").groupby("particle")["x_reg"].diff().abs()
    assert steps.max() < 2.0
    assert summary.bad_frames == {"blank": 1} and summary.jumps == 1
    assert "bad frames        blank 1 (bridged); stage jumps 1" in summary.format()
    assert summary.tracking["search_range"] == "automatic"


def test_the_kernels_are_ready_before_the_first_event_is_taken():
    """Issue 22 items 18 and 22: nothing compiles on the live path. The instance and link
    stages have run (on synthetic particles) before the runner asks its source for anything,
    also when no series start announces a frame size."""
    frames, _ = disks_movie(n_frames=3)
    order = []

    class Watch(MemorySource):
        def receive(self, timeout_ms=100):
            order.append("receive")
            return super().receive(timeout_ms)

    def measured(probs, raw):
        order.append("instances")
        return instances(probs, raw)

    link = Link(TrackingConfig(search_range=5.0))
    probe = link.warm_up
    link.warm_up = lambda table: (order.append("link-warm-up"), probe(table))
    runner = Runner(Watch(frames), preprocess=lambda im: im, segment=ClassicalSegmenter(),
                    instances=measured, link=link, flow="lossless")
    assert runner.run().processed == 3
    first = order.index("receive")
    assert "instances" in order[:first] and "link-warm-up" in order[:first]


def test_run_prepares_the_kernels_before_it_opens_its_socket(monkeypatch, tmp_path):
    """`temstream run` compiles before it connects: frames cannot queue up meanwhile."""
    from temstream.cli import _pipeline, run as run_cmd

    order = []
    real_prepare = Runner.prepare
    monkeypatch.setattr(Runner, "prepare", lambda self, *a, **k: (order.append("prepare"),
                                                                  real_prepare(self, *a, **k))[1])
    monkeypatch.setattr(Runner, "run", lambda self: (order.append("run"), self.summary)[1])
    real_source = _pipeline.zmq_source
    monkeypatch.setattr(run_cmd, "zmq_source", lambda config: (order.append("socket"),
                                                               real_source(config))[1])
    from temstream.cli import main

    assert main(["run", "--frames", "1", "--connect", "tcp://127.0.0.1:1"]) == 0
    assert order[:3] == ["prepare", "socket", "run"]


def test_prepare_compiles_for_a_segmenter_with_three_classes(caplog):
    """The U-Net's classes are background, particle, boundary: the kernels' warm-up must give
    the instance stage probabilities of that many classes."""
    frames, _ = disks_movie(n_frames=2)
    three = Instances(InstancesConfig(outline="threshold", min_area=4),
                      classes=("background", "particle", "boundary"))
    runner = Runner(MemorySource(frames), preprocess=lambda im: im, segment=ClassicalSegmenter(),
                    instances=three, link=Link(), flow="lossless")
    with caplog.at_level("WARNING"):
        runner.prepare()
    assert "could not prepare" not in caplog.text


def test_stage_timings_exclude_the_queue_waits(tmp_path):
    """Issue 28 item 4: each stage's column is its own time; the waits in the compute and link
    queues are columns of their own, and together they add up to the latency."""
    frames, _ = disks_movie(n_frames=6)
    out = tmp_path / "t.h5"

    def slow_segment(image):  # the link queue waits behind nothing; the compute one fills up
        time.sleep(0.05)
        return ClassicalSegmenter()(image)

    runner = Runner(MemorySource(frames), preprocess=lambda im: im, segment=slow_segment,
                    instances=instances, link=Link(TrackingConfig(search_range=5.0)),
                    sinks=[RecorderSink(out)], flow="lossless")
    runner.run()
    info = read_frames_info(out)
    assert (info["segment_ms"] >= 45).all()
    assert (info["preprocess_ms"] < 20).all()  # not the wait behind the slow segmenter
    parts = info[["queue_ms", "preprocess_ms", "denoise_ms", "segment_ms", "instances_ms",
                  "register_ms", "link_queue_ms", "link_ms"]].sum(axis=1)
    assert np.allclose(parts, info["latency_ms"], atol=0.01)
    assert info["queue_ms"].max() > 45  # later frames waited for the segmenter


def test_the_next_frame_is_segmented_while_this_one_is_measured():
    """Issue 28 item 2: on two cores the segmentation of frame n+1 overlaps the instances (and
    link) of frame n: the two run in different threads, and the instances in the one that
    links (so a frame's measurement and its tracks stay in order)."""
    import threading

    frames, _ = disks_movie(n_frames=4)
    seen = {}

    def watch(name, fn):
        def stage(*args, **kwargs):
            seen.setdefault(name, set()).add(threading.current_thread().name)
            return fn(*args, **kwargs)
        return stage

    h, w = frames[0].shape  # a series start that announces its size: warmed up mid-run
    runner = Runner(MemorySource(frames, meta={"shape": [h, w], "dtype": "uint16"}),
                    preprocess=lambda im: im,
                    segment=watch("segment", ClassicalSegmenter()),
                    instances=watch("instances", instances),
                    link=Link(TrackingConfig(search_range=5.0)), flow="lossless")
    assert runner.run().processed == 4
    # (the warm-ups run the stages in the caller's thread before any frame is taken)
    assert "temstream-compute" in seen["segment"] and "temstream-link" not in seen["segment"]
    assert "temstream-link" in seen["instances"] and "temstream-compute" not in seen["instances"]
