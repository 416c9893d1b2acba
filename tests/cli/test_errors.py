"""Files and commands a user really has end in one line and exit status 2, never a traceback
(issue 22, item 14)."""

import subprocess
import sys

import numpy as np
import pytest

TEMSTREAM = [sys.executable, "-m", "temstream"]


def _make(kind, tmp_path):
    if kind == "not-hdf5.h5":
        (tmp_path / kind).write_bytes(b"this is not HDF5\n" * 20)
    elif kind == "not-hdf5.emd":
        (tmp_path / kind).write_bytes(b"\x00\x01 nope" * 50)
    elif kind == "cut.npy":
        np.save(tmp_path / kind, np.zeros((10, 64, 64), np.uint16))
        data = (tmp_path / kind).read_bytes()
        (tmp_path / kind).write_bytes(data[:5000])
    elif kind == "cut.tif":
        import tifffile

        tifffile.imwrite(tmp_path / kind, np.zeros((10, 64, 64), np.uint16))
        data = (tmp_path / kind).read_bytes()
        (tmp_path / kind).write_bytes(data[: len(data) // 3])
    elif kind == "random.mrc":
        (tmp_path / kind).write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "movie.mrc":
        import mrcfile

        with mrcfile.new(tmp_path / kind) as m:
            m.set_data(np.zeros((3, 32, 32), np.uint16))
    return tmp_path / kind


@pytest.mark.parametrize("args", [
    ["process", "{not-hdf5.h5}", "--out", "{out}/o.hspy"],
    ["process", "{not-hdf5.emd}", "--out", "{out}/o.hspy"],
    ["info", "{not-hdf5.h5}"],
    ["info", "{not-hdf5.emd}"],
    ["process", "{cut.npy}", "--out", "{out}/o.hspy"],
    ["process", "{cut.tif}", "--out", "{out}/o.hspy"],
    ["process", "{random.mrc}", "--out", "{out}/o.hspy"],
    ["process", "{movie.mrc}", "--out", "{out}/no/such/folder/o.hspy"],
    # (an existing folder as --out is the batch form: one recording per input, docs/distributed.md)
    ["sim", "dispersed", "--size", "0", "--frames", "2", "--npy", "{out}/s.npy"],
    ["sim", "dispersed", "--frames", "0", "--npy", "{out}/s.npy"],
])
def test_bad_inputs_and_outputs_are_one_line_errors(args, tmp_path):
    argv = []
    for a in args:
        if a.startswith("{") and a.endswith("}") and a not in ("{out}",):
            argv.append(str(_make(a[1:-1], tmp_path)))
        else:
            argv.append(a.replace("{out}", str(tmp_path)))
    r = subprocess.run(TEMSTREAM + argv, capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[0].startswith(f"temstream {argv[0]}: error:")


def test_info_on_a_movie_file_describes_it(tmp_path):
    path = _make("movie.mrc", tmp_path)
    r = subprocess.run(TEMSTREAM + ["info", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "3 frames" in r.stdout and "32x32" in r.stdout
