"""Online particle linking with trackpy's objective, solved exactly in numba.

Each frame, the linker links the previous particles (plus those remembered
for ``memory`` frames) to the new ones by minimising

    sum over links of the squared displacement
    + search_range**2 for each previous particle left unlinked

over all links no longer than ``search_range`` -- the objective of
``trackpy.link`` -- exactly, with no subnetwork size limit (trackpy raises
``SubnetOversizeException`` or needs adaptive search on dense data). On
tie-free data the links equal trackpy's wherever trackpy finds its optimum.

Differences from trackpy, by design:

- trackpy only considers the 10 nearest previous particles of each new one;
  this linker considers all within ``search_range`` (they differ only at
  extreme densities, where trackpy is not optimal);
- ties are broken deterministically (lowest row index first) where trackpy's
  choice depends on set ordering;
- new track ids are given in row order of the frame (trackpy: subnet order);
  ids are sequential from 0 in both;
- the ``"velocity"`` predictor extrapolates each track by its own last
  displacement (trackpy's predictors are pluggable objects).
"""

import numpy as np

from temstream.tracking import _kernels_linking as _k

__all__ = ["Linker", "link"]


def _column(features, name):
    try:
        col = features[name]
    except (KeyError, IndexError, ValueError):
        return None
    return np.asarray(col)


class Linker:
    """Link features frame by frame (online), like ``trackpy.Linker``.

    Parameters
    ----------
    search_range : float
        Largest displacement between two frames a link may have, pixels.
    memory : int
        Number of frames a particle may vanish and still be re-linked at
        its last position (trackpy's ``memory``; 0 = no gaps).
    predictor : {None, "velocity"}
        ``"velocity"``: search around ``last position + last velocity * dt``
        of each track (velocity from its last link; 0 for a new track).
    n_fold : int, optional
        Rotational symmetry of the ``angle`` feature (4 cubes, 3 triangles,
        2 rods); angles are unwrapped along each track with period
        2 pi / n_fold. None means period 2 pi.

    Attributes
    ----------
    particle_ids : (N,) int64 ndarray
        Track ids of the rows of the last frame.
    unwrapped_angle : (N,) float64 ndarray or None
        The last frame's angles unwrapped along each track (None when no
        ``angle`` was given).
    frame : int or None
        Number of the last frame.

    Examples
    --------
    >>> import numpy as np
    >>> lk = Linker(search_range=5)
    >>> lk.step({"x": np.array([0.0, 50.0]), "y": np.array([0.0, 0.0])}).tolist()
    [0, 1]
    >>> lk.step({"x": np.array([52.0, 1.0]), "y": np.array([0.0, 1.0])}).tolist()
    [1, 0]
    """

    def __init__(self, search_range, memory=0, predictor=None, n_fold=None):
        sr = float(search_range)
        if not np.isfinite(sr) or sr <= 0:
            raise ValueError(f"search_range must be a positive number of pixels, got {search_range!r}")
        if int(memory) != memory or memory < 0:
            raise ValueError(f"memory must be a non-negative integer (frames), got {memory!r}")
        if predictor not in (None, "velocity"):
            raise ValueError(f"predictor must be None or 'velocity', got {predictor!r}")
        if n_fold is not None and (int(n_fold) != n_fold or n_fold < 1):
            raise ValueError(f"n_fold must be a positive integer (4 cubes, 3 triangles, 2 rods), got {n_fold!r}")
        self.search_range = sr
        self.memory = int(memory)
        self.predictor = predictor
        self.n_fold = None if n_fold is None else int(n_fold)
        self.period = 2 * np.pi / (self.n_fold or 1)
        self.reset()

    def reset(self):
        """Forget all tracks; the next step starts ids at 0 again."""
        self.frame = None
        self.particle_ids = np.zeros(0, np.int64)
        self.unwrapped_angle = None
        self.last_cost = 0.0
        self._next_id = 0
        # state of the tracks that can still be linked ("sources")
        self._tid = np.zeros(0, np.int64)
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._vx = np.zeros(0)
        self._vy = np.zeros(0)
        self._t = np.zeros(0, np.int64)
        self._ang = np.zeros(0)

    @property
    def n_remembered(self):
        """Number of tracks that can be linked in the next frame."""
        return len(self._tid)

    def step(self, features, frame=None):
        """Link one frame to the previous ones.

        Parameters
        ----------
        features : dict of 1-D arrays or pandas.DataFrame
            Columns ``x``, ``y`` (pixels) and optionally ``angle`` (radians,
            defined modulo 2 pi / n_fold). Zero rows = a blank frame.
        frame : int, optional
            Frame number; default: previous + 1 (0 for the first). Skipped
            numbers count as blank frames (for ``memory``). Must increase.

        Returns
        -------
        (N,) int64 ndarray
            Track id of each row.

        Raises
        ------
        ValueError
            For non-finite coordinates, mismatched columns or a frame
            number that does not increase.
        """
        x = _column(features, "x")
        y = _column(features, "y")
        if x is None or y is None:
            raise ValueError("features need 'x' and 'y' columns (pixels); got "
                             f"{list(getattr(features, 'keys', lambda: [])())}")
        x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
        y = np.ascontiguousarray(y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise ValueError(f"'x' has {x.size} rows but 'y' has {y.size}")
        ang = _column(features, "angle")
        if ang is not None:
            ang = np.ascontiguousarray(ang, dtype=np.float64).reshape(-1)
            if ang.shape != x.shape:
                raise ValueError(f"'angle' has {ang.size} rows but 'x' has {x.size}")
        bad = ~(np.isfinite(x) & np.isfinite(y))
        if bad.any():
            rows = np.flatnonzero(bad)[:10].tolist()
            raise ValueError(f"non-finite x/y in rows {rows} (of {bad.sum()}); drop or "
                             "fill them before linking")
        if frame is None:
            t = 0 if self.frame is None else self.frame + 1
        else:
            t = int(frame)
            if t != frame:
                raise ValueError(f"frame must be an integer, got {frame!r}")
            if self.frame is not None and t <= self.frame:
                raise ValueError(f"frame {t} does not follow frame {self.frame}; feed frames "
                                 "in increasing order (or call reset())")
        # sources: tracks seen within memory + 1 frames
        alive = (t - self._t) <= self.memory + 1
        if not alive.all():
            self._keep(alive)
        n, m = len(self._tid), len(x)
        sx, sy = self._x, self._y
        if self.predictor == "velocity" and n:
            dt = (t - self._t).astype(np.float64)
            sx = sx + self._vx * dt
            sy = sy + self._vy * dt
        dst_of_src = np.full(n, -1, np.int64)
        if n and m:
            sr = self.search_range
            x0 = min(sx.min(), x.min()) - sr
            y0 = min(sy.min(), y.min()) - sr
            ext_x = (max(sx.max(), x.max()) - x0) / sr + 3
            ext_y = (max(sy.max(), y.max()) - y0) / sr + 3
            if ext_x * ext_y > 2.0 ** 62:
                raise ValueError("coordinates span too many search ranges for the cell grid; "
                                 "rescale the coordinates or raise search_range")
            ptr, dst, cost = _k.candidate_pairs(sx, sy, x, y, sr, x0, y0, int(ext_y))
            self.last_cost = _k.solve_assignment(n, m, ptr, dst, cost, sr * sr, dst_of_src)
        else:
            self.last_cost = n * self.search_range ** 2
        linked_src = np.flatnonzero(dst_of_src >= 0)
        linked_dst = dst_of_src[linked_src]
        ids = np.empty(m, np.int64)
        is_new = np.ones(m, bool)
        is_new[linked_dst] = False
        ids[linked_dst] = self._tid[linked_src]
        n_new = int(is_new.sum())
        ids[is_new] = np.arange(self._next_id, self._next_id + n_new)
        self._next_id += n_new
        # new state: this frame's particles, then the unlinked remembered ones
        vx = np.zeros(m)
        vy = np.zeros(m)
        if self.predictor == "velocity" and len(linked_src):
            dt = (t - self._t[linked_src]).astype(np.float64)
            vx[linked_dst] = (x[linked_dst] - self._x[linked_src]) / dt
            vy[linked_dst] = (y[linked_dst] - self._y[linked_src]) / dt
        unw = None
        if ang is not None:
            unw = ang.copy()
            if len(linked_src):
                prev = self._ang[linked_src]
                p = self.period
                d = ang[linked_dst] - prev
                unw[linked_dst] = prev + (d + p / 2) % p - p / 2
        lost = np.ones(n, bool)
        lost[linked_src] = False
        self._tid = np.concatenate([ids, self._tid[lost]])
        self._x = np.concatenate([x, self._x[lost]])
        self._y = np.concatenate([y, self._y[lost]])
        self._vx = np.concatenate([vx, self._vx[lost]])
        self._vy = np.concatenate([vy, self._vy[lost]])
        self._t = np.concatenate([np.full(m, t, np.int64), self._t[lost]])
        cur_ang = unw if unw is not None else np.full(m, np.nan)
        self._ang = np.concatenate([cur_ang, self._ang[lost]])
        self.frame = t
        self.particle_ids = ids
        self.unwrapped_angle = unw
        return ids

    def _keep(self, sel):
        for name in ("_tid", "_x", "_y", "_vx", "_vy", "_t", "_ang"):
            setattr(self, name, getattr(self, name)[sel])


def link(df, search_range, memory=0, *, t_column="frame", **kw):
    """Link a whole feature table, like ``trackpy.link``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per feature with ``frame`` (integer), ``x``, ``y`` (pixels)
        and optionally ``angle``.
    search_range : float
        Largest displacement per frame, pixels.
    memory : int
        Frames a particle may vanish and still be re-linked. Missing frame
        numbers count as blank frames.
    t_column : str
        Name of the frame column.
    **kw
        ``predictor``, ``n_fold``: passed to :class:`Linker`.

    Returns
    -------
    pandas.DataFrame
        A copy sorted by frame (stable) with an int64 ``particle`` column
        (and, if ``angle`` is present, ``angle`` unwrapped along each track
        with period 2 pi / n_fold). The input is not modified.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"frame": [0, 0, 1, 1], "x": [0.0, 9.0, 8.5, 0.5],
    ...                   "y": [0.0, 0.0, 0.0, 0.0]})
    >>> link(f, search_range=2)["particle"].tolist()
    [0, 1, 1, 0]
    """
    if t_column not in df.columns:
        raise ValueError(f"no {t_column!r} column; pass t_column= the frame column")
    out = df.copy()
    frames = out[t_column].to_numpy()
    if len(frames) and not np.all(np.isfinite(frames.astype(np.float64))):
        raise ValueError(f"non-finite values in {t_column!r}")
    fi = frames.astype(np.int64)
    if len(fi) and not np.array_equal(fi, frames):
        raise ValueError(f"{t_column!r} must hold integers")
    order = np.argsort(fi, kind="stable")
    out = out.iloc[order]
    out[t_column] = fi[order]
    fi = fi[order]
    linker = Linker(search_range, memory=memory, **kw)
    x = out["x"].to_numpy(np.float64)
    y = out["y"].to_numpy(np.float64)
    has_angle = "angle" in out.columns
    a = out["angle"].to_numpy(np.float64) if has_angle else None
    pid = np.empty(len(out), np.int64)
    unw = np.empty(len(out)) if has_angle else None
    bounds = np.flatnonzero(np.diff(fi)) + 1
    starts = np.r_[0, bounds] if len(fi) else np.zeros(0, np.int64)
    stops = np.r_[bounds, len(fi)] if len(fi) else np.zeros(0, np.int64)
    for s, e in zip(starts, stops):
        feats = {"x": x[s:e], "y": y[s:e]}
        if has_angle:
            feats["angle"] = a[s:e]
        try:
            pid[s:e] = linker.step(feats, frame=int(fi[s]))
        except ValueError as err:
            raise ValueError(f"frame {fi[s]}: {err}") from None
        if has_angle:
            unw[s:e] = linker.unwrapped_angle
    out["particle"] = pid
    if has_angle:
        out["angle"] = unw
    return out
