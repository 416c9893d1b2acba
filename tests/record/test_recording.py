"""Recordings: EMD layout read back by ncempy and rosettasciio, crash safety, particle table."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import hdf5plugin  # noqa: F401 - the compressed labels need the filters
import numpy as np
import pandas as pd
import pytest

from temstream.record import (RecordingWriter, open_recording, read_frames_info, read_particles,
                              write_movie)

from testkit import disks_movie


def small_recording(path, n=5, pixel_size_nm=0.5, raw=True):
    frames, centres = disks_movie(n_frames=n, size=32)
    labels = (frames < 700).astype(np.uint32)
    rows = [{"frame": t, "particle": i, "label": 1, "x": x, "y": y, "area": 3.0, "angle": 0.1,
             "score": 0.9} for t in range(n) for i, (x, y) in enumerate(centres[t])]
    writer = RecordingWriter(path, frame_shape=frames.shape[1:], frame_dtype=frames.dtype,
                             pixel_size_nm=pixel_size_nm, raw_frames=raw,
                             config_toml='[tracking]\nsearch_range = 5.0\n')
    df = pd.DataFrame(rows)
    for t in range(n):
        writer.append(t, 10.0 + 0.04 * t, frames[t], labels[t], df[df.frame == t])
    writer.close({"frames": n})
    return frames, labels, df


def test_ncempy_reads_frames_and_labels(tmp_path):
    from ncempy.io import emd

    path = tmp_path / "rec.h5"
    frames, labels, _ = small_recording(path)
    with emd.fileEMD(str(path), readonly=True) as f:
        names = [g.name for g in f.list_emds]
        assert "/data/frames" in names and "/data/labels" in names
        data, dims = f.get_emdgroup(f.list_emds[names.index("/data/frames")])
        np.testing.assert_array_equal(data, frames)
        assert [d[1] for d in dims] == ["time", "y", "x"]
        np.testing.assert_allclose(dims[0][0], 0.04 * np.arange(5), atol=1e-9)
        assert dims[1][0][1] - dims[1][0][0] == pytest.approx(0.5)
        lab, _ = f.get_emdgroup(f.list_emds[names.index("/data/labels")])
        np.testing.assert_array_equal(lab, labels)


def test_rosettasciio_reads_frames_with_calibration(tmp_path):
    from rsciio.emd import file_reader

    path = tmp_path / "rec.h5"
    frames, labels, _ = small_recording(path)
    signals = file_reader(str(path))
    by_shape = {}
    for s in signals:
        by_shape.setdefault(s["data"].shape, []).append(s)
    assert (32, 32, 5) in by_shape  # rosettasciio transposes C-order (N, H, W)
    datas = [np.asarray(s["data"]) for s in by_shape[(32, 32, 5)]]
    assert any(np.array_equal(d, frames.T) for d in datas)
    assert any(np.array_equal(d, labels.T) for d in datas)
    axes = {a["name"]: a for a in by_shape[(32, 32, 5)][0]["axes"]}
    assert axes["x"]["scale"] == pytest.approx(0.5) and axes["y"]["scale"] == pytest.approx(0.5)
    assert axes["time"]["scale"] == pytest.approx(0.04)


def test_particle_table_goes_to_pandas_and_trackpy(tmp_path):
    import trackpy

    path = tmp_path / "rec.h5"
    _, _, truth = small_recording(path)
    df = read_particles(path)
    for col in ("frame", "particle", "label", "x", "y", "area", "angle", "layer", "score",
                "x_nm", "y_nm", "area_nm2"):
        assert col in df.columns
    np.testing.assert_allclose(df["x_nm"], df["x"] * 0.5)
    pd.testing.assert_series_equal(df["x"], truth["x"].reset_index(drop=True), check_names=False)
    msd = trackpy.emsd(df, mpp=0.5, fps=25, max_lagtime=3)
    # disks move 1 px per frame along x: MSD(lag k) = (0.5 k)^2 um^2... in the table's units
    np.testing.assert_allclose(msd.to_numpy(), (0.5 * np.arange(1, 4)) ** 2, rtol=1e-6)


def test_config_and_clean_close_are_stored(tmp_path):
    path = tmp_path / "rec.h5"
    small_recording(path)
    with h5py.File(path, "r") as f:
        assert "search_range = 5.0" in f.attrs["config"]
        assert bool(f.attrs["closed_cleanly"])
        assert f.attrs["version_major"] == 0 and f.attrs["version_minor"] == 2


WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from temstream.record import RecordingWriter
    w = RecordingWriter(sys.argv[1], frame_shape=(64, 64), frame_dtype=np.uint16,
                        flush_interval_s=0.05)
    i = 0
    while True:
        w.append(i, float(i), np.full((64, 64), i, np.uint16), np.zeros((64, 64), np.uint32), {})
        i += 1
        if i == 20:
            print("ready", flush=True)
        time.sleep(0.002)
""")


def test_sigkill_leaves_every_flushed_frame_readable(tmp_path):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with h5py.File(path, "r") as f:   # as the kill left it: plain h5py, no repair
        data = f["data/frames/data"]
        n = data.shape[0]
        assert n >= 20
        assert not f.attrs["closed_cleanly"]
        for i in range(n):
            assert data[i, 0, 0] == i  # every frame the file says it has is intact
        listed = f["frames_info"]["frame"][()]
        assert set(listed.tolist()) <= set(range(n))  # the table lists only frames it holds


def test_write_movie_with_extra_layers(tmp_path):
    frames, centres = disks_movie(n_frames=3, size=32)
    labels = np.zeros(frames.shape, np.int32)
    layers = np.zeros((3, 2, 32, 32), bool)
    layers[:, 1, :4] = True
    truth = pd.DataFrame({"frame": [0, 1, 2], "particle": [0, 0, 0], "x": [1.0, 2, 3],
                          "y": [4.0, 4, 4], "area": [3.0, 3, 3], "size_nm": [5.0, 5, 5]})
    write_movie(tmp_path / "m.h5", frames, labels, truth, pixel_size_nm=1.0, frame_time_s=0.1,
                extra={"layers": layers})
    with h5py.File(tmp_path / "m.h5", "r") as f:
        np.testing.assert_array_equal(f["data/layers/data"][()], layers)
        np.testing.assert_allclose(f["data/frames/dim1"][()], [0, 0.1, 0.2])
    df = read_particles(tmp_path / "m.h5")
    assert list(df["size_nm"]) == [5.0, 5.0, 5.0] and list(df["particle"]) == [0, 0, 0]


FLUSH_TWICE = textwrap.dedent("""
    import sys, time, numpy as np
    from temstream.record import RecordingWriter
    w = RecordingWriter(sys.argv[1], frame_shape=(64, 64), frame_dtype=np.uint16,
                        flush_interval_s=1000)
    for i in range(30):
        w.append(i, float(i), np.full((64, 64), i, np.uint16), np.zeros((64, 64), np.uint32), {})
        if i == 19:
            w.flush()
            print("flushed", flush=True)
            sys.stdin.readline()
    w.flush()
    print("flushed", flush=True)
    time.sleep(60)
""")


def _killed_in_mid_flush(path):
    """A writer killed between writing the chunk index and the superblock of a flush leaves a
    file that opens but whose newest frames point past its recorded end of file. Emulated:
    the superblock's end-of-file address (version-0 superblock, bytes 40-47) of the first flush
    (20 frames) is put back after the second (30 frames)."""
    proc = subprocess.Popen([sys.executable, "-c", FLUSH_TWICE, str(path)], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "flushed"
    with open(path, "rb") as fh:
        assert fh.read(9)[8] == 0  # superblock version 0: end-of-file address at byte 40
        fh.seek(40)
        first_eoa = fh.read(8)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "flushed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(path, "r+b") as fh:
        fh.seek(40)
        fh.write(first_eoa)


def test_a_kill_in_mid_flush_is_cut_back_to_the_previous_flush(tmp_path):
    path = tmp_path / "midflush.h5"
    _killed_in_mid_flush(path)
    with h5py.File(path, "r") as f:  # the damage this repairs: the file claims 30 frames
        assert f["data/frames/data"].shape[0] == 30
        with pytest.raises(OSError, match="addr overflow"):
            f["data/frames/data"][29]
    import fcntl

    with open(path, "rb") as held:  # while another process holds it, nothing is repaired
        fcntl.flock(held, fcntl.LOCK_SH)
        with open_recording(path) as f:
            assert f["data/frames/data"].shape[0] == 30
        fcntl.flock(held, fcntl.LOCK_UN)
    before = path.read_bytes()
    with open_recording(path) as f:  # a repaired copy: the file itself is never written
        assert getattr(f, "repaired_copy", False)
        frames = f["data/frames/data"]
        assert frames.shape[0] == 20 and f["data/frames/dim1"].shape[0] == 20
        assert [int(frames[i, 0, 0]) for i in range(20)] == list(range(20))
        assert f["data/labels/data"].shape[0] == 20
        assert "killed in mid-write" in f.attrs["recording_error"]
    assert path.read_bytes() == before
    # a frame's table rows follow its data by one flush: the table lists no frame the
    # data lacks, in the repaired copy and in the file as the kill left it
    assert set(read_frames_info(path)["frame"]) <= set(range(20))


def test_process_reads_a_recording_killed_in_mid_flush(tmp_path, capsys):
    from temstream.cli import main

    path = tmp_path / "midflush.h5"
    _killed_in_mid_flush(path)
    assert main(["process", str(path), "--out", str(tmp_path / "again.h5"),
                 "--no-progress"]) == 0
    assert len(read_frames_info(tmp_path / "again.h5")) == 20


def test_info_of_a_recording_killed_in_mid_flush_shows_what_reads_back(tmp_path, capsys):
    from temstream.cli import main

    path = tmp_path / "midflush.h5"
    _killed_in_mid_flush(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/data/frames   (20, 64, 64)" in out and "closed cleanly False" in out
