"""``temstream process`` as a user runs it on files they really have (issue 22, items 1, 12,
13, 20): the input is never written, the time axis and pixel size are right or asked for,
any preset ends, and the summary is an offline one."""

import hashlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

from temstream.record import RecordingWriter, read_particles

from testkit import disks_movie

TEMSTREAM = [sys.executable, "-m", "temstream"]


def run_cli(*args, timeout=120, cwd=None):
    return subprocess.run(TEMSTREAM + list(args), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _truncated_recording(path, n=12):
    frames, _ = disks_movie(n_frames=n, size=64)
    w = RecordingWriter(path, frame_shape=(64, 64), frame_dtype=frames.dtype,
                        flush_interval_s=1000)
    for i in range(n):
        w.append(i, 0.1 * i, frames[i], np.zeros((64, 64), np.uint32), {})
    w.close()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.8)])  # a copy that was cut short


def test_process_never_writes_its_input(tmp_path):
    src = tmp_path / "cut.h5"
    _truncated_recording(src)
    before, size = _digest(src), src.stat().st_size
    result = run_cli("process", str(src), "--out", str(tmp_path / "out.h5"), "--no-progress")
    assert _digest(src) == before and src.stat().st_size == size, result.stdout
    if result.returncode == 0:
        assert "repaired copy" in result.stdout and "left as it is" in result.stdout
    else:  # what cannot be read is said in one line
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    info = run_cli("info", str(src))
    assert _digest(src) == before
    assert info.returncode == 0 and "repaired copy" in info.stdout


def test_process_time_axis_and_pixel_size(tmp_path):
    frames, _ = disks_movie(n_frames=6, size=64)
    np.save(tmp_path / "m.npy", frames)
    out = tmp_path / "a.h5"
    r = run_cli("process", str(tmp_path / "m.npy"), "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "--frame-time" in r.stdout and "--pixel-size" in r.stdout
    with h5py.File(out, "r") as f:
        t = f["data/frames/dim1"]
        np.testing.assert_allclose(t[()], np.arange(6))  # frame numbers, said so
        assert t.attrs["units"] == "[frame]"
    df = read_particles(out)
    assert {"x_nm", "y_nm", "area_nm2"} <= set(df.columns) and df["x_nm"].isna().all()

    out = tmp_path / "b.h5"
    r = run_cli("process", str(tmp_path / "m.npy"), "--out", str(out), "--no-progress",
                "--frame-time", "0.05", "--pixel-size", "0.5")
    assert r.returncode == 0, r.stderr
    with h5py.File(out, "r") as f:
        t = f["data/frames/dim1"]
        np.testing.assert_allclose(t[()], 0.05 * np.arange(6))
        assert t.attrs["units"] == "[s]"
        assert f["microscope"].attrs["pixel_size_nm"] == pytest.approx(0.5)
    df = read_particles(out)
    np.testing.assert_allclose(df["x_nm"], df["x"] * 0.5)


@pytest.mark.parametrize("preset", ["live"])  # stop_at_series_end = false
def test_process_ends_with_any_preset(preset, tmp_path):
    frames, _ = disks_movie(n_frames=5, size=64)
    np.save(tmp_path / "m.npy", frames)
    r = run_cli("process", str(tmp_path / "m.npy"), "--out", str(tmp_path / "o.h5"),
                "--no-progress", "--config", preset, "segment.model=classical", timeout=90)
    assert r.returncode == 0, r.stderr
    # an offline summary: frames, particles, tracks, time per frame; no live figures
    for needle in ("frames processed  5", "particles", "tracks", "ms per frame"):
        assert needle in r.stdout
    for live in ("malformed msgs", "latency", "throughput"):
        assert live not in r.stdout
