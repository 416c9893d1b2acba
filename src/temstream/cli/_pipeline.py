"""Wiring: the runner with its source and sinks (the only place that joins all parts)."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from temstream.config import Config, config_to_toml
from temstream.pipeline.assemble import build_stages, load_segmenter_from_config
from temstream.pipeline.runner import Runner

log = logging.getLogger(__name__)


def build_runner(config: Config, source, *, out: str | Path | None = None,
                 sinks: list | None = None, flow: str | None = None,
                 segmenter=None) -> Runner:
    """A :class:`Runner` for ``source`` with every stage and sink the configuration asks for
    (``segmenter``: one already loaded for this configuration, else it is loaded here)."""
    if segmenter is None:
        segmenter = load_segmenter_from_config(config)
    all_sinks = list(sinks or [])
    if out:
        from temstream.record import RecorderSink

        r = config.record
        all_sinks.insert(0, RecorderSink(
            out, config_toml=config_to_toml(config), raw_frames=r.raw_frames,
            frames_compression=r.frames_compression, labels_compression=r.labels_compression,
            flush_interval_s=r.flush_interval_s, queue_size=r.queue_size, swmr=r.swmr,
            compress_threads=r.compress_threads, attrs={"model": segmenter.name}))
    res = config.results
    if res.publish:
        from temstream.stream.results import ResultsPublisher

        all_sinks.append(ResultsPublisher(
            res.publish, labels=res.labels, frames=res.frames,
            frame_interval_s=res.frame_interval_s, frame_max_side=res.frame_max_side,
            count_threshold=res.count_threshold or None,
            leave_after=res.leave_after, grow_ratio=res.grow_ratio,
            shrink_ratio=res.shrink_ratio))
    return Runner(
        source, **build_stages(config, segmenter), sinks=all_sinks,
        flow=flow or config.pipeline.flow, queue_size=config.pipeline.queue_size,
        max_frames=config.pipeline.frames,
        stop_at_series_end=config.pipeline.stop_at_series_end,
        idle_timeout_s=config.source.idle_timeout_s,
    )


class LiveStatus:
    """A sink that keeps one status line up to date while a live run goes: frames/s, frames
    processed and dropped, particles in the latest frame. On a terminal the line is redrawn
    in place (about once a second); otherwise a plain line is printed every ``period_s``."""

    def __init__(self, stream=None, period_s: float | None = None):
        import sys

        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.period_s = period_s or (1.0 if self.tty else 2.0)
        self.processed = self.n_dropped = self.particles = 0
        self._t = self._t0 = None
        self._n_at = 0
        self._shown = False

    def series_start(self, event) -> None:
        pass

    def write(self, result) -> None:
        self.processed += 1
        self.particles = len(result.table.get("x", ()))
        self._maybe_show()

    def dropped(self, row) -> None:
        self.n_dropped += int(row.get("count", 1))
        self._maybe_show()

    def _maybe_show(self) -> None:
        import time

        now = time.monotonic()
        if self._t is None:
            self._t = self._t0 = now
            return
        if now - self._t < self.period_s:
            return
        fps = (self.processed - self._n_at) / (now - self._t)
        self._t, self._n_at = now, self.processed
        line = (f"live: {fps:5.1f} frames/s, processed {self.processed}, dropped "
                f"{self.n_dropped}, particles {self.particles}")
        self.stream.write(("\r" + line + "  ") if self.tty else line + "\n")
        self.stream.flush()
        self._shown = True

    def close(self, summary) -> None:
        if self._shown and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def describe_segmenter(runner: Runner) -> str:
    """One summary line saying what segmented the frames: the model, its backend, threshold
    and outline rule (the classical baseline: its threshold method)."""
    seg, stage = runner.segment, runner.instances
    if hasattr(seg, "backend_name"):  # a U-Net
        outlines = ("per-layer planes" if hasattr(stage, "lattices")
                    else stage.settings.outline)
        what = (f"{seg.name} ({seg.backend_name}, threshold {stage.threshold:.2f}, outlines "
                f"{outlines}" + (f", tta {seg.tta}" if seg.tta > 1 else "") + ")")
    else:
        what = f"classical ({seg.method} threshold, {seg.polarity} particles)"
    return f"segmenter         {what}"


def zmq_source(config: Config):
    """The ZeroMQ frame source described by ``[source]``."""
    from temstream.stream.sources import ZmqSource

    s = config.source
    return ZmqSource(s.connect, protocol=s.protocol, socket=s.socket, bind=s.bind,
                     rcvhwm=s.rcvhwm, decode_threads=s.decode_threads)


@contextmanager
def stop_on_signals(runner: Runner) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the runner to stop cleanly (a second Ctrl-C interrupts)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if runner.summary.stopped_by and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s: stopping after the queued frames", name)
        runner.stop(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
