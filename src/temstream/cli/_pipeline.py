"""Wiring: build the runner from a configuration (the only place that joins all parts)."""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from temstream.config import Config, ConfigError, config_to_toml
from temstream.pipeline.runner import Runner
from temstream.pipeline.stages import Instances, Link, Preprocess

log = logging.getLogger(__name__)


def load_segmenter_from_config(config: Config):
    """The segmenter named by ``segment.model`` (classical options from ``[classical]``)."""
    from temstream.models import load_segmenter

    c = config.classical
    threshold = config.segment.threshold or None
    if config.segment.model == "classical":
        if config.segment.tta != 1:
            raise ConfigError(f"config key 'segment.tta': {config.segment.tta} applies to "
                              "U-Nets; the classical model takes 1")
        if config.segment.compile:
            raise ConfigError("config key 'segment.compile': applies to U-Nets, not the "
                              "classical model")
        options = dict(sigma=c.sigma, method=c.method, polarity=c.polarity,
                       opening_radius=c.opening_radius, min_area=c.min_area,
                       fill_holes=c.fill_holes, background_scale=c.background_scale)
    else:
        options = dict(tta=config.segment.tta, outline=config.segment.outline)
        if config.segment.compile:
            from temstream.models.backends import choose_backend, resolve_device

            if choose_backend(config.segment.backend,
                              resolve_device(config.segment.device)) != "torch":
                raise ConfigError("config key 'segment.compile': applies to the torch backend, "
                                  f"not {config.segment.backend!r} here")
            options["compile"] = True
    return load_segmenter(config.segment.model, backend=config.segment.backend,
                          device=config.segment.device, threshold=threshold, **options)


def build_runner(config: Config, source, *, out: str | Path | None = None,
                 sinks: list | None = None, flow: str | None = None) -> Runner:
    """A :class:`Runner` for ``source`` with every stage and sink the configuration asks for."""
    segmenter = load_segmenter_from_config(config)
    threshold = config.segment.threshold or getattr(segmenter, "threshold", 0.5)
    inst = config.instances
    all_sinks = list(sinks or [])
    if out:
        from temstream.record import RecorderSink

        r = config.record
        all_sinks.insert(0, RecorderSink(
            out, config_toml=config_to_toml(config), raw_frames=r.raw_frames,
            frames_compression=r.frames_compression, labels_compression=r.labels_compression,
            flush_interval_s=r.flush_interval_s, queue_size=r.queue_size, swmr=r.swmr,
            compress_threads=r.compress_threads,
            attrs={"model": getattr(segmenter, "name", str(config.segment.model))}))
    res = config.results
    if res.publish:
        from temstream.stream.results import ResultsPublisher

        all_sinks.append(ResultsPublisher(
            res.publish, labels=res.labels, count_threshold=res.count_threshold or None,
            leave_after=res.leave_after, grow_ratio=res.grow_ratio,
            shrink_ratio=res.shrink_ratio))
    return Runner(
        source,
        preprocess=Preprocess(median=config.preprocess.median),
        segment=segmenter,
        instances=Instances(classes=segmenter.classes, threshold=threshold,
                            min_area=inst.min_area, split_touching=inst.split_touching,
                            n_fold=inst.n_fold, seed_threshold=inst.seed_threshold,
                            min_seed_area=inst.min_seed_area, merge_below=inst.merge_below,
                            merge_share=inst.merge_share, min_score=inst.min_score,
                            faint_contrast_z=inst.faint_contrast_z,
                            faint_threshold=inst.faint_threshold,
                            outline=getattr(segmenter, "outline", "threshold")),
        link=Link(search_range=config.tracking.search_range, memory=config.tracking.memory,
                  predict=config.tracking.predict, n_fold=inst.n_fold),
        sinks=all_sinks,
        flow=flow or config.pipeline.flow,
        queue_size=config.pipeline.queue_size,
        max_frames=config.pipeline.frames,
        stop_at_series_end=config.pipeline.stop_at_series_end,
        idle_timeout_s=config.source.idle_timeout_s,
    )


def describe_segmenter(runner: Runner) -> str:
    """One summary line saying what segmented the frames: the model, its backend, threshold
    and outline rule (the classical baseline: its threshold method)."""
    seg = dict(runner.stages)["segment"]
    stage = dict(runner.stages)["instances"]
    if hasattr(seg, "backend_name"):
        what = (f"{seg.name} ({seg.backend_name}, threshold {seg.threshold:.2f}, outlines "
                f"{stage.outline}" + (f", tta {seg.tta}" if seg.tta > 1 else "") + ")")
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


def pipeline_instancer(inst):
    """The pipeline's instance extraction (``[instances]`` section) as an instancer for
    :mod:`temstream.models.evaluate`: ``(probs (C, H, W), segmenter, frame (H, W)) -> labels
    (H, W)`` (the frame is what ``outline = "half-contrast"`` redraws the outlines from)."""
    from temstream.models.decision import outline_threshold
    from temstream.tracking.instances import extract_instances

    def instancer(probs, seg, frame=None):
        rule = getattr(seg, "outline", "threshold")
        outline = outline_threshold(1.0 - probs[0], rule, seg.threshold)
        return extract_instances(probs, classes=seg.classes, threshold=seg.threshold,
                                 outline_threshold=outline,
                                 outline_image=frame if rule == "half-contrast" else None,
                                 min_area=inst.min_area, split_touching=inst.split_touching,
                                 seed_threshold=inst.seed_threshold,
                                 min_seed_area=inst.min_seed_area,
                                 merge_below=inst.merge_below,
                                 merge_share=inst.merge_share,
                                 min_score=inst.min_score,
                                 faint_contrast_z=inst.faint_contrast_z,
                                 faint_threshold=inst.faint_threshold)[0]

    return instancer
