"""The linker's search range from the data: :class:`AutoSearchRange`.

Between two consecutive frames, a particle's nearest neighbour in the other frame is itself
wherever the particles move less than they are apart. The estimate keeps, for each particle of
the new frame, the distance to its nearest particle of the previous frame where the two are
each other's nearest and the second nearest is at least twice as far (an unambiguous pair),
over the last ``window`` frame pairs, and sets

    search range = max(D, min(spacing / 2, 2 D)),  D = max(4 sigma, 1.5 d98)

where ``sigma`` is the displacement scale of a 2-D random walk with the pairs' median distance
(median / 1.1774: a Rayleigh distribution), ``d98`` their 98th percentile (what the detector
adds: a centroid that jumps when two particles touch or a particle is cut by the edge) and
``spacing`` the median distance between neighbours within a frame. ``D`` covers the
displacements seen; in a sparse field the range may grow towards half the spacing, where it
costs no ambiguity and bridges what the detections make of merges and gaps. The first frame
pair already gives an estimate; until then (and where no pair qualifies) ``default`` holds.
"""

from __future__ import annotations

import collections

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["AutoSearchRange"]

_MAX_POINTS = 4000  # per frame, at most (a strided subset beyond)


class AutoSearchRange:
    """Search range (px) estimated from the displacements of consecutive frames.

    Parameters
    ----------
    default : float
        The range until there is an estimate (px).
    window : int
        Frame pairs pooled (the estimate follows the movie).
    min_px, max_px : float
        Bounds of the estimate (px).

    Attributes
    ----------
    value : float
        The current search range (px).
    pairs : int
        Frame pairs observed.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> a = rng.uniform(0, 500, (300, 2))
    >>> est = AutoSearchRange()
    >>> _ = est.observe(a, a + rng.normal(0, 2.0, a.shape))
    >>> 7 < est.value < 12     # 4 sigma of a 2 px random walk per axis
    True
    """

    def __init__(self, default: float = 10.0, *, window: int = 30, min_px: float = 4.0,
                 max_px: float = 100.0):
        if not 0 < min_px <= max_px:
            raise ValueError(f"need 0 < min_px <= max_px, got {min_px}, {max_px}")
        self.default = float(default)
        self.window = max(1, int(window))
        self.min_px, self.max_px = float(min_px), float(max_px)
        self.reset()

    def reset(self) -> None:
        """Forget the displacements seen (a new series)."""
        self._steps: collections.deque = collections.deque(maxlen=self.window)
        self._spacing: collections.deque = collections.deque(maxlen=self.window)
        self.value = self.default
        self.pairs = 0
        self.sigma = float("nan")
        self.d98 = float("nan")
        self.spacing = float("nan")
        self.low = self.high = float("nan")  # the range's extremes over the movie

    def observe(self, prev_xy: np.ndarray, cur_xy: np.ndarray) -> float:
        """Add the displacements between two consecutive frames' particles (registered
        coordinates, (N, 2) and (M, 2) px) and update :attr:`value`, which is returned."""
        a = _subset(np.asarray(prev_xy, np.float64).reshape(-1, 2))
        b = _subset(np.asarray(cur_xy, np.float64).reshape(-1, 2))
        if len(a) < 2 or len(b) < 2:
            return self.value
        ta, tb = cKDTree(a), cKDTree(b)
        d, i = ta.query(b, k=2)
        back = tb.query(a, k=1)[1]
        mutual = back[i[:, 0]] == np.arange(len(b))
        keep = mutual & (d[:, 0] < 0.5 * d[:, 1])
        self._steps.append(d[keep, 0])
        self._spacing.append(float(np.median(tb.query(b, k=2)[0][:, 1])))
        self.pairs += 1
        steps = np.concatenate(self._steps)
        if len(steps) >= 3:
            self.sigma = float(np.median(steps)) / 1.1774
            self.d98 = float(np.percentile(steps, 98))
            self.spacing = float(np.median(self._spacing))
            moved = max(4.0 * self.sigma, 1.5 * self.d98)
            value = max(moved, min(0.5 * self.spacing, 2.0 * moved))
            self.value = float(np.clip(value, self.min_px, self.max_px))
        self.low = min(self.low, self.value) if self.pairs > 1 else self.value
        self.high = max(self.high, self.value) if self.pairs > 1 else self.value
        return self.value

    def summary(self) -> dict:
        """The estimate and what it came from, for run summaries."""
        return {"search_range_px": round(self.value, 2), "low_px": round(self.low, 2),
                "high_px": round(self.high, 2), "sigma_px": round(self.sigma, 2),
                "d98_px": round(self.d98, 2), "spacing_px": round(self.spacing, 2),
                "frame_pairs": self.pairs}


def _subset(xy: np.ndarray) -> np.ndarray:
    xy = xy[np.isfinite(xy).all(1)]
    if len(xy) > _MAX_POINTS:
        xy = xy[np.linspace(0, len(xy) - 1, _MAX_POINTS).astype(np.int64)]
    return xy
