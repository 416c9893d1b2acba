"""The command line as a user runs it: exit codes, one-line errors, SIGTERM mid-stream."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from temstream.record import read_frames_info, read_particles
from temstream.stream.publish import FramePublisher

from testkit import assert_shows_a_picture, disks_movie

TEMSTREAM = [sys.executable, "-m", "temstream"]


def run_cli(*args, timeout=120):
    return subprocess.run(TEMSTREAM + list(args), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, needle", [
    (["info", "no-such-file.h5"], "no-such-file.h5"),
    (["process", "missing.npy", "--out", "x.h5"], "missing.npy"),
    (["run", "--frames", "1", "tracking.serch_range=3"], "tracking.serch_range"),
    (["run", "--frames", "1", "tracking.search_range=abc"], "tracking.search_range"),
    (["run", "--config", "nope.toml"], "nope.toml"),
    (["run", "--frames", "1", "--tta", "4", "--model", "classical"], "segment.tta"),
    (["run", "--frames", "1", "segment.model=classical", "segment.compile=true"],
     "segment.compile"),
    (["run", "--frames", "1", "segment.model=default", "segment.backend=onnxruntime",
      "segment.compile=true"], "segment.compile"),
])
def test_user_errors_are_one_line_with_status_2(args, needle, tmp_path):
    result = subprocess.run(TEMSTREAM + args, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


@pytest.mark.parametrize("command", ["demo", "run", "process", "info", "sim"])
def test_help_has_an_example(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and f"temstream {command}" in result.stdout


def test_process_npy_writes_a_complete_recording(tmp_path):
    frames, _ = disks_movie(n_frames=12)
    np.save(tmp_path / "movie.npy", frames)
    out = tmp_path / "out.h5"
    result = run_cli("process", str(tmp_path / "movie.npy"), "--out", str(out), "--no-progress",
                     "tracking.search_range=5", "--model", "classical")
    assert result.returncode == 0, result.stderr
    assert "frames processed  12" in result.stdout
    assert "segmenter         classical (otsu threshold, dark particles)" in result.stdout
    info = read_frames_info(out)
    assert list(info["frame"]) == list(range(12)) and set(info["status"]) == {"processed"}
    df = read_particles(out)
    assert df.groupby("frame").size().tolist() == [4] * 12
    assert df["particle"].nunique() == 4  # four disks, four tracks


def test_sigterm_mid_stream_leaves_a_readable_recording(tmp_path):
    out = tmp_path / "live.h5"
    pub = FramePublisher("tcp://127.0.0.1:0", sndhwm=1000)
    proc = subprocess.Popen(TEMSTREAM + ["run", "--connect", pub.endpoint, "--out", str(out),
                                         "record.flush_interval_s=0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    frames, _ = disks_movie(n_frames=400, size=64, step=0.1)
    pub.start_series({"pixel_size_nm": 1.0})
    sent = 0
    deadline = time.monotonic() + 60
    # stream until the recorder has flushed something, then stop the pipeline mid-stream
    while time.monotonic() < deadline:
        pub.send(frames[sent % 400], frame=sent)
        sent += 1
        time.sleep(0.01)
        if sent > 40 and out.exists() and out.stat().st_size > 200_000:
            break
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    pub.close()
    assert proc.returncode == 0, stderr
    assert "SIGTERM" in stderr
    info = read_frames_info(out)
    n = len(info)
    assert 0 < n <= sent
    assert list(info["frame"]) == list(range(n))  # every index up to the stop accounted for
    import h5py
    with h5py.File(out, "r") as f:
        assert bool(f.attrs["closed_cleanly"])
        assert f["data/frames/data"].shape[0] == (info["status"] == "processed").sum()


def test_demo_uses_the_default_unet(tmp_path):
    out = tmp_path / "demo.h5"
    result = run_cli("demo", "--frames", "10", "--size", "128", "--fps", "20", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "model default" in result.stdout
    import h5py
    with h5py.File(out, "r") as f:
        assert f.attrs["model"] == "default"
    assert sorted(read_frames_info(out)["frame"]) == list(range(10))


def test_demo_streams_records_and_summarises(tmp_path):
    import trackpy

    out = tmp_path / "demo.h5"
    result = run_cli("demo", "--frames", "40", "--size", "128", "--fps", "40", "--out", str(out),
                     "demo.model=classical")
    assert result.returncode == 0, result.stderr
    for line in ("frames received   40", "frames processed", "frames dropped", "latency",
                 "particles/frame", "tracks"):
        assert line in result.stdout
    info = read_frames_info(out)
    assert sorted(info["frame"]) == list(range(40))  # every index accounted for exactly once
    df = read_particles(out)
    assert len(df) > 0
    msd = trackpy.emsd(df, mpp=0.8e-3, fps=40, max_lagtime=5)  # no renaming needed
    assert len(msd) > 0 and np.isfinite(msd.to_numpy()).all()


@pytest.mark.gui
def test_replay_with_dashboard_records_and_snapshots(tmp_path):
    frames, _ = disks_movie(n_frames=15, size=64)
    np.save(tmp_path / "movie.npy", frames)
    out, shot = tmp_path / "replayed.h5", tmp_path / "shot.png"
    result = run_cli("replay", str(tmp_path / "movie.npy"), "--publish", "tcp://127.0.0.1:0",
                     "--fps", "30", "--snapshot", str(shot), "--out", str(out),
                     "pipeline.flow=lossless")
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000
    assert_shows_a_picture(shot)  # not a blank window
    info = read_frames_info(out)
    assert list(info["frame"]) == list(range(15)) and set(info["status"]) == {"processed"}


def test_live_commands_show_a_status_line_while_they_run(tmp_path):
    """Issue 22 item 20: `demo` and `run` show frames/s, drops and particles while they run
    (not only a summary at the end); `process` prints an offline summary instead."""
    result = run_cli("demo", "--frames", "80", "--size", "64", "--fps", "20", "--model",
                     "classical", "--out", str(tmp_path / "d.hspy"), timeout=180)
    assert result.returncode == 0, result.stderr
    status = [line for line in result.stderr.splitlines() if line.startswith("live:")]
    assert status and "frames/s" in status[0] and "dropped" in status[0], result.stderr
    assert "particles" in status[0]


def test_the_live_status_line_counts_drops():
    """The status sink is a sink: ``dropped(row)`` is a method the runner calls."""
    import io

    from temstream.cli._pipeline import LiveStatus

    out = io.StringIO()
    status = LiveStatus(stream=out, period_s=1e-9)
    status.dropped({"frame": 3, "count": 5})
    status.dropped({"frame": 9})
    assert status.n_dropped == 6 and "dropped 6" in out.getvalue()
