"""Qt-free helpers of the dashboard: rates, display levels, scale-bar length, size histogram."""

from __future__ import annotations

import collections
import math
import time

import numpy as np


class RateMeter:
    """Events per second of a growing counter, over a sliding time window.

    Parameters
    ----------
    window_s : float
        Length of the window, seconds.
    clock : callable
        Time source (``time.monotonic``); replaceable in tests.
    """

    def __init__(self, window_s: float = 2.0, clock=time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def update(self, count: int) -> float:
        """Record the counter's current value; returns the rate over the window."""
        now = self._clock()
        self._samples.append((now, int(count)))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        return self.rate()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


def percentile_levels(image: np.ndarray, low: float = 0.5, high: float = 99.5,
                      max_samples: int = 1 << 16) -> tuple[float, float]:
    """Display levels from percentiles of a decimated image (cheap enough for a key press).

    Parameters
    ----------
    image : (H, W) ndarray
    low, high : float
        Percentiles mapped to black and white.
    max_samples : int
        At most about this many pixels are sampled (regular stride).

    Returns
    -------
    (lo, hi) : tuple of float
        ``hi > lo`` always.
    """
    img = np.asarray(image)
    step = max(1, int(math.sqrt(img.size / max_samples)))
    sample = img[::step, ::step]
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low, high])
    lo, hi = float(lo), float(hi)
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target`` (> 0), for scale bars."""
    if not target > 0:
        raise ValueError(f"target must be positive, got {target}")
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        v = m * 10.0 ** exp
        if v <= target * (1 + 1e-12):
            return v
    return 10.0 ** exp


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class SizeWindow:
    """Equivalent diameters of the particles of the last ``frames`` frames, for a histogram.

    Parameters
    ----------
    frames : int
        Frames pooled.
    """

    def __init__(self, frames: int = 30):
        self._d: collections.deque[np.ndarray] = collections.deque(maxlen=frames)

    def push(self, area: np.ndarray) -> None:
        """Add one frame's particle areas (pixels)."""
        a = np.asarray(area, dtype=np.float64).reshape(-1)
        self._d.append(2.0 * np.sqrt(np.clip(a[np.isfinite(a)], 0, None) / np.pi))

    def clear(self) -> None:
        self._d.clear()

    def histogram(self, scale: float = 1.0, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges (diameter x ``scale``) and counts; empty arrays when nothing was seen."""
        if not self._d:
            return np.zeros(0), np.zeros(0)
        d = np.concatenate(list(self._d)) * scale
        if d.size == 0:
            return np.zeros(0), np.zeros(0)
        hi = float(d.max())
        lo = float(d.min())
        if hi <= lo:
            hi = lo + 1.0
        counts, edges = np.histogram(d, bins=bins, range=(lo, hi))
        return edges, counts.astype(np.float64)


def latency_percentiles(latencies_ms) -> tuple[float, float]:
    """p50 and p99 of a sequence of latencies (NaN when empty)."""
    a = np.asarray(latencies_ms, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    p50, p99 = np.percentile(a, [50, 99])
    return float(p50), float(p99)
