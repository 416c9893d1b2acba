"""Movie files of every supported format (made with the formats' own writers) open with the right
frames and calibration, and replay over ZeroMQ into a receiver and into the pipeline.

DM3/DM4, TIA SER and Velox EMD have no open writer: ``tests/formats.py`` writes minimal valid
files of each (rosettasciio, the reference reader, reads them back), so those readers run in
every CI run without third-party sample files."""

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from temstream.stream.events import Frame, SeriesEnd, SeriesStart
from temstream.stream.files import open_movie
from temstream.stream.sources import ZmqSource

from testkit import disks_movie

N, H, W = 6, 24, 40
PIXEL_NM, FRAME_S = 0.5, 0.04


@pytest.fixture(scope="module")
def movie():
    frames, _ = disks_movie(n_frames=N, size=40)
    return np.ascontiguousarray(frames[:, :H, :W])


def write_npy(path, frames):
    np.save(path, frames)
    return None, None


def write_tiff(path, frames):
    import tifffile

    tifffile.imwrite(path, frames, imagej=True, resolution=(1 / PIXEL_NM, 1 / PIXEL_NM),
                     metadata={"unit": "nm", "finterval": FRAME_S, "axes": "TYX"})
    return PIXEL_NM, FRAME_S


def write_mrc(path, frames):
    import mrcfile

    with mrcfile.new(path, frames) as mrc:
        mrc.voxel_size = PIXEL_NM * 10  # Angstrom
    return PIXEL_NM, None  # MRC has no frame time


def write_recording(path, frames):
    from temstream.record import write_movie

    write_movie(path, frames, np.zeros(frames.shape, np.uint32), pd.DataFrame({"frame": []}),
                pixel_size_nm=PIXEL_NM, frame_time_s=FRAME_S)
    return PIXEL_NM, FRAME_S


def write_ncempy_emd(path, frames):
    from ncempy.io import emd

    with emd.fileEMD(str(path), readonly=False) as f:
        f.put_emdgroup("movie", frames, [(np.arange(N) * FRAME_S, "time", "[s]"),
                                         (np.arange(H) * PIXEL_NM, "y", "[n_m]"),
                                         (np.arange(W) * PIXEL_NM, "x", "[n_m]")])
    return PIXEL_NM, FRAME_S


def write_rsciio_emd(path, frames):
    from rsciio.emd import file_writer

    axes = [{"name": n, "scale": s, "units": u, "size": k, "offset": 0.0, "navigate": n == "time"}
            for n, s, u, k in (("time", FRAME_S, "s", N), ("y", PIXEL_NM, "nm", H),
                               ("x", PIXEL_NM, "nm", W))]
    file_writer(str(path), {"data": frames, "axes": axes, "original_metadata": {},
                            "metadata": {"General": {"title": "movie"}, "Signal": {}}})
    return PIXEL_NM, FRAME_S


WRITERS = {"movie.npy": write_npy, "movie.tif": write_tiff, "movie.mrc": write_mrc,
           "recording.h5": write_recording, "ncempy.emd": write_ncempy_emd,
           "rsciio.emd": write_rsciio_emd}


@pytest.fixture(scope="module")
def files(tmp_path_factory, movie):
    folder = tmp_path_factory.mktemp("movies")
    return {name: (folder / name, *write(folder / name, movie)) for name, write in WRITERS.items()}


@pytest.mark.parametrize("name", list(WRITERS))
def test_open_movie_frames_and_calibration(name, files, movie):
    path, pixel, frame_time = files[name]
    with open_movie(path) as m:
        assert (len(m), m.shape) == (N, (H, W))
        for i in range(N):
            np.testing.assert_array_equal(m[i], movie[i])
        assert m.pixel_size_nm == (pytest.approx(pixel) if pixel else None)
        assert m.frame_time_s == (pytest.approx(frame_time) if frame_time else None)


PROPRIETARY = [  # writer, file name: made by tests/formats.py, read through rosettasciio
    ("write_dm", "movie.dm3", {"version": 3}), ("write_dm", "movie.dm4", {"version": 4}),
    ("write_ser", "movie_1.ser", {}), ("write_velox_emd", "velox.emd", {})]


@pytest.mark.parametrize("writer,name,kw", PROPRIETARY)
def test_proprietary_formats(writer, name, kw, tmp_path):
    """DM3/DM4, TIA SER and Velox EMD run in every CI run (issue 22 item 25): the files are
    written by the tests (tests/formats.py), no third-party sample data needed."""
    import formats

    movie = (np.arange(5 * 24 * 20) % 65000).astype(np.uint16).reshape(5, 24, 20)
    path = tmp_path / name
    getattr(formats, writer)(path, movie, 0.25, 0.04, **kw)
    with open_movie(path) as m:
        assert (len(m), m.shape) == (5, (24, 20))
        for i in range(5):
            np.testing.assert_array_equal(m[i], movie[i])
        assert m.pixel_size_nm == pytest.approx(0.25, rel=1e-6)
        assert m.frame_time_s == pytest.approx(0.04, rel=1e-6)
    out = tmp_path / "out.hspy"
    assert run_cli("process", str(path), "--out", str(out), "--no-progress") == 0
    with h5py.File(out, "r") as f:
        assert f["data/frames/data"].shape == (5, 24, 20)
        assert f["microscope"].attrs["pixel_size_nm"] == pytest.approx(0.25, rel=1e-6)


def test_unsupported_and_missing_files(tmp_path):
    (tmp_path / "x.avi").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported format"):
        open_movie(tmp_path / "x.avi")
    with pytest.raises(FileNotFoundError):
        open_movie(tmp_path / "missing.mrc")


# -- replay ------------------------------------------------------------------------------------
def start_replay(path, port, *extra):
    return subprocess.Popen([sys.executable, "-m", "temstream", "replay", str(path), "--publish",
                             f"tcp://127.0.0.1:{port}", "--quiet", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collect(src, until=SeriesEnd, timeout_s=30):
    events, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ev = src.receive(timeout_ms=100)
        if ev is not None:
            events.append(ev)
            if isinstance(ev, until):
                break
    return events


@pytest.mark.parametrize("name,protocol", [("movie.mrc", "dectris-v2"), ("movie.tif", "native"),
                                           ("rsciio.emd", "dectris-v1")])
def test_replay_cli_carries_frames_and_metadata(name, protocol, files, movie, zmq_context):
    path, pixel, frame_time = files[name]
    port = free_port()
    src = ZmqSource(f"tcp://127.0.0.1:{port}", protocol=protocol, context=zmq_context)
    proc = start_replay(path, port, "--protocol", protocol, "--as-fast-as-possible")
    try:
        events = collect(src)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"sent {N} frames" in out
    assert isinstance(events[0], SeriesStart) and isinstance(events[-1], SeriesEnd)
    meta = events[0].meta
    assert meta["source_file"] == str(path) and meta["shape"] == [H, W]
    assert meta.get("pixel_size_nm") == (pytest.approx(pixel) if pixel else None)
    assert meta.get("frame_time_s") == (pytest.approx(frame_time) if frame_time else None)
    frames = [e for e in events if isinstance(e, Frame)]
    assert [f.index for f in frames] == list(range(N))
    for f in frames:
        np.testing.assert_array_equal(f.image, movie[f.index])
        assert f.meta.get("pixel_size_nm") == (pytest.approx(pixel) if pixel else None)
    if frame_time:  # timestamps follow the file's frame period
        np.testing.assert_allclose(np.diff([f.timestamp for f in frames]), frame_time, rtol=1e-4)
    src.close()


def test_replay_loop_and_frame_limit(files, zmq_context):
    path = files["movie.npy"][0]
    port = free_port()
    src = ZmqSource(f"tcp://127.0.0.1:{port}", context=zmq_context)
    proc = start_replay(path, port, "--loop", "--frames", str(2 * N + 1), "--fps", "500")
    events = collect(src)
    proc.communicate(timeout=30)
    frames = [e.index for e in events if isinstance(e, Frame)]
    assert frames == list(range(2 * N + 1))  # frame numbers keep increasing across loops
    src.close()


def run_cli(*argv):
    from temstream.cli import main

    return main(list(argv))


@pytest.mark.parametrize("flow", ["lossless", "live"])
def test_fast_replay_into_a_slow_pipeline(flow, tmp_path, zmq_context):
    """Lossless records every frame; live drops (and counts) what it cannot keep up with."""
    from temstream.record import read_frames_info
    from temstream.record import open_recording

    # frames big enough that the pipeline cannot keep up with a replay sent as fast as
    # possible: under live some must be dropped (a live flow that drops nothing fails)
    frames, _ = disks_movie(n_frames=40, size=256)
    np.save(tmp_path / "m.npy", frames)
    port = free_port()
    proc = start_replay(tmp_path / "m.npy", port, "--as-fast-as-possible", "--sndhwm", "1000")
    out = tmp_path / "rec.h5"
    try:
        rc = run_cli("run", "--connect", f"tcp://127.0.0.1:{port}", "--out", str(out),
                     "--flow", flow, "pipeline.queue_size=1", "--model", "classical",
                     "classical.sigma=8",
                     "source.rcvhwm=1000")
    finally:
        proc.communicate(timeout=30)
    assert rc == 0
    info = read_frames_info(out)
    assert sorted(info["frame"]) == list(range(40))  # every frame index accounted for once
    processed = info[info.status == "processed"]
    with open_recording(out) as f:
        n_recorded = f["data/frames/data"].shape[0]
    assert n_recorded == len(processed)
    if flow == "lossless":
        assert len(processed) == 40
    else:
        dropped = info[info.status == "dropped"]
        assert len(dropped) + len(processed) == 40
        assert len(dropped) > 0 and set(dropped.reason) == {"queue-full"}
        assert info.set_index("frame").loc[39, "status"] == "processed"  # the newest kept


def test_process_reads_an_mrc_with_its_pixel_size(files, tmp_path):
    import h5py

    path, pixel, _ = files["movie.mrc"]
    assert run_cli("process", str(path), "--out", str(tmp_path / "p.h5"), "--no-progress") == 0
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["microscope"].attrs["pixel_size_nm"] == pytest.approx(pixel)
        assert f["data/frames/data"].shape == (N, H, W)
