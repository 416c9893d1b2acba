"""Qt-free track state of the dashboard: the recent-frames ring, track tails and ensemble MSD.

Everything here is plain numpy so it can be unit-tested without a display. The GUI thread feeds
each processed frame's small particle table in order (:meth:`TrackHistory.push`), then asks for
the tails (one polyline with a connect array) and the accumulated mean squared displacements.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

_KEY_SHIFT = np.int64(1) << np.int64(40)  # track ids stay below 2**40


@dataclass(frozen=True)
class FrameTracks:
    """The linked particles of one frame, sorted by track id.

    Attributes
    ----------
    frame : int
        Detector frame index.
    ids : (N,) int64 ndarray
        Track ids, ascending (unlinked rows, id < 0, are left out).
    x, y : (N,) float64 ndarray
        Centroids, pixels.
    angle : (N,) float64 ndarray or None
        Orientation unwrapped along the track, radians (None when not tracked).
    """

    frame: int
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray | None = None

    @classmethod
    def from_table(cls, frame: int, table: dict) -> FrameTracks:
        """Build from a particle table with columns ``particle``, ``x``, ``y`` (``angle``)."""
        ids = np.asarray(table.get("particle", ()), dtype=np.int64).reshape(-1)
        x = np.asarray(table.get("x", ()), dtype=np.float64).reshape(-1)
        y = np.asarray(table.get("y", ()), dtype=np.float64).reshape(-1)
        n = min(len(ids), len(x), len(y))
        ids, x, y = ids[:n], x[:n], y[:n]
        angle = table.get("angle")
        angle = None if angle is None else np.asarray(angle, dtype=np.float64).reshape(-1)[:n]
        keep = (ids >= 0) & np.isfinite(x) & np.isfinite(y)
        order = np.argsort(ids[keep], kind="stable")
        pick = np.flatnonzero(keep)[order]
        return cls(int(frame), ids[pick], x[pick], y[pick],
                   None if angle is None else angle[pick])


class TrackHistory:
    """Ring buffer of the last ``depth`` frames' linked particles.

    Parameters
    ----------
    depth : int
        Frames kept (at least the tail length and the largest MSD lag).
    """

    def __init__(self, depth: int = 30):
        if depth < 1:
            raise ValueError(f"depth must be >= 1 frame, got {depth}")
        self._frames: collections.deque[FrameTracks] = collections.deque(maxlen=int(depth))

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> FrameTracks:
        return self._frames[i]

    @property
    def depth(self) -> int:
        return self._frames.maxlen or 0

    def clear(self) -> None:
        """Forget all frames (e.g. when a new series starts)."""
        self._frames.clear()

    def push(self, tracks: FrameTracks) -> None:
        """Append the next frame (frames must come in increasing order; a jump back clears)."""
        if self._frames and tracks.frame <= self._frames[-1].frame:
            self._frames.clear()
        self._frames.append(tracks)

    def tails(self, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All track tails over the last ``length`` frames as one polyline.

        Returns
        -------
        x, y : (M,) float64 ndarray
            Vertices grouped by track, in time order within a track.
        connect : (M,) bool ndarray
            ``connect[i]`` is True when vertex ``i`` joins vertex ``i + 1`` (same track), the
            array form that ``pyqtgraph.PlotCurveItem.setData(connect=...)`` takes.
        """
        frames = list(self._frames)[-length:] if length > 0 else []
        if not frames:
            empty = np.zeros(0)
            return empty, empty, np.zeros(0, bool)
        ids = np.concatenate([f.ids for f in frames])
        order = np.argsort(ids, kind="stable")  # stable: time order kept within a track
        ids = ids[order]
        x = np.concatenate([f.x for f in frames])[order]
        y = np.concatenate([f.y for f in frames])[order]
        connect = np.zeros(len(ids), bool)
        connect[:-1] = ids[1:] == ids[:-1]
        return x, y, connect


class MSDAccumulator:
    """Ensemble mean squared displacement (and angular MSD) accumulated frame by frame.

    Each new frame is compared with every earlier frame still in the history whose lag is at
    most ``max_lag``; squared displacements of the tracks present in both are summed per lag.
    The result is the time- and ensemble-averaged MSD over all frames seen so far.

    Parameters
    ----------
    max_lag : int
        Largest lag, frames.
    lags : sequence of int, optional
        The lags accumulated (default: every lag up to 10, then ~8 per decade, which is what a
        log-log plot shows and keeps the cost per frame low).
    """

    def __init__(self, max_lag: int = 30, lags=None):
        if max_lag < 1:
            raise ValueError(f"max_lag must be >= 1 frame, got {max_lag}")
        self.max_lag = int(max_lag)
        if lags is None:
            lags = np.unique(np.round(np.geomspace(1, max_lag, 8 * 3)).astype(int))
            lags = np.union1d(np.arange(1, min(10, max_lag) + 1), lags)
        lags = np.asarray(lags, dtype=np.int64)
        if lags.size == 0 or lags.min() < 1 or lags.max() > self.max_lag:
            raise ValueError(f"lags must lie in 1..{self.max_lag}")
        self._want = np.zeros(self.max_lag + 1, bool)
        self._want[lags] = True
        self.reset()

    def reset(self) -> None:
        """Forget all sums."""
        n = self.max_lag + 1
        self._sum = np.zeros(n)
        self._count = np.zeros(n, np.int64)
        self._asum = np.zeros(n)
        self._acount = np.zeros(n, np.int64)

    def add_latest(self, history: TrackHistory) -> None:
        """Accumulate the newest frame of ``history`` against the earlier ones.

        All lags are matched at once: the earlier frames' ids, offset by ``lag * 2**40``, form
        one sorted key array that a single ``searchsorted`` queries (a dozen numpy calls per
        frame, whatever the number of lags).
        """
        if len(history) < 2:
            return
        cur = history[-1]
        n = len(cur.ids)
        if n == 0:
            return
        pasts = []
        for k in range(len(history) - 2, -1, -1):  # increasing lag
            past = history[k]
            lag = cur.frame - past.frame
            if lag > self.max_lag:
                break
            if self._want[lag] and len(past.ids):
                pasts.append((lag, past))
        if not pasts:
            return
        lags = np.array([lag for lag, _ in pasts], np.int64)
        keys = np.concatenate([p.ids + lag * _KEY_SHIFT for lag, p in pasts])  # sorted
        queries = (cur.ids[None, :] + lags[:, None] * _KEY_SHIFT).ravel()
        j = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
        hit = keys[j] == queries
        if not hit.any():
            return
        j = j[hit]
        i = np.tile(np.arange(n), len(lags))[hit]
        lag_of = np.repeat(lags, n)[hit]
        px = np.concatenate([p.x for _, p in pasts])[j]
        py = np.concatenate([p.y for _, p in pasts])[j]
        d2 = (cur.x[i] - px) ** 2 + (cur.y[i] - py) ** 2
        size = self.max_lag + 1
        self._sum += np.bincount(lag_of, weights=d2, minlength=size)
        self._count += np.bincount(lag_of, minlength=size)
        if cur.angle is not None:
            pa = np.concatenate([p.angle if p.angle is not None else np.full(len(p.ids), np.nan)
                                 for _, p in pasts])[j]
            da = cur.angle[i] - pa
            ok = np.isfinite(da)
            self._asum += np.bincount(lag_of[ok], weights=da[ok] ** 2, minlength=size)
            self._acount += np.bincount(lag_of[ok], minlength=size)

    def msd(self) -> tuple[np.ndarray, np.ndarray]:
        """Lags (frames) and MSD (pixels squared) where at least one pair was seen."""
        ok = self._count > 0
        lags = np.flatnonzero(ok)
        return lags, self._sum[ok] / self._count[ok]

    def angular_msd(self) -> tuple[np.ndarray, np.ndarray]:
        """Lags (frames) and angular MSD (radians squared); empty when angles are not tracked."""
        ok = self._acount > 0
        lags = np.flatnonzero(ok)
        return lags, self._asum[ok] / self._acount[ok]


class SeriesBuffer:
    """A fixed-size ring of (x, y) samples, e.g. particles per frame over time.

    Parameters
    ----------
    size : int
        Samples kept.
    """

    def __init__(self, size: int = 2000):
        self._x = np.zeros(size)
        self._y = np.zeros(size)
        self._n = 0

    def append(self, x: float, y: float) -> None:
        size = len(self._x)
        self._x[self._n % size] = x
        self._y[self._n % size] = y
        self._n += 1

    def clear(self) -> None:
        self._n = 0

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples in insertion order (copies)."""
        size = len(self._x)
        if self._n <= size:
            return self._x[: self._n].copy(), self._y[: self._n].copy()
        start = self._n % size
        idx = np.r_[start:size, 0:start]
        return self._x[idx], self._y[idx]


class ShiftTrace:
    """The registration's shift per frame, and the frames it flagged (bounded, Qt-free).

    Parameters
    ----------
    size : int
        Frames kept (the oldest go first).
    """

    def __init__(self, size: int = 4000):
        self.size = int(size)
        self.clear()

    def clear(self) -> None:
        self._rows: collections.deque = collections.deque(maxlen=self.size)
        self.bad: dict[str, int] = {}
        self.jumps = 0

    def append(self, frame: int, shift_x: float, shift_y: float, quality: str = "",
               jump: bool = False) -> None:
        self._rows.append((frame, shift_x, shift_y, quality, bool(jump)))
        for flag in filter(None, quality.split(",")):
            self.bad[flag] = self.bad.get(flag, 0) + 1
        self.jumps += bool(jump)

    def __len__(self) -> int:
        return len(self._rows)

    def data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frames, shift x, shift y (px) of the frames kept."""
        if not self._rows:
            z = np.zeros(0)
            return z, z, z
        f, x, y, _q, _j = zip(*self._rows)
        return np.asarray(f, float), np.asarray(x, float), np.asarray(y, float)

    def flagged(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Frames and shift x of the bad frames kept, and their flags."""
        rows = [r for r in self._rows if r[3]]
        if not rows:
            return np.zeros(0), np.zeros(0), []
        return (np.asarray([r[0] for r in rows], float), np.asarray([r[1] for r in rows], float),
                [r[3] for r in rows])

    def jump_frames(self) -> np.ndarray:
        """Frames where the stage jumped (kept ones)."""
        return np.asarray([r[0] for r in self._rows if r[4]], float)


class LayerSeries:
    """What the dashboard plots of a two-layer run, frame by frame (Qt-free).

    Per layer (``layer`` 1, 2 of the table): the particle count, and the vibration, the median
    over the layer's tracked particles of their RMS displacement from their lattice site (each
    frame's lattice fitted to the layer's particles, so drift and a slow twist do not count)
    about its mean over the last ``window`` frames; and the twist angle between the layers'
    lattices (deg, in (-30, 30]).

    Parameters
    ----------
    size : int
        Samples kept per series.
    window : int
        Frames of each particle's displacement history.
    """

    def __init__(self, size: int = 4000, window: int = 50):
        self.size, self.window = size, window
        self.reset()

    def reset(self) -> None:
        self.counts = [SeriesBuffer(self.size), SeriesBuffer(self.size)]
        self.vibration = [SeriesBuffer(self.size), SeriesBuffer(self.size)]
        self.twist = SeriesBuffer(self.size)
        self._disp: list[dict] = [{}, {}]
        self._seen: list[dict] = [{}, {}]
        self.active = False
        self._pushed = 0

    def push(self, index: int, table: dict) -> None:
        """Add one frame's particle table (rows without a layer 1 or 2 are ignored)."""
        from temstream.tracking.lattice import fit_lattice, wrap_angle

        layer = np.asarray(table.get("layer", ()))
        if not layer.size or not np.any(layer > 0):
            return
        self.active = True
        x, y = np.asarray(table["x"], float), np.asarray(table["y"], float)
        pid = np.asarray(table.get("particle", np.full(len(x), -1)), np.int64)
        fits = []
        for k in (0, 1):
            sel = layer == k + 1
            self.counts[k].append(index, int(sel.sum()))
            pts = np.c_[x[sel], y[sel]]
            lat = fit_lattice(pts) if len(pts) >= 12 else None
            fits.append(lat)
            if lat is None:
                continue
            _, sites = lat.sites_of(pts)
            d = pts - sites
            on = np.hypot(d[:, 0], d[:, 1]) < 0.3 * lat.a
            hist, seen = self._disp[k], self._seen[k]
            for p, dx, dy in zip(pid[sel][on].tolist(), d[on, 0].tolist(), d[on, 1].tolist()):
                if p < 0:
                    continue
                q = hist.get(p)
                if q is None:
                    q = hist[p] = collections.deque(maxlen=self.window)
                q.append((dx, dy))
                seen[p] = index
            rms = [np.sqrt(np.mean(np.sum((a - a.mean(0)) ** 2, axis=1)))
                   for a in (np.asarray(q) for q in hist.values() if len(q) >= 5)]
            if rms:
                self.vibration[k].append(index, float(np.median(rms)))
        if fits[0] is not None and fits[1] is not None:
            self.twist.append(index, float(wrap_angle(fits[1].theta - fits[0].theta, 60.0)))
        self._pushed += 1
        if self._pushed % 100 == 0:  # forget particles gone for a while
            for hist, seen in zip(self._disp, self._seen):
                for p in [p for p, last in seen.items() if index - last > self.window]:
                    hist.pop(p, None)
                    seen.pop(p, None)
