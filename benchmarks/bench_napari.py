"""napari: how long a large recording takes to show its first frame (the reader is lazy).

Writes a recording of ``--gb`` GB of raw 512² uint16 frames (plus labels and a particle table
of 40 particles per frame, as ``temstream process`` writes them), then, in a fresh process,
times ``viewer.open(path, plugin="temstream")`` until the first frame is drawn. With OpenGL (a
display; ``xvfb-run -a python benchmarks/bench_napari.py``) that is a real ``napari.Viewer``
and a canvas screenshot; without, napari's Qt-free ``ViewerModel`` plus reading the frame shown.
napari's own start-up (imports, the window) is timed apart.

    python benchmarks/bench_napari.py [--gb 1.0] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 512


def write(path: Path, gb: float) -> int:
    import pandas as pd

    from temstream.record import RecordingWriter

    n = int(gb * 1e9 / (SIZE * SIZE * 2))
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    centres = rng.uniform(20, SIZE - 20, (40, 2))
    base, labels = [], []
    for k in range(8):
        img = np.full((SIZE, SIZE), 1000.0)
        lab = np.zeros((SIZE, SIZE), np.uint32)
        for i, (x, y) in enumerate(centres + k):
            disk = (xx - x) ** 2 + (yy - y) ** 2 <= 64
            img[disk] = 500
            lab[disk] = i + 1
        base.append(rng.poisson(img).astype(np.uint16))
        labels.append(lab)
    w = RecordingWriter(path, frame_shape=(SIZE, SIZE), frame_dtype=np.uint16,
                        pixel_size_nm=0.5, flush_interval_s=5.0)
    for t in range(n):
        k = t % 8
        table = pd.DataFrame({"x": centres[:, 0] + k, "y": centres[:, 1] + k,
                              "area": np.full(40, 197.0), "particle": np.arange(40),
                              "label": np.arange(1, 41)})
        w.append(t, t * 0.05, base[k], labels[k], table)
    w.close({"processed": n, "stopped_by": "end of series"})
    return n


PROBE = r"""
import os, sys, time
t0 = time.perf_counter()
import napari, npe2
from pathlib import Path
import numpy as np
import temstream.napari
pm = npe2.PluginManager.instance(); pm.discover()
if "temstream" not in pm:
    pm.register(npe2.PluginManifest.from_file(Path(temstream.napari.__file__).with_name("napari.yaml")))
from qtpy import QtGui, QtWidgets
app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
gl = QtGui.QOpenGLContext().create()
if gl:
    viewer = napari.Viewer(show=True)
    app.processEvents()
else:
    from napari.components import ViewerModel
    viewer = ViewerModel()

def drawn():
    if gl:
        return float(np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., :3].std())
    return float(np.asarray(viewer.layers[0].data[viewer.dims.current_step[0]]).std())

t1 = time.perf_counter()
# the peer: napari showing one frame already in memory (its own floor for an image + labels)
import h5py
with h5py.File(sys.argv[1], "r") as f:
    frame, labels = f["data/frames/data"][0], f["data/labels/data"][0]
t = time.perf_counter()
viewer.add_image(frame)
viewer.add_labels(labels.astype(np.int32))
drawn()
peer = time.perf_counter() - t
viewer.layers.clear()
from temstream.napari._reader import read_recording
t = time.perf_counter()
data = read_recording(sys.argv[1])
reader = time.perf_counter() - t
viewer.layers.clear()
t = time.perf_counter()
layers = viewer.open(sys.argv[1], plugin="temstream")
shown = drawn()
total = time.perf_counter() - t
what = "napari.Viewer, canvas screenshot" if gl else "ViewerModel (no OpenGL)"
print(f"{what}|{t1 - t0:.2f}|{peer:.2f}|{reader:.2f}|{total:.2f}|{len(layers)}|{shown:.1f}")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--quick", action="store_true", help="0.2 GB")
    args = ap.parse_args()
    if args.quick:
        args.gb = 0.2
    folder = Path(args.dir or tempfile.mkdtemp(prefix="temstream-bench-napari-"))
    path = folder / f"large-{args.gb:g}GB.h5"
    if not path.exists():
        t = time.perf_counter()
        n = write(path, args.gb)
        print(f"wrote {path} ({n} frames, {path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                         text=True, timeout=600)
    if out.returncode:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
    what, startup, peer, reader, total, n_layers, std = \
        out.stdout.strip().splitlines()[-1].split("|")
    print(f"# napari: first frame of a {path.stat().st_size / 1e9:.2f} GB recording "
          f"(load average {load})\n")
    print("| viewer | napari start-up (s) | peer: one in-memory frame + labels drawn (s) | "
          "temstream reader alone (s) | open all layers → drawn (s) | layers | drawn frame "
          "std (not blank) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {what} | {startup} | {peer} | {reader} | {total} | {n_layers} | {std} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
