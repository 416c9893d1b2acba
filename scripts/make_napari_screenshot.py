"""Write docs/napari.png: a recording opened in napari with the temstream plugin (headless).

Usage::

    xvfb-run -a python scripts/make_napari_screenshot.py [RECORDING.h5] [--out docs/napari.png]

napari draws with OpenGL, which needs an X display: run it under ``xvfb-run`` with Qt's xcb
platform (Debian: ``apt-get install xvfb libxcb-cursor0``, and ``QT_QPA_PLATFORM=xcb``; the
offscreen platform renders the window but not napari's canvas into a screenshot). Without a recording it simulates an etching
movie (300 frames of 512²), processes it with ``--model default`` and opens that. It also
prints how long the reader took to put the first frame on screen.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    p.add_argument("recording", nargs="?")
    p.add_argument("--out", default=str(root / "docs" / "napari.png"))
    p.add_argument("--frame", type=int, default=150, help="the frame shown")
    args = p.parse_args(argv)

    rec = args.recording
    if rec is None:
        from temstream.cli import main as temstream

        tmp = Path(tempfile.mkdtemp(prefix="temstream-napari-"))
        temstream(["sim", "etching", "--frames", "300", "--size", "512", "--npy",
                   str(tmp / "etching.npy")])
        rec = str(tmp / "etching.h5")
        temstream(["process", str(tmp / "etching.npy"), "--out", rec, "--model", "default",
                   "--no-progress"])

    import napari
    import npe2

    import temstream.napari

    pm = npe2.PluginManager.instance()
    pm.discover()
    if "temstream" not in pm:  # a checkout on PYTHONPATH, not pip-installed
        pm.register(npe2.PluginManifest.from_file(
            Path(temstream.napari.__file__).with_name("napari.yaml")))
    viewer = napari.Viewer(show=True, title="temstream recording in napari")
    viewer.window._qt_window.resize(1280, 860)
    t0 = time.perf_counter()
    layers = viewer.open(rec, plugin="temstream")
    viewer.window._qt_window.repaint()
    napari.qt.get_qapp().processEvents()
    print(f"opened {rec}: {len(layers)} layers, first frame on screen in "
          f"{time.perf_counter() - t0:.2f} s")
    viewer.dims.set_current_step(0, args.frame)
    for layer in layers:
        if isinstance(layer, napari.layers.Tracks):
            layer.tail_length = 40
            layer.color_by = "track_id"
    viewer.layers.selection.active = layers[0]  # the frames' controls in the panel
    napari.qt.get_qapp().processEvents()
    viewer.reset_view()
    shot = viewer.screenshot(path=args.out, canvas_only=False, flash=False)
    print(f"wrote {args.out} ({shot.shape[1]}x{shot.shape[0]})")
    viewer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
