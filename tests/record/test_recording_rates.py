"""Recording at detector rates: direct-chunk compression, SWMR readers, crashes, full disks,
unwritable folders and several series in one run."""

import subprocess
import sys
import textwrap
import time

import h5py
import hdf5plugin  # noqa: F401 - the filters decode the direct chunks
import numpy as np
import pytest

from temstream.pipeline.runner import FrameResult
from temstream.record import (Chunk, RecorderSink, RecordingError, RecordingWriter, chunk_encoder,
                              open_recording, read_frames_info, read_particles)
from temstream.stream.events import Frame, SeriesStart

COMPRESSIONS = ["none", "gzip", "blosc2-lz4", "blosc2-zstd", "bitshuffle-lz4"]


def frames_and_labels(n=4, shape=(48, 64), seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.poisson(300, (n, *shape)).astype(np.uint16)
    labels = np.zeros((n, *shape), np.uint32)
    labels[:, 10:20, 5:25] = 3
    labels[:, 30:40, 30:60] = 7
    return frames, labels


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_compression_reads_back_bit_exact(compression, tmp_path):
    frames, labels = frames_and_labels()
    path = tmp_path / f"{compression}.h5"
    w = RecordingWriter(path, frame_shape=frames.shape[1:], frame_dtype=frames.dtype,
                        frames_compression=compression, labels_compression=compression)
    enc_f = chunk_encoder(compression, frames.dtype)
    enc_l = chunk_encoder(compression, "<u4")
    for i in range(len(frames)):
        # odd frames arrive precompressed (as RecorderSink's worker threads deliver them)
        img = enc_f(frames[i]) if enc_f and i % 2 else frames[i]
        lab = enc_l(labels[i].astype(np.int32)) if enc_l and i % 2 else labels[i]
        assert isinstance(img, Chunk) == bool(enc_f and i % 2)
        w.append(i, float(i), img, lab, {})
    w.close()
    with h5py.File(path, "r") as f:  # decoded by the HDF5 filters, not by our code
        np.testing.assert_array_equal(f["data/frames/data"][()], frames)
        np.testing.assert_array_equal(f["data/labels/data"][()], labels)


def result(i, image, labels, series=1):
    frame = Frame(image=image, series=series, index=i, timestamp=100.0 + 0.01 * i,
                  meta={"pixel_size_nm": 0.25})
    table = {"x": np.array([10.0, 20.0]), "y": np.array([5.0, 6.0]),
             "area": np.array([3.0, 4.0]), "particle": np.array([0, 1])}
    return FrameResult(frame=frame, labels=labels, table=table,
                       stamps={"received": 0.0, "link": 0.001})


@pytest.mark.parametrize("compression", ["blosc2-lz4", "bitshuffle-lz4"])
def test_recorder_sink_compresses_in_threads_and_records_two_series(compression, tmp_path):
    frames, labels = frames_and_labels(n=6)
    sink = RecorderSink(tmp_path / "r.h5", frames_compression=compression, compress_threads=2)
    sink.series_start(SeriesStart(series=1, meta={"pixel_size_nm": 0.25}))
    for i in range(3):
        sink.write(result(i, frames[i], labels[i].astype(np.int32), series=1))
    sink.series_start(SeriesStart(series=2, meta={}))
    for i in range(3):  # the detector restarted: numbering starts again
        sink.write(result(i, frames[3 + i], labels[3 + i].astype(np.int32), series=2))
    other = np.zeros((16, 16), np.uint16)  # a third series with another frame size
    sink.write(result(0, other, np.zeros((16, 16), np.int32), series=3))
    sink.close({"frames": 7})
    with open_recording(tmp_path / "r.h5") as f:
        np.testing.assert_array_equal(f["data/frames/data"][()], frames)
        np.testing.assert_array_equal(f["data/labels/data"][()], labels)
    info = read_frames_info(tmp_path / "r.h5")
    assert list(zip(info.series, info.frame)) == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    parts = read_particles(tmp_path / "r.h5")
    assert sorted(set(zip(parts.series, parts.frame))) == list(zip(info.series, info.frame))
    assert sink.paths[1].name == "r.series3.h5"
    with open_recording(sink.paths[1]) as f:
        assert f["data/frames/data"].shape == (1, 16, 16)


def test_unwritable_output_fails_before_the_run(tmp_path):
    with pytest.raises(RecordingError, match="choose a writable folder"):
        RecorderSink(tmp_path / "no" / "such" / "folder" / "r.h5")
    with pytest.raises(RecordingError, match="choose a writable folder"):
        RecorderSink(tmp_path)  # a directory


SWMR_WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from temstream.record import RecordingWriter
    w = RecordingWriter(sys.argv[1], frame_shape=(32, 32), frame_dtype=np.uint16,
                        frames_compression="blosc2-lz4", flush_interval_s=0.02, swmr=True)
    i = 0
    while True:
        w.append(i, float(i), np.full((32, 32), i, np.uint16), np.zeros((32, 32), np.uint32), {})
        i += 1
        if i == 10:
            print("ready", flush=True)
        time.sleep(0.005)
""")


def test_swmr_reader_follows_a_growing_recording_and_survives_sigkill(tmp_path):
    path = tmp_path / "swmr.h5"
    proc = subprocess.Popen([sys.executable, "-c", SWMR_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with h5py.File(path, "r", swmr=True, libver="latest") as f:
            ds = f["data/frames/data"]
            seen = [ds.shape[0]]
            deadline = time.monotonic() + 20
            while ds.shape[0] <= seen[0] + 5 and time.monotonic() < deadline:
                time.sleep(0.05)
                ds.refresh()
            assert ds.shape[0] > seen[0]  # the reader sees the file grow
            n = ds.shape[0]
            for i in range(n):
                assert ds[i, 0, 0] == i
    finally:
        proc.kill()
        proc.wait()
    with open_recording(path) as f:  # after SIGKILL: opened in SWMR read mode
        data = f["data/frames/data"]
        assert data.shape[0] >= n and not f.attrs["closed_cleanly"]
        for i in range(data.shape[0]):
            assert data[i, 0, 0] == i


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, numpy as np
    from temstream.pipeline.runner import FrameResult
    from temstream.record import RecorderSink, RecordingError
    from temstream.stream.events import Frame
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (3_000_000, 3_000_000))
    sink = RecorderSink(sys.argv[1], flush_interval_s=0.0, queue_size=2)
    rng = np.random.default_rng(0)
    for i in range(1000):
        img = np.full((128, 128), i, np.uint16)
        img[1:] = rng.integers(0, 60000, (127, 128))
        res = FrameResult(frame=Frame(image=img, series=1, index=i), stamps={"received": 0.0},
                          labels=np.zeros((128, 128), np.int32), table={})
        try:
            sink.write(res)
        except RecordingError as exc:
            print("stopped:", exc, flush=True)
            break
    try:
        sink.close({})
    except RecordingError:
        pass
    print("written", sink.frames_written, flush=True)
""")


def test_disk_full_ends_cleanly_and_keeps_the_frames(tmp_path):
    path = tmp_path / "full.h5"
    out = subprocess.run([sys.executable, "-c", DISK_FULL, str(path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "stopped:" in out.stdout and "keeps the first" in out.stdout
    written = int(out.stdout.split("written")[-1])
    assert 20 < written < 1000
    with open_recording(path) as f:
        data = f["data/frames/data"]
        n = data.shape[0]
        assert n >= written - 2  # at most the frames after the last flush are lost
        for i in range(n):
            assert data[i, 0, 0] == i
        assert f.attrs["recording_error"]


def test_alternating_frame_shapes_and_dtypes_lose_no_frame(tmp_path):
    """Issue 22 item 2: each switch used to reopen the other file in write mode (truncated)."""
    sink = RecorderSink(tmp_path / "alt.h5")
    sink.series_start(SeriesStart(series=1, meta={}))
    kinds = [((32, 32), np.uint16), ((16, 16), np.uint16), ((32, 32), np.float32)]
    for i in range(18):
        shape, dtype = kinds[i % 3]
        sink.write(result(i, np.full(shape, i, dtype), np.zeros(shape, np.int32), series=1))
    sink.close({"frames": 18})
    assert len(sink.paths) == 3
    seen = []
    for path in sink.paths:
        with h5py.File(path, "r") as f:  # plain h5py: every file closed cleanly
            assert bool(f.attrs["closed_cleanly"])
            seen += [int(v) for v in f["data/frames/data"][:, 0, 0]]
            info = f["frames_info"]["frame"][()]
            assert sorted(int(v) for v in f["data/frames/data"][:, 0, 0]) == sorted(info)
    assert sorted(seen) == list(range(18))
