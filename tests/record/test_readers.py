"""A default recording opens in the tools users have, with no extra import and no
``file_format=`` (issue 22, item 19): HyperSpy (the movie as navigation axis over a 2-D
signal, calibrated), rosettasciio (EMD and HSPY readers), ncempy and plain h5py."""

import json
import subprocess
import sys

import numpy as np
import pytest

from temstream.pipeline.runner import FrameResult
from temstream.record import RecorderSink
from temstream.stream.events import Frame, SeriesStart

READ = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
path = sys.argv[1]
out = {}
import h5py
with h5py.File(path, "r") as f:  # plain h5py: every stack and table reads
    out["h5py"] = [f["data/frames/data"][()].shape, f["data/labels/data"][()].shape,
                   len(f["particles"][()]), len(f["frames_info"][()])]
out["hdf5plugin_imported"] = "hdf5plugin" in sys.modules  # the labels read without it
import hyperspy.api as hs
signals = hs.load(path)  # no reader= / file_format=
s = {x.metadata.General.title: x for x in signals}
am = s["labels"].axes_manager
out["hyperspy"] = {"class": type(s["frames"]).__name__,
                   "nav": [(a.name, a.size, round(a.scale, 6), str(a.units))
                           for a in am.navigation_axes],
                   "sig": [(a.name, a.size, a.scale, str(a.units)) for a in am.signal_axes],
                   "labels_max": int(s["labels"].data.max())}
import rsciio.emd, rsciio.hspy
out["rsciio_emd"] = sorted(d["metadata"]["General"]["title"] for d in
                           rsciio.emd.file_reader(path))
out["rsciio_labels_max"] = int(max(d["data"].max() for d in rsciio.emd.file_reader(path)
                                   if d["metadata"]["General"]["title"] == "labels"))
out["rsciio_hspy"] = len(rsciio.hspy.file_reader(path))
import ncempy.io
with ncempy.io.emd.fileEMD(path, readonly=True) as emd:
    data, dims = emd.get_emdgroup(emd.list_emds[1])
    out["ncempy"] = [len(emd.list_emds), int(data.max())]
print(json.dumps(out))
"""


def test_a_default_recording_opens_in_every_reader(tmp_path):
    path = tmp_path / "rec.hspy"
    sink = RecorderSink(path)  # the defaults
    sink.series_start(SeriesStart(series=1, meta={"pixel_size_nm": 0.25}))
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 1000, (48, 40)).astype(np.uint16)
        labels = np.zeros((48, 40), np.int32)
        labels[5:15, 5:15] = 1
        labels[20:30, 10:20] = 2
        frame = Frame(image=img, series=1, index=i, timestamp=10.0 + 0.05 * i)
        sink.write(FrameResult(frame=frame, labels=labels, table={
            "x": np.array([10.0, 15.0]), "y": np.array([10.0, 25.0]),
            "area": np.array([100.0, 100.0])}, stamps={"received": 0.0, "link": 0.001}))
    sink.close({"frames": 6})
    r = subprocess.run([sys.executable, "-c", READ, str(path)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["h5py"] == [[6, 48, 40], [6, 48, 40], 12, 6]
    hs = out["hyperspy"]
    assert hs["class"] == "Signal2D"
    assert hs["nav"] == [["time", 6, 0.05, "s"]]
    assert sorted(hs["sig"]) == [["x", 40, 0.25, "nm"], ["y", 48, 0.25, "nm"]]
    assert hs["labels_max"] == 2
    assert out["rsciio_emd"] == ["frames", "labels"] and out["rsciio_labels_max"] == 2
    assert out["rsciio_hspy"] == 2
    assert out["ncempy"] == [2, 2]
    assert not out["hdf5plugin_imported"]


def test_hyperspy_time_axis_lists_uneven_frame_times(tmp_path):
    """Frames dropped under `live` leave uneven times: HyperSpy's axis lists them rather
    than claiming a constant step (a uniform scale when they are even)."""
    import h5py

    from temstream.record import RecordingWriter

    for name, times in (("even", [0, 0.05, 0.1, 0.15]), ("uneven", [0, 0.05, 0.1, 0.2, 0.4])):
        path = tmp_path / f"{name}.hspy"
        w = RecordingWriter(path, frame_shape=(8, 8), frame_dtype=np.uint16)
        for i, t in enumerate(times):
            w.append(i, 100.0 + t, np.zeros((8, 8), np.uint16), np.zeros((8, 8), np.uint32), {})
        w.close()
        with h5py.File(path, "r") as f:
            axis = f["Experiments/frames/axis-0"].attrs
            assert axis["navigate"] and axis["size"] == len(times)
            if name == "even":
                assert axis["scale"] == pytest.approx(0.05) and "axis" not in axis
            else:
                assert axis["_type"] == "DataAxis"
                np.testing.assert_allclose(axis["axis"], times, atol=1e-9)
