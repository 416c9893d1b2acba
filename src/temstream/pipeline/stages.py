"""Adapters that turn the compute parts into pipeline stages (plain callables, no threads).

- :class:`Preprocess`: optional 3x3 median of the raw frame (dtype kept: 16-bit range intact).
- :class:`Denoise`: the frame and the ones before it in its series -> its expected counts
  (float32), causally (:mod:`temstream.models.denoise`); the history starts afresh with each
  series (:meth:`Denoise.reset`).
- :class:`Instances`: class probabilities -> (labels, particle table) via
  :func:`temstream.tracking.instances.extract_instances`; live settings through
  :meth:`Instances.update`.
- :class:`Register`: raw frame and particle table -> the frame's shift and quality
  (:class:`temstream.tracking.registration.Registrar`); adds registered coordinates
  (``x_reg``, ``y_reg``) to the table.
- :class:`Link`: particle table -> track ids via :class:`temstream.tracking.linking.Linker`,
  in registered coordinates where the table has them, with the detector's frame index (skipped
  frames are gaps) and bad frames bridged; the search range automatic
  (:class:`temstream.tracking.search_range.AutoSearchRange`) or set
  (:meth:`Link.set_search_range`); writes the unwrapped orientation back into the table.
- :class:`LayeredInstances`, :class:`LayeredLink`: the same for two-layer models
  (:mod:`temstream.tracking.layers`): one label plane per layer, and each layer linked by its
  own linker, track ids unique across layers.
- :func:`synthetic_particles`: probabilities with a few particles, for warming up the
  particle kernels before a live run.
"""

from __future__ import annotations

import cv2
import numpy as np

import logging

from temstream.config.schema import (ConfigError, InstancesConfig, RegisterConfig,
                                     TrackingConfig)

log = logging.getLogger(__name__)


class Preprocess:
    """Raw frame -> segmenter input. Keeps the dtype (normalisation happens in the model).

    NaN and infinite pixels of a float frame (a dead pixel map, a detector's masked gaps) are
    replaced by the median of the finite ones (0 where none is), so that no segmenter sees
    them; :attr:`nonfinite_frames` counts the frames that had any. The raw frame is recorded
    as it came.

    Parameters
    ----------
    median : bool
        Apply a 3x3 median filter (removes hot pixels and X-ray spikes).
    """

    def __init__(self, median: bool = False):
        self.median = median
        self.nonfinite_frames = 0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if image.dtype.kind == "f":
            image = self._finite(image)
        if not self.median:
            return image
        if image.dtype in (np.uint8, np.uint16, np.float32):
            return cv2.medianBlur(np.ascontiguousarray(image), 3)
        return cv2.medianBlur(image.astype(np.float32), 3)


    def _finite(self, image: np.ndarray) -> np.ndarray:
        finite = np.isfinite(image)
        if finite.all():
            return image
        self.nonfinite_frames += 1
        fill = np.median(image[finite]) if finite.any() else 0.0
        return np.where(finite, image, np.asarray(fill, image.dtype))


class Denoise:
    """Frame (H, W) counts -> its expected counts (H, W) float32, from a causal window.

    Each frame is denoised with the frames before it in its series (the window of the
    denoiser, K frames; fewer at a series start, see
    :class:`~temstream.models.denoise.StreamDenoiser`), never with later ones.

    Parameters
    ----------
    denoiser : temstream.models.denoise.Denoiser
        A loaded denoiser (``Denoiser.stream()`` gives the causal history).
    apply : {"segment", "display"}
        ``segment``: the runner segments the denoised frame and its instances' contrast
        tests weigh it; ``display``: only the dashboard and the results feed show it.
    """

    def __init__(self, denoiser, apply: str = "segment"):
        if apply not in ("segment", "display"):
            raise ConfigError(f"config key 'denoise.apply': {apply!r} is not one of "
                              "'segment', 'display'")
        self.name = denoiser.name
        self.apply = apply
        self._stream = denoiser.stream()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self._stream(image)

    def reset(self) -> None:
        """A new series: forget the frames before it."""
        self._stream.reset()


def synthetic_particles(probabilities: np.ndarray) -> np.ndarray | None:
    """Class probabilities shaped like ``probabilities`` with five confident disks of class 1
    on a confident background, each disk in a one-pixel ring of unsure pixels (so that
    outlines get trimmed), for warm-ups.

    Parameters
    ----------
    probabilities : ndarray, shape (C, H, W)
        Class probabilities of a frame (class 0 = background), e.g. of a blank one.

    Returns
    -------
    ndarray, shape (C, H, W), float32, or None
        Background at P(class 0) = 0.999; five disks of radius ``max(4, min(H, W) // 24)`` px
        on the diagonal at P(class 1) = 0.98, in a ring at P(class 1) = 0.4 (above a card
        threshold, below the frame's expected-Dice threshold); None where the frame is
        smaller than 24 px or there is no class besides the background.
    """
    p = np.asarray(probabilities)
    if p.ndim != 3 or p.shape[0] < 2 or min(p.shape[1:]) < 24:
        return None
    h, w = p.shape[1:]
    r = max(4, min(h, w) // 24)
    yy, xx = np.ogrid[:h, :w]
    inside = np.zeros((h, w), bool)
    ring = np.zeros((h, w), bool)
    for f in (0.2, 0.35, 0.5, 0.65, 0.8):
        d2 = (xx - f * w) ** 2 + (yy - f * h) ** 2
        inside |= d2 <= r * r
        ring |= d2 <= (r + 1) ** 2
    ring &= ~inside
    out = np.full(p.shape, 0.001 / (p.shape[0] - 1), np.float32)
    out[0] = 0.999
    out[:, inside | ring] = 0.0
    out[0, inside], out[1, inside] = 0.02, 0.98
    out[0, ring], out[1, ring] = 0.6, 0.4
    return out


class Instances:
    """Probabilities (C, H, W) -> instance labels (H, W) int32 and a per-particle table.

    The stage wraps :func:`temstream.tracking.instances.extract_instances` with one frozen
    :class:`~temstream.config.schema.InstancesConfig` and the detection threshold. Both can be
    changed while frames flow (:meth:`update`): the pair is replaced as a whole, so each frame
    is extracted under one consistent set of settings.

    Parameters
    ----------
    settings : InstancesConfig, optional
        The ``[instances]`` settings (their defaults when None).
    classes : tuple of str
        The segmenter's class names (``classes[0]`` is background).
    threshold : float
        Detection threshold on ``1 - P(background)`` (the model card's, or the user's).
    """

    def __init__(self, settings: InstancesConfig | None = None, *,
                 classes: tuple[str, ...] = ("background", "particle"), threshold: float = 0.5):
        from temstream.tracking.instances import extract_instances

        self._extract = extract_instances
        self.classes = tuple(classes)
        self._state = (InstancesConfig() if settings is None else settings,
                       _check_threshold(threshold))

    @property
    def settings(self) -> InstancesConfig:
        return self._state[0]

    @property
    def threshold(self) -> float:
        return self._state[1]

    def update(self, *, threshold: float | None = None, **changes) -> None:
        """Change the threshold and/or ``[instances]`` keys from the next frame on.

        Raises
        ------
        ConfigError
            An unknown key or a bad value (named); nothing changes then.
        """
        settings, old = self._state
        new = (settings.replace(**changes) if changes else settings,
               old if threshold is None else _check_threshold(threshold))
        self._state = new  # one reference swap: the compute thread reads one pair per frame

    def __call__(self, probabilities: np.ndarray, frame: np.ndarray | None = None):
        settings, threshold = self._state
        return self._extract(probabilities, settings, classes=self.classes,
                             threshold=threshold, frame=frame)


class LayeredInstances(Instances):
    """A two-layer model's probabilities -> (view (H, W), table, layer_labels (L, H, W)).

    :func:`temstream.tracking.layers.extract_layers` with the lattice phase
    (:class:`~temstream.tracking.layers.LayerLattices`), which remembers each layer's lattice
    from the previous frame so that layer identity stays the same through a movie; settings
    change while frames flow as for :class:`Instances`.
    """

    def __init__(self, settings: InstancesConfig | None = None, *,
                 classes: tuple[str, ...], threshold: float = 0.5):
        super().__init__(settings, classes=classes, threshold=threshold)
        from temstream.tracking.layers import LayerLattices, extract_layers

        self._extract_layers = extract_layers
        self.lattices = LayerLattices()

    def reset(self) -> None:
        """Forget the previous frame's lattices (a new series)."""
        self.lattices.reset()

    def __call__(self, probabilities: np.ndarray, frame: np.ndarray | None = None):
        settings, threshold = self._state
        return self._extract_layers(probabilities, settings, classes=self.classes,
                                    threshold=threshold, lattices=self.lattices)


def _check_threshold(value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ConfigError(f"config key 'segment.threshold': {value!r} is outside (0, 1)")
    return value


class Register:
    """Raw frame and particle table -> the frame's :class:`Registration` (shift since the
    series' first frame, jump, quality flags); adds ``x_reg = x - shift_x`` and ``y_reg`` to
    the table.

    Runs after the instance stage (it may use the particles) and before linking. With
    ``enabled = false`` no shift is measured (0) and the table gets no registered coordinates,
    but frame quality is still judged where ``quality`` is on.

    Parameters
    ----------
    settings : RegisterConfig, optional
        The ``[register]`` settings (their defaults when None).
    """

    def __init__(self, settings: RegisterConfig | None = None):
        from temstream.tracking.registration import Registrar, Registration

        self.settings = RegisterConfig() if settings is None else settings
        st = self.settings
        self._none = Registration
        self.registrar = Registrar(max_side=st.max_side, jump_px=st.jump_px,
                                   **({} if st.quality else {"blank_ratio": 0.0, "blur_z": 0.0,
                                                             "saturated_fraction": 0.0}))

    def reset(self) -> None:
        """A new series: its first frame is the origin again."""
        self.registrar.reset()

    def __call__(self, frame: np.ndarray, table: dict, index: int | None = None):
        """The frame's registration; ``index`` is the detector's frame index (frames dropped
        before this one are then not mistaken for a jump)."""
        st = self.settings
        if not (st.enabled or st.quality):
            return self._none()
        xy = None
        if st.enabled and st.particles and len(table.get("x", ())):
            xy = np.stack([np.asarray(table["x"], np.float64),
                           np.asarray(table["y"], np.float64)], 1)
        reg = self.registrar(frame, xy, index)
        if not st.enabled:  # quality only, no registered coordinates
            return self._none(quality=reg.quality)
        if "x" in table:
            table["x_reg"] = np.asarray(table["x"], np.float64) - reg.shift_x
            table["y_reg"] = np.asarray(table["y"], np.float64) - reg.shift_y
        return reg


class Link:
    """Feed each frame's particle table to the online linker; returns the ids.

    Particles are linked in registered coordinates (``x_reg``, ``y_reg``) where the table has
    them, else in detector coordinates. ``memory`` counts the frames in which a particle could
    have been seen and was not: frames that never reached the linker (dropped under load,
    missing from the detector's numbering, known from the detector's frame index) and frames
    marked bad do not use it up, so tracks survive a stall or a blank frame; after more than
    ``10 (memory + 1)`` skipped frames in a row every track ends. A frame marked bad is linked
    without changing the tracks (its particles get the ids of the tracks they continue, or
    -1). With the automatic search range, a step across k skipped frames searches sqrt(k)
    times as far (a random walk), at most 3 times. The linker unwraps orientations along each
    track; the unwrapped angles replace ``angle``. Track ids stay unique across the series of
    one run (:meth:`reset` starts a new series).

    With ``search_range = 0`` the range comes from the data
    (:class:`~temstream.tracking.search_range.AutoSearchRange`: the displacements between
    consecutive good frames, from the first pair on, updated as the movie goes on);
    :meth:`set_search_range` switches between a set range and the automatic one while frames
    flow.

    Parameters
    ----------
    settings : TrackingConfig, optional
        The ``[tracking]`` settings (their defaults when None).
    n_fold : int
        Orientation symmetry of the particles (``instances.n_fold``).
    """

    def __init__(self, settings: TrackingConfig | None = None, *, n_fold: int = 4):
        from temstream.tracking.linking import Linker
        from temstream.tracking.search_range import AutoSearchRange

        settings = TrackingConfig() if settings is None else settings
        self.auto = AutoSearchRange()
        self._auto_on = settings.search_range == 0
        self._linker_kwargs = dict(
            search_range=settings.search_range or self.auto.default, memory=settings.memory,
            predictor="velocity" if settings.predict else None, n_fold=n_fold)
        self.linker = Linker(**self._linker_kwargs)
        self._pending_range: float | None = None
        self._offset = 0  # ids stay unique across series in one recording
        self._next = 0
        self._prev_xy: np.ndarray | None = None  # the last good frame's particles (registered)
        self._last_index: int | None = None  # the detector's index of the last linked frame
        self._clock = 0  # frames linked: the linker's memory counts these
        self._expire = 10 * (settings.memory + 1)  # skipped frames that end every track
        self._seen: dict[int, int] = {}  # track id (the linker's) -> clock when last seen

    @property
    def automatic(self) -> bool:
        """The search range comes from the data."""
        pending = self._pending_range
        return self._auto_on if pending is None else pending == 0

    @property
    def search_range(self) -> float:
        """The search range in use (px), or the one set for the next frame (0: automatic,
        until the next frame)."""
        pending = self._pending_range
        return self.linker.search_range if pending is None else pending

    def set_search_range(self, value: float) -> None:
        """Link from the next frame on with this search range (px; 0 = automatic); safe from
        any thread."""
        self._pending_range = TrackingConfig(search_range=value).search_range

    def summary(self) -> dict:
        """How the search range was chosen, for the run summary."""
        if not self._auto_on:
            return {"search_range": "set", "search_range_px": self.linker.search_range}
        return {"search_range": "automatic", **self.auto.summary()}

    def reset(self) -> None:
        """Start afresh (a new series: its particles are not the previous series' tracks)."""
        self.linker.reset()
        self.auto.reset()
        self._prev_xy = None
        self._last_index = None
        self._clock = 0
        self._seen = {}
        if self._auto_on:
            self.linker.search_range = self.auto.default
        self._offset = self._next

    def _hold_out_of_view(self, view, clock: int) -> None:
        """Refresh the waiting tracks that could not have been seen (see ``view``)."""
        x, y, tid, _ = self.linker.waiting
        edge = 0.5 * self.linker.search_range
        x0, y0, x1, y1 = view
        out = (x < x0 + edge) | (x >= x1 - edge) | (y < y0 + edge) | (y >= y1 - edge)
        if not out.any():
            return
        seen = np.array([self._seen.get(int(i), clock) for i in tid])
        self.linker.refresh(out & (clock - seen <= self._expire))
        if len(self._seen) > 4 * max(self.linker.n_tracks, 1000):  # forget the long gone
            keep = set(tid.tolist())
            self._seen = {k: v for k, v in self._seen.items() if k in keep}

    def warm_up(self, table: dict) -> None:
        """Link ``table`` and the same particles moved by half a pixel on a throwaway linker
        with this one's settings (and once more without committing), and estimate a search
        range from them on a throwaway estimator, so the kernels are compiled before the first
        live frame; this stage's tracks, ids and estimate are untouched."""
        from temstream.tracking.linking import Linker
        from temstream.tracking.search_range import AutoSearchRange

        probe = Linker(**self._linker_kwargs)
        probe.step(table)
        moved = dict(table)
        moved["x"] = np.asarray(table["x"], dtype=np.float64) + 0.5
        probe.step(moved, commit=False)
        probe.step(moved)
        xy = np.stack([np.asarray(table["x"], np.float64), np.asarray(table["y"], np.float64)], 1)
        AutoSearchRange().observe(xy, xy + 0.5)

    def __call__(self, table: dict, frame: int | None = None, *, bridge: bool | str = False,
                 view: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """Track ids of ``table``'s rows.

        Parameters
        ----------
        table : dict of 1-D arrays
            ``x``, ``y`` [, ``x_reg``, ``y_reg``, ``angle``].
        frame : int, optional
            The detector's frame index (default: the previous one + 1). An index not after the
            previous one (a repeated or late frame) is linked as the next frame.
        bridge : bool or str
            The frame is not trusted: link without changing the tracks. Its quality flags
            (``"blurred"``, ...) may be given instead of True; a ``"blank"`` frame's particles
            are noise and get -1.
        view : (x0, y0, x1, y1), optional
            The detector's field of view in the coordinates linked (registered ones: the
            frame's corners minus its shift). A track whose last position is outside it, or
            within half the search range of its edge, could not have been seen: waiting does
            not use up its memory, for up to ``10 (memory + 1)`` frames, so that a particle
            a stage jump pushed out of view keeps its track when the stage comes back.
        """
        pending, self._pending_range = self._pending_range, None
        if pending is not None:
            self._auto_on = pending == 0
            if not self._auto_on:
                self.linker.search_range = pending
                self._linker_kwargs["search_range"] = pending
            elif self.auto.pairs:
                self.linker.search_range = self.auto.value
        reg = "x_reg" in table and "y_reg" in table
        xs = np.asarray(table["x_reg" if reg else "x"], dtype=np.float64)
        ys = np.asarray(table["y_reg" if reg else "y"], dtype=np.float64)
        last = self._last_index
        if frame is None:
            frame = 0 if last is None else last + 1
        frame = int(frame)
        if last is not None and frame <= last:
            log.warning("frame %d arrived after frame %d: linked as the next frame", frame, last)
            frame = last + 1
        elapsed = 1 if last is None else frame - last
        if elapsed > self._expire:  # a long stall: the tracks are too old to continue
            self._clock += self.linker.memory + 1
        if not bridge:
            xy = np.stack([xs, ys], 1)
            if self._auto_on and self._prev_xy is not None and len(xy) and elapsed == 1:
                self.auto.observe(self._prev_xy, xy)
            self._prev_xy = xy
        if view is not None and self.linker.n_tracks and self.linker.frame is not None:
            self._hold_out_of_view(view, self._clock)
        base = self.auto.value if self._auto_on else self.linker.search_range
        if self._auto_on:
            # across skipped frames a random walk goes sqrt(frames) times as far
            self.linker.search_range = base * float(np.sqrt(min(elapsed, 9)))
        features = {"x": xs, "y": ys}
        if "angle" in table:
            features["angle"] = table["angle"]
        if isinstance(bridge, str) and "blank" in bridge.split(","):
            features = {"x": xs[:0], "y": ys[:0]}  # nothing real to look up
        ids = self.linker.step(features, self._clock + 1, commit=not bridge)
        if len(ids) != len(xs):
            ids = np.full(len(xs), -1, np.int64)
        if self._auto_on:
            self.linker.search_range = base
            self._linker_kwargs["search_range"] = base
        if not bridge:
            self._clock += 1
            self._last_index = frame
            for i in ids[ids >= 0].tolist():
                self._seen[i] = self._clock
        ids = np.where(ids >= 0, ids + self._offset, -1).astype(np.int64)
        if len(ids) and ids.max() >= 0:
            self._next = max(self._next, int(ids.max()) + 1)
        unwrapped = self.linker.unwrapped_angle  # None when the table has no angle
        if unwrapped is not None and len(unwrapped) == len(ids):
            table["angle"] = np.asarray(unwrapped)
        return ids


class LayeredLink:
    """Link each layer's particles with its own :class:`Link` (own linker, own tracks).

    Rows are split by the table's ``layer`` column (1..L); every track id is unique across the
    layers (a shared counter), so ``particle`` names one particle of one layer. Rows with
    another ``layer`` get -1.

    Parameters
    ----------
    settings : TrackingConfig, optional
    n_fold : int
    n_layers : int
    """

    def __init__(self, settings: TrackingConfig | None = None, *, n_fold: int = 4,
                 n_layers: int = 2):
        self.links = [Link(settings, n_fold=n_fold) for _ in range(int(n_layers))]
        self._ids: dict[tuple[int, int], int] = {}
        self._next = 0

    @property
    def automatic(self) -> bool:
        return self.links[0].automatic

    @property
    def search_range(self) -> float:
        """px: the largest any layer's linker uses now."""
        return max(link.search_range for link in self.links)

    def summary(self) -> dict:
        """Layer A's linker's summary (:meth:`Link.summary`), with each layer's range."""
        out = dict(self.links[0].summary())
        out["layers_search_range_px"] = [round(link.search_range, 2) for link in self.links]
        return out

    def set_search_range(self, value: float) -> None:
        """Every layer links from the next frame on with this search range (px)."""
        for link in self.links:
            link.set_search_range(value)

    def reset(self) -> None:
        """A new series: no track continues (ids stay unique)."""
        for link in self.links:
            link.reset()

    def warm_up(self, table: dict) -> None:
        self.links[0].warm_up(table)

    def __call__(self, table: dict, frame: int | None = None, *, bridge: bool | str = False,
                 view=None) -> np.ndarray:
        """Track ids (N,) of ``table``'s rows; arguments as :meth:`Link.__call__`."""
        layer = np.asarray(table.get("layer", ()), dtype=np.int64)
        n = len(np.asarray(table.get("x", ())))
        ids = np.full(n, -1, np.int64)
        angle = np.array(table["angle"], dtype=np.float64) if "angle" in table else None
        for k, link in enumerate(self.links):
            sel = layer == k + 1
            sub = {key: np.asarray(v)[sel] for key, v in table.items()
                   if np.ndim(v) == 1 and len(v) == n}
            local = link(sub, frame, bridge=bridge, view=view)
            out = np.empty(len(local), np.int64)
            for i, lid in enumerate(np.asarray(local, np.int64).tolist()):
                if lid < 0:
                    out[i] = -1
                    continue
                key = (k, lid)
                gid = self._ids.get(key)
                if gid is None:
                    gid = self._ids[key] = self._next
                    self._next += 1
                out[i] = gid
            ids[sel] = out
            if angle is not None and "angle" in sub:
                angle[sel] = sub["angle"]
        if angle is not None:
            table["angle"] = angle
        return ids
