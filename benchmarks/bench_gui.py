"""Dashboard benchmark: displayed frames/s, ms per item, and pipeline throughput with/without it.

Prints Markdown tables. Runs headless (``QT_QPA_PLATFORM=offscreen`` is set if unset).

1. Display: 2048^2 uint16 frames with 1,000 particles (labels overlay, centroids, 1,000 track
   tails of 30 frames) are handed to a DisplaySink; each iteration is one dashboard refresh
   plus a synchronous paint of the image view (``viewport().repaint()``), so every frame counted
   was really drawn. Side panels are redrawn at their normal 5 Hz and included.
2. Pipeline: the default (classical) pipeline on simulated frames from memory (lossless, no
   recording) with and without ``run_with_dashboard`` at the configured 30 Hz; alternating runs,
   median throughput.

Usage::

    python benchmarks/bench_gui.py [--size 2048] [--particles 1000] [--iterations 150]
                                   [--pipeline-size 512] [--pipeline-frames 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def synthetic_results(size: int, n: int, n_frames: int, seed: int = 0):
    """``n_frames`` FrameResults of ``n`` slowly diffusing particles on a noisy frame."""
    from temstream.pipeline.runner import FrameResult
    from temstream.stream.events import Frame

    rng = np.random.default_rng(seed)
    x = rng.uniform(10, size - 10, n)
    y = rng.uniform(10, size - 10, n)
    base = rng.normal(3000, 300, (size, size)).clip(0, 65535).astype(np.uint16)
    out = []
    for i in range(n_frames):
        x = np.clip(x + rng.normal(0, 0.7, n), 8, size - 8)
        y = np.clip(y + rng.normal(0, 0.7, n), 8, size - 8)
        labels = np.zeros((size, size), np.int32)
        image = base.copy()
        for k in range(n):
            centre = (int(round(x[k])), int(round(y[k])))
            cv2.circle(labels, centre, 5, k + 1, -1)
            cv2.circle(image, centre, 5, 1500, -1)
        table = {"x": x.copy(), "y": y.copy(), "area": np.full(n, 81.0),
                 "angle": rng.uniform(0, np.pi / 2, n), "particle": np.arange(n)}
        out.append(FrameResult(frame=Frame(image=image, series=0, index=i), labels=labels,
                               table=table, stamps={"received": 0.0, "link": 0.001}))
    return out


def bench_display(size: int, n: int, iterations: int) -> tuple[float, dict, dict]:
    from temstream.gui import ensure_app
    from temstream.gui.bridge import DisplaySink
    from temstream.gui.dashboard import Dashboard
    from temstream.stream.events import SeriesStart

    app = ensure_app()
    distinct = 8
    results = synthetic_results(size, n, distinct)
    sink = DisplaySink()
    sink.series_start(SeriesStart(0, {"pixel_size_nm": 0.4, "frame_time_s": 0.01}))
    dash = Dashboard(sink, fps=30, tail_length=30, start_timer=False)
    dash.resize(1600, 1000)
    dash.show()
    app.processEvents()
    frame_no = 0

    def feed_one():
        nonlocal frame_no
        r = results[frame_no % distinct]
        r.frame.index = frame_no
        frame_no += 1
        sink.write(r)

    for _ in range(40):  # warm-up: JIT, caches, 30 frames of tails
        feed_one()
        dash.refresh()
        dash.view.viewport().repaint()
    assert len(dash.view.tails.xData) >= n * 30 * 0.9
    item_ms: dict[str, list] = {}
    paint_ms, refresh_ms = [], []
    forced = 0
    t0 = time.perf_counter()
    for _ in range(iterations):
        feed_one()
        t = time.perf_counter()
        dash.refresh()
        t1 = time.perf_counter()
        app.processEvents()  # the event loop paints the view, panels, status and health text
        if dash.view.image._renderRequired:  # not painted by the loop: paint it now
            dash.view.viewport().repaint()
            forced += 1
        paint_ms.append(1e3 * (time.perf_counter() - t1))
        refresh_ms.append(1e3 * (t1 - t))
        for k, v in dash.item_ms.items():
            item_ms.setdefault(k, []).append(v)
    elapsed = time.perf_counter() - t0
    fps = iterations / elapsed
    items = {k: statistics.median(v) for k, v in item_ms.items()}
    items["refresh (all of the above)"] = statistics.median(refresh_ms)
    items["event loop: paint of the window"] = statistics.median(paint_ms)
    if forced:
        items[f"(paints forced: {forced} of {iterations})"] = 0.0

    # paint cost of each overlay: repaint with items switched on one by one
    v = dash.view
    layers = [("frame only", []), ("+ labels", [v.overlay]), ("+ centroids", [v.centroids]),
              ("+ tails", [v.tails])]
    for item in (v.overlay, v.centroids, v.tails):
        item.hide()
    paint_layers = {}
    for name, items_on in layers:
        for item in items_on:
            item.show()
        times = []
        for _ in range(15):
            v.image._renderRequired = True  # re-render the frame each time, as live
            t = time.perf_counter()
            v.viewport().repaint()
            times.append(1e3 * (time.perf_counter() - t))
        paint_layers[name] = statistics.median(times)
    dash.close()
    return fps, items, paint_layers


def _pipeline_runner(frames, config):
    from temstream.cli._pipeline import build_runner
    from temstream.stream.sources import MemorySource

    source = MemorySource(frames, meta={"pixel_size_nm": 0.8, "frame_time_s": 0.01})
    return build_runner(config, source, flow="lossless")


class _TimedSink:
    """Wraps DisplaySink.write to time what the link thread spends in it."""

    def __init__(self):
        from temstream.gui.bridge import DisplaySink

        self.sink = DisplaySink()
        self.write_s: list[float] = []
        orig = self.sink.write

        def write(result):
            t = time.perf_counter()
            orig(result)
            self.write_s.append(time.perf_counter() - t)

        self.sink.write = write


def bench_pipeline(size: int, n_frames: int, repeats: int, display_fps: float = 30.0) -> dict:
    """Alternating runs without / with the dashboard; per-pair throughput ratios."""
    from temstream.config import load_config
    from temstream.gui import run_with_dashboard
    from temstream.sim import iter_movie

    config = load_config(None, ()).replace(gui={"fps": display_fps})
    frames = [f.image for f in iter_movie("dispersed", size=size, seed=0, frames=n_frames)]
    _pipeline_runner(frames[:20], config).run()  # warm-up (JIT)
    out = {"plain": [], "gui": [], "ratio": [], "gui_cpu_ms": [], "write_us": [],
           "displayed": [], "load": []}
    for i in range(repeats):
        pair = {}
        for mode in (("plain", "gui") if i % 2 == 0 else ("gui", "plain")):
            out["load"].append(os.getloadavg()[0])
            runner = _pipeline_runner(frames, config)
            if mode == "plain":
                pair[mode] = runner.run().fps
                continue
            timed = _TimedSink()
            runner.sinks.append(timed.sink)
            cpu = time.thread_time()
            summary = run_with_dashboard(runner, config=config)
            cpu = time.thread_time() - cpu
            pair[mode] = summary.fps
            out["gui_cpu_ms"].append(1e3 * cpu / summary.elapsed_s)
            out["write_us"].append(1e6 * statistics.median(timed.write_s))
        out["plain"].append(pair["plain"])
        out["gui"].append(pair["gui"])
        out["ratio"].append(pair["gui"] / pair["plain"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--particles", type=int, default=1000)
    p.add_argument("--iterations", type=int, default=150)
    p.add_argument("--pipeline-size", type=int, default=512)
    p.add_argument("--pipeline-frames", type=int, default=400)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--display-fps", type=float, default=30.0,
                   help="dashboard refresh rate in the pipeline runs (gui.fps)")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="1024² frames, fewer iterations and pipeline frames (temstream bench)")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.iterations, args.repeats = 1024, 50, 3
        args.pipeline_frames = 120

    import pyqtgraph
    from pyqtgraph.Qt import QT_LIB, QtCore

    print(f"pyqtgraph {pyqtgraph.__version__}, {QT_LIB} (Qt {QtCore.qVersion()}), "
          f"platform {os.environ.get('QT_QPA_PLATFORM')}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}\n")
    fps, items, layers = bench_display(args.size, args.particles, args.iterations)
    print(f"### Display: {args.size}x{args.size} uint16, {args.particles} particles, labels "
          f"overlay, centroids, {args.particles} tails x 30 frames\n")
    print("| metric | value |\n|---|---|")
    print(f"| displayed frames/s (refresh + event-loop paint, every frame drawn) | {fps:.1f} (target >= 30) |")
    print("\n| per displayed frame (median) | ms |\n|---|---|")
    names = {"models": "models: tails/MSD/size/count update (1 frame)",
             "convert": "frame -> uint8 with fixed levels (numba LUT)",
             "image": "ImageItem.setImage", "labels_convert": "labels -> colour indices (numba)",
             "labels": "overlay ImageItem.setImage", "centroids": "ScatterPlotItem.setData",
             "tails": "tails polyline + PlotCurveItem.setData",
             "panels": "side plots setData (once a second)"}
    for k, v in items.items():
        print(f"| {names.get(k, k)} | {v:.2f} |")
    print("\n| paint of the view (1 frame re-rendered) | ms |\n|---|---|")
    prev = None
    for name, v in layers.items():
        extra = "" if prev is None else f" (+{v - prev:.2f})"
        print(f"| {name} | {v:.2f}{extra} |")
        prev = v
    if not args.skip_pipeline:
        r = bench_pipeline(args.pipeline_size, args.pipeline_frames, args.repeats,
                           args.display_fps)
        med = statistics.median

        def runs(v, fmt="{:.1f}"):
            return ", ".join(fmt.format(x) for x in v)

        print(f"\n### Pipeline throughput, {args.pipeline_size}^2 simulated frames, classical "
              f"model, lossless from memory, {args.pipeline_frames} frames, {args.repeats} "
              f"alternating pairs\n")
        print("| | median | runs |\n|---|---|---|")
        print(f"| without dashboard, frames/s | {med(r['plain']):.1f} | {runs(r['plain'])} |")
        print(f"| with dashboard ({args.display_fps:g} Hz), frames/s | {med(r['gui']):.1f} | {runs(r['gui'])} |")
        print(f"| ratio with/without (per pair) | {med(r['ratio']):.3f} | "
              f"{runs(r['ratio'], '{:.3f}')} |")
        print(f"| link-thread time in DisplaySink.write, us | {med(r['write_us']):.1f} | "
              f"{runs(r['write_us'])} |")
        print(f"| GUI thread CPU, ms per s of run | {med(r['gui_cpu_ms']):.0f} | "
              f"{runs(r['gui_cpu_ms'], '{:.0f}')} |")
        print(f"| 1-min load average during the runs | {med(r['load']):.1f} | "
              f"min {min(r['load']):.1f}, max {max(r['load']):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
