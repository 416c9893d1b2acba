"""What a frame source yields: frames, series boundaries, and the error for bad messages.

These are the protocol-independent events every receiver (native, DECTRIS V1/V2, file replay)
turns its wire messages into.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: the pipeline's stages, in order: the runner's stage attributes and the recording's
#: ``/frames_info`` timing columns (``<stage>_ms``) are named after them
STAGES = ("preprocess", "denoise", "segment", "instances", "register", "link")


class MalformedMessage(ValueError):
    """A message that cannot be decoded; ``kind`` names the failure for the counters."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Frame:
    """One detector frame.

    Attributes
    ----------
    image : ndarray, shape (H, W)
        Pixels (uint8/uint16/uint32/float32); may be a read-only view of the receive buffer.
    series : int
        Series (acquisition) id.
    index : int
        The detector's frame index within the series (never re-numbered).
    timestamp : float or None
        Detector timestamp, seconds since the epoch.
    meta : dict
        Other header keys (``pixel_size_nm``, ``exposure_s``, ...).
    receive_time : float
        ``time.time()`` when the message was decoded.
    """

    image: np.ndarray
    series: int
    index: int
    timestamp: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    receive_time: float = field(default_factory=time.time)
    _keepalive: Any = field(default=None, repr=False)  # the zmq.Frame behind a zero-copy view


@dataclass
class SeriesStart:
    """A series begins; ``meta`` holds detector and sample metadata."""

    series: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeriesEnd:
    """A series ended."""

    series: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class LostFrame:
    """A frame whose header arrived but whose pixels could not be decoded (e.g. a corrupt
    compressed payload): the pipeline accounts its index as dropped with ``reason``."""

    series: int
    index: int
    reason: str = "decode-error"
    receive_time: float = field(default_factory=time.time)


@dataclass
class PendingFrame:
    """A decoded frame whose pixels still need work (decompression).

    Decoders return it so that a source can run ``work`` off its receive thread; sources
    resolve it (``frame.image = work()``) before handing the frame on, so stages and sinks
    only ever see :class:`Frame`. ``work`` raises :class:`MalformedMessage` on bad data.
    """

    frame: Frame
    work: Callable[[], Any]

    def resolve(self) -> Frame:
        """Run ``work`` and return the completed frame."""
        self.frame.image = self.work()
        return self.frame


#: metadata keys the pipeline uses as numbers: each must be a finite number > 0
POSITIVE_META = ("pixel_size_nm", "frame_time_s", "exposure_s")


def clean_meta(meta: dict[str, Any]) -> list[str]:
    """Remove, in place, the metadata values a stage could not use: ``pixel_size_nm``,
    ``frame_time_s`` or ``exposure_s`` that is not a finite number > 0 ("abc", [1, 2], NaN,
    -1...). Untrusted metadata is checked here, where it enters; the frame goes on without
    the bad value. Returns the keys removed (the sources count them)."""
    bad = []
    for key in POSITIVE_META:
        if key in meta:
            v = meta[key]
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
                  and math.isfinite(v) and v > 0)
            if not ok:
                del meta[key]
                bad.append(key)
    return bad
