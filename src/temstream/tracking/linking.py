"""Online particle linking with trackpy's objective, solved exactly in numba.

Between consecutive frames the linker minimises

    sum over links of d^2  +  search_range^2 x (number of unlinked sources)

(unlinked destinations start new tracks at no cost), exactly trackpy's
objective, but solved as an assignment problem per group of interacting
particles (no subnet size limit, no ``SubnetOversizeException``, no adaptive
search). Sources missing for up to ``memory`` frames wait at their last
position (or their predicted one) and compete like any other source.

Differences from ``trackpy.link`` (documented, tested):

- every source within ``search_range`` of a destination is a candidate
  (trackpy keeps the 10 nearest); they differ only at extreme densities;
- exact ties (equal total cost) are broken deterministically by index, where
  trackpy 0.7 may give either solution;
- ``predictor="velocity"`` extrapolates each track by its last displacement
  per frame (trackpy's predictors are separate objects).
"""

import numpy as np

from temstream.tracking import _linking_kernels as _k

__all__ = ["Linker", "link"]

class Linker:
    """Frame-by-frame linker; one :meth:`step` per frame, ids aligned with rows.

    Parameters
    ----------
    search_range : float
        Largest displacement between linked detections (px), > 0.
    memory : int
        Frames a particle may be missing and still be re-linked (trackpy's meaning).
    predictor : None or "velocity"
        ``"velocity"``: search around last position + last velocity x frames
        elapsed (a new track has zero velocity).
    n_fold : int or None
        Rotational symmetry of ``angle`` (4 cubes, 3 triangles, 2 rods, 1 a
        direction). When set and the features carry ``angle``, the angle is
        unwrapped along each track with period 2 pi / n_fold and exposed as
        :attr:`unwrapped_angle`. ``None`` disables unwrapping.

    Attributes
    ----------
    unwrapped_angle : (N,) float64 ndarray or None
        After a step: the unwrapped angle (rad) of each row, continuous along its
        track (a rotation of >= pi / n_fold between detections is aliased);
        ``None`` without angles or ``n_fold``. A NaN angle stays NaN and does
        not disturb the track's unwrapping.
    particle_ids : (N,) int64 ndarray
        Ids returned by the last step.
    frame : int or None
        Index of the last linked frame.
    stats : dict
        Last step: ``groups`` solved by assignment and the ``largest`` (sources).

    Examples
    --------
    >>> linker = Linker(search_range=5.0)
    >>> linker.step({"x": [0.0, 50.0], "y": [0.0, 0.0]}).tolist()
    [0, 1]
    >>> linker.step({"x": [51.0, 1.0], "y": [0.5, 0.0]}).tolist()
    [1, 0]
    >>> linker.step({"x": [], "y": []}).tolist()      # a blank frame
    []
    """

    def __init__(self, search_range, memory=0, predictor=None, n_fold=None):
        sr = float(search_range)
        if not np.isfinite(sr) or sr <= 0:
            raise ValueError(f"search_range must be a positive number of pixels, got {search_range!r}")
        if int(memory) != memory or memory < 0:
            raise ValueError(f"memory must be an integer >= 0 (frames), got {memory!r}")
        if predictor not in (None, "velocity"):
            raise ValueError(f"predictor must be None or 'velocity', got {predictor!r}")
        if n_fold is not None and (int(n_fold) != n_fold or n_fold < 1):
            raise ValueError(f"n_fold must be None or an integer >= 1, got {n_fold!r}")
        self.search_range = sr
        self.memory = int(memory)
        self.predictor = predictor
        self.n_fold = None if n_fold is None else int(n_fold)
        self._period = 2 * np.pi / self.n_fold if self.n_fold else 2 * np.pi
        self.reset()

    def reset(self):
        """Forget all tracks; the next id is 0 again."""
        z = np.empty(0)
        zi = np.empty(0, np.int64)
        self._state = (z, z, z, z, zi, zi, z)
        self._next_id = 0
        self.frame = None
        self.particle_ids = zi
        self.unwrapped_angle = None
        self.stats = {"groups": 0, "largest": 0}

    @property
    def n_tracks(self):
        """Number of tracks that can still be linked (present or in memory)."""
        return len(self._state[0])

    @property
    def waiting(self):
        """The tracks that can still be linked: ``(x, y, id, last)``, their positions (px),
        ids and the frame of their last detection (arrays, one row per track; read-only)."""
        tx, ty, _, _, tid, tlast, _ = self._state
        return tx, ty, tid, tlast

    def refresh(self, mask):
        """Count the tracks selected by ``mask`` (one bool per :attr:`waiting` row) as seen in
        the last linked frame: frames in which they could not have been seen (out of the
        field of view) do not use up their memory."""
        mask = np.asarray(mask, bool)
        if self.frame is None or mask.shape != self._state[5].shape:
            raise ValueError(f"mask must have one entry per waiting track ({self.n_tracks})")
        tlast = self._state[5].copy()
        tlast[mask] = self.frame
        self._state = self._state[:5] + (tlast,) + self._state[6:]

    def step(self, features, frame=None, *, commit=True):
        """Link one frame.

        Parameters
        ----------
        features : dict of 1-D arrays or pandas.DataFrame
            ``x``, ``y`` (px) and optionally ``angle`` (rad), one row per detection;
            zero rows is a blank frame.
        frame : int, optional
            Frame index; default the previous one + 1. A jump of k > 1 counts as
            k - 1 blank frames (tracks older than ``memory`` are dropped).
        commit : bool
            False links the detections to the tracks without changing them (a frame
            that is not trusted: blurred, saturated): each row gets the id of the
            track it continues or -1, and the frame counts as missing for every
            track, as if it had been skipped (``memory`` bridges it).

        Returns
        -------
        ids : (N,) int64 ndarray
            Track id per row; new tracks get sequential ids from 0 (-1 when not
            committed).

        Raises
        ------
        ValueError
            Missing columns, unequal lengths, NaN/inf coordinates, or a frame
            index not after the previous one.
        """
        x = np.ascontiguousarray(features["x"], dtype=np.float64).reshape(-1)
        y = np.ascontiguousarray(features["y"], dtype=np.float64).reshape(-1)
        ang = None
        if self.n_fold is not None:
            try:
                ang = features["angle"]
            except (KeyError, IndexError):
                ang = None
            if ang is not None:
                ang = np.ascontiguousarray(ang, dtype=np.float64).reshape(-1)
                if ang.shape != x.shape:
                    raise ValueError(f"angle has {ang.shape[0]} rows but x has {x.shape[0]}")
        if commit:
            return self._step(x, y, ang, frame)
        saved = (self._state, self._next_id, self.frame)
        ids = self._step(x, y, ang, frame)
        ids = np.where(ids < saved[1], ids, -1)
        self._state, self._next_id, self.frame = saved
        self.particle_ids = ids
        if self.unwrapped_angle is not None:
            self.unwrapped_angle = np.where(ids >= 0, self.unwrapped_angle, ang)
        return ids

    def _step(self, x, y, ang, frame):
        if x.shape != y.shape:
            raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}")
        if x.size and not (np.isfinite(x).all() and np.isfinite(y).all()):
            bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
            raise ValueError(f"NaN or inf coordinates in rows {bad[:10].tolist()}; drop those "
                             "detections before linking")
        if frame is None:
            frame = 0 if self.frame is None else self.frame + 1
        else:
            frame = int(frame)
            if self.frame is not None and frame <= self.frame:
                raise ValueError(f"frame {frame} is not after the previous frame {self.frame}; "
                                 "feed frames in increasing order (or call reset())")
        nd = x.shape[0]
        tx, ty, tvx, tvy, tid, tlast, tang = self._state
        cap = nd + tx.shape[0]
        nx, ny, nvx, nvy, nang = (np.empty(cap) for _ in range(5))
        nid = np.empty(cap, np.int64)
        nlast = np.empty(cap, np.int64)
        ids = np.empty(nd, np.int64)
        unw = np.empty(nd)
        has_angle = ang is not None
        n, self._next_id, groups, largest = _k.link_step(
            tx, ty, tvx, tvy, tid, tlast, tang, frame, self.memory,
            self.predictor == "velocity", x, y, ang if has_angle else x, has_angle,
            self._period, self.search_range, self._next_id,
            ids, unw, nx, ny, nvx, nvy, nid, nlast, nang)
        self._state = (nx[:n], ny[:n], nvx[:n], nvy[:n], nid[:n], nlast[:n], nang[:n])
        self.frame = frame
        self.particle_ids = ids
        self.unwrapped_angle = unw if has_angle else None
        self.stats = {"groups": int(groups), "largest": int(largest)}
        return ids


def link(df, search_range, memory=0, *, predictor=None, n_fold=None, t_column="frame"):
    """Link a whole feature table, trackpy style.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per detection with ``frame`` (integer-valued), ``x``, ``y`` (px) and
        optionally ``angle`` (rad).
    search_range : float
        Largest displacement between linked detections (px).
    memory : int
        Frames a particle may be missing and still be re-linked. Missing frame
        numbers are blank frames, as in trackpy.
    predictor : None or "velocity"
        See :class:`Linker`.
    n_fold : int or None
        With an ``angle`` column, also add ``angle_unwrapped`` (period 2 pi / n_fold).
    t_column : str
        Name of the frame column.

    Returns
    -------
    pandas.DataFrame
        A copy sorted by frame (stable; rows of one frame keep their order) with
        ``frame`` as int64 and a new int64 column ``particle``; the input is not
        modified. Frames may come in any order: they are sorted first (documented
        behaviour, like trackpy).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"frame": [0, 0, 1, 1], "x": [0.0, 20.0, 21.0, 1.0], "y": 0.0})
    >>> link(f, search_range=5)["particle"].tolist()
    [0, 1, 1, 0]
    """
    for c in (t_column, "x", "y"):
        if c not in df.columns:
            raise ValueError(f"the table needs a {c!r} column (has {list(df.columns)})")
    t = np.asarray(df[t_column])
    if t.size and not np.all(np.isfinite(t)):
        raise ValueError(f"{t_column!r} contains NaN; every detection needs a frame index")
    if t.size and not np.all(t == np.round(t)):
        raise ValueError(f"{t_column!r} must hold integer frame indices")
    out = df.iloc[np.argsort(t, kind="stable")].copy()
    out[t_column] = np.asarray(out[t_column]).astype(np.int64)
    frames = out[t_column].to_numpy()
    x = out["x"].to_numpy(np.float64)
    y = out["y"].to_numpy(np.float64)
    ang = out["angle"].to_numpy(np.float64) if (n_fold and "angle" in out.columns) else None
    ids = np.empty(len(out), np.int64)
    unw = np.empty(len(out)) if ang is not None else None
    linker = Linker(search_range, memory=memory, predictor=predictor, n_fold=n_fold)
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]) if len(frames) else []
    ends = np.r_[starts[1:], len(frames)] if len(frames) else []
    for a, b in zip(starts, ends):
        sl = slice(a, b)
        ids[sl] = linker._step(x[sl], y[sl], None if ang is None else ang[sl], frames[a])
        if unw is not None:
            unw[sl] = linker.unwrapped_angle
    out["particle"] = ids
    if unw is not None:
        out["angle_unwrapped"] = unw
    return out
