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
    search_auto = False
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
    """Live settings of an in-process runner, through the stages' own interfaces.

    - threshold and outlines: :meth:`Instances.update <temstream.pipeline.stages.Instances.update>`
      (validated, swapped atomically, in effect from the link thread's next frame);
    - search range: :meth:`Link.set_search_range <temstream.pipeline.stages.Link.set_search_range>`
      (in effect from the link thread's next frame);
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
        self.recorder = next((s for s in runner.sinks
                              if hasattr(s, "pause") and hasattr(s, "resume")), None)

    @property
    def threshold(self) -> float:
        return self.runner.instances.threshold

    def set_threshold(self, value: float) -> None:
        self.runner.instances.update(threshold=value)
        log.info("threshold set to %g", value)

    @property
    def outline(self) -> str:
        return self.runner.instances.settings.outline

    def set_outline(self, rule: str) -> None:
        self.runner.instances.update(outline=rule)
        log.info("outlines: %s", rule)

    @property
    def search_range(self) -> float:
        return float(self.runner.link.search_range)

    @property
    def search_auto(self) -> bool:
        """The search range comes from the data (``tracking.search_range = 0``)."""
        return bool(self.runner.link.automatic)

    def set_search_range(self, value: float) -> None:
        self.runner.link.set_search_range(value)
        log.info("search range set to %s", f"{value:g} px" if value else "automatic")

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
        return self.runner.backlog >= 0.5

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
