"""What the dashboard may change in a running pipeline, and what it reads for the health panel.

Qt-free. :class:`PipelineControl` wraps an in-process :class:`~temstream.pipeline.runner.Runner`;
:class:`NoControl` stands in when the dashboard only watches a results feed.
"""

from __future__ import annotations

import logging
from typing import Any

from temstream.gui.bridge import DisplaySink

log = logging.getLogger(__name__)


class NoControl:
    """A dashboard attached to a feed: nothing can be changed, only the feed's numbers shown."""

    threshold: float | None = None
    outline: str | None = None
    search_range: float | None = None
    can_record = False
    recording = False

    def set_threshold(self, value: float) -> None:
        raise RuntimeError("the threshold cannot be changed from a results-feed dashboard")

    def set_outline(self, rule: str) -> None:
        raise RuntimeError("the outlines cannot be changed from a results-feed dashboard")

    def set_search_range(self, value: float) -> None:
        raise RuntimeError("the search range cannot be changed from a results-feed dashboard")

    def set_recording(self, on: bool) -> None:
        raise RuntimeError("recording cannot be switched from a results-feed dashboard")

    def health(self) -> dict[str, Any]:
        """Extra health fields (none without a runner)."""
        return {}

    def behind(self) -> bool:
        """True while the pipeline has a backlog (the display should yield CPU)."""
        return False

    def stop(self, reason: str = "dashboard closed") -> None:
        """Nothing to stop."""


class PipelineControl(NoControl):
    """Live settings of an in-process runner.

    - threshold: the Instances stage's keyword dict is replaced as a whole (one reference swap,
      read by the compute thread at its next frame);
    - outlines: the Instances stage's outline rule (one string, read at its next frame);
    - search range: set on the linker by the link thread between two frames, through
      :meth:`DisplaySink.call_in_pipeline`;
    - recording: pause/resume of the first :class:`~temstream.record.RecorderSink`.

    Parameters
    ----------
    runner : Runner
    sink : DisplaySink
        The display sink attached to ``runner``.
    """

    def __init__(self, runner: Any, sink: DisplaySink):
        self.runner = runner
        self.sink = sink
        self._instances = next((fn for name, fn in runner.stages
                                if name == "instances" and hasattr(fn, "kwargs")), None)
        self._linker = getattr(getattr(runner, "link", None), "linker", None)
        self.recorder = next((s for s in runner.sinks
                              if hasattr(s, "pause") and hasattr(s, "resume")), None)

    @property
    def threshold(self) -> float | None:
        if self._instances is None:
            return None
        value = self._instances.kwargs.get("threshold")
        return None if value is None else float(value)

    def set_threshold(self, value: float) -> None:
        if self._instances is None or "threshold" not in self._instances.kwargs:
            raise RuntimeError("this pipeline's instance stage has no threshold")
        value = float(value)
        if not 0.0 < value < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {value}")
        self._instances.kwargs = {**self._instances.kwargs, "threshold": value}
        log.info("threshold set to %g", value)

    @property
    def outline(self) -> str | None:
        return None if self._instances is None else getattr(self._instances, "outline", None)

    def set_outline(self, rule: str) -> None:
        from temstream.models.decision import OUTLINE_RULES

        if self._instances is None or not hasattr(self._instances, "outline"):
            raise RuntimeError("this pipeline's instance stage has no outline rule")
        if rule not in OUTLINE_RULES:
            raise ValueError(f"outline must be one of {OUTLINE_RULES}, not {rule!r}")
        self._instances.outline = rule
        log.info("outlines: %s", rule)

    @property
    def search_range(self) -> float | None:
        return None if self._linker is None else float(self._linker.search_range)

    def set_search_range(self, value: float) -> None:
        if self._linker is None:
            raise RuntimeError("this pipeline has no linker")
        value = float(value)
        if not value > 0:
            raise ValueError(f"search range must be a positive number of pixels, got {value}")
        linker = self._linker

        def apply() -> None:
            linker.search_range = value
            log.info("search range set to %g px", value)

        self.sink.call_in_pipeline(apply)

    @property
    def can_record(self) -> bool:
        return self.recorder is not None

    @property
    def recording(self) -> bool:
        return self.recorder is not None and not self.recorder.paused

    def set_recording(self, on: bool) -> None:
        if self.recorder is None:
            raise RuntimeError("this pipeline records nothing (start it with --out FILE.h5)")
        if on:
            self.recorder.resume()
        else:
            self.recorder.pause()

    def health(self) -> dict[str, Any]:
        """Received frames, queue depths and recording state of the runner."""
        out: dict[str, Any] = {"received": self.runner.summary.received,
                               "queues": dict(self.runner.queue_depths)}
        if self.recorder is not None:
            out["recording"] = "paused" if self.recorder.paused else "on"
            out["record_path"] = str(self.recorder.path)
            out["record_bytes"] = self.recorder.file_size
            out["record_frames"] = self.recorder.frames_written
        else:
            out["recording"] = "off"
        return out

    def behind(self) -> bool:
        """The compute queue is at least half full: the pipeline is not keeping up."""
        q = self.runner.compute_q
        return len(q) >= max(1, q.maxsize // 2)

    def stop(self, reason: str = "dashboard closed") -> None:
        self.runner.stop(reason)


class FeedControl(NoControl):
    """A dashboard on a results feed: health from what the feed reports; closing stops the
    subscription (not the pipeline).

    Parameters
    ----------
    subscriber : temstream.gui.feed.FeedSubscriber
    """

    def __init__(self, subscriber: Any):
        self.subscriber = subscriber

    def health(self) -> dict[str, Any]:
        return self.subscriber.health()

    def stop(self, reason: str = "dashboard closed") -> None:
        self.subscriber.stop(reason)
