"""Adapters that turn the compute parts into pipeline stages (plain callables, no threads).

- :class:`Preprocess`: optional 3x3 median of the raw frame (dtype kept: 16-bit range intact).
- :class:`Instances`: class probabilities -> (labels, particle table) via
  :func:`temstream.tracking.instances.extract_instances`; live settings through
  :meth:`Instances.update`.
- :class:`Link`: particle table -> track ids via :class:`temstream.tracking.linking.Linker`;
  writes the unwrapped orientation back into the table; :meth:`Link.set_search_range`.
- :class:`LayeredInstances`, :class:`LayeredLink`: the same for two-layer models
  (:mod:`temstream.tracking.layers`): one label plane per layer, and each layer linked by its
  own linker, track ids unique across layers.
- :func:`synthetic_particles`: probabilities with a few particles, for warming up the
  particle kernels before a live run.
"""

from __future__ import annotations

import cv2
import numpy as np

from temstream.config.schema import ConfigError, InstancesConfig, TrackingConfig


class Preprocess:
    """Raw frame -> segmenter input. Keeps the dtype (normalisation happens in the model).

    Parameters
    ----------
    median : bool
        Apply a 3x3 median filter (removes hot pixels and X-ray spikes).
    """

    def __init__(self, median: bool = False):
        self.median = median

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not self.median:
            return image
        if image.dtype in (np.uint8, np.uint16, np.float32):
            return cv2.medianBlur(np.ascontiguousarray(image), 3)
        return cv2.medianBlur(image.astype(np.float32), 3)


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


class Link:
    """Feed each frame's particle table to the online linker; returns the ids.

    The linker unwraps orientations along each track; the unwrapped angles replace ``angle``.
    Track ids stay unique across the series of one run (:meth:`reset` starts a new series).

    Parameters
    ----------
    settings : TrackingConfig, optional
        The ``[tracking]`` settings (their defaults when None).
    n_fold : int
        Orientation symmetry of the particles (``instances.n_fold``).
    """

    def __init__(self, settings: TrackingConfig | None = None, *, n_fold: int = 4):
        from temstream.tracking.linking import Linker

        settings = TrackingConfig() if settings is None else settings
        self._linker_kwargs = dict(search_range=settings.search_range, memory=settings.memory,
                                   predictor="velocity" if settings.predict else None,
                                   n_fold=n_fold)
        self.linker = Linker(**self._linker_kwargs)
        self._pending_range: float | None = None
        self._offset = 0  # ids stay unique across series in one recording
        self._next = 0

    @property
    def search_range(self) -> float:
        """The search range in use (px), or the one set for the next frame."""
        pending = self._pending_range
        return self.linker.search_range if pending is None else pending

    def set_search_range(self, value: float) -> None:
        """Link from the next frame on with this search range (px); safe from any thread."""
        self._pending_range = TrackingConfig(search_range=value).search_range

    def reset(self) -> None:
        """Start afresh (a new series: its particles are not the previous series' tracks)."""
        self.linker.reset()
        self._offset = self._next

    def warm_up(self, table: dict) -> None:
        """Link ``table`` and the same particles moved by half a pixel on a throwaway linker
        with this one's settings, so the linking kernels are compiled before the first live
        frame; this stage's tracks and ids are untouched."""
        from temstream.tracking.linking import Linker

        probe = Linker(**self._linker_kwargs)
        probe.step(table)
        moved = dict(table)
        moved["x"] = np.asarray(table["x"], dtype=np.float64) + 0.5
        probe.step(moved)

    def __call__(self, table: dict) -> np.ndarray:
        pending, self._pending_range = self._pending_range, None
        if pending is not None:
            self.linker.search_range = pending
            self._linker_kwargs["search_range"] = pending
        ids = np.asarray(self.linker.step(table), dtype=np.int64) + self._offset
        if len(ids):
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
    def search_range(self) -> float:
        return self.links[0].search_range

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

    def __call__(self, table: dict, *args, **kwargs) -> np.ndarray:
        layer = np.asarray(table.get("layer", ()), dtype=np.int64)
        n = len(np.asarray(table.get("x", ())))
        ids = np.full(n, -1, np.int64)
        angle = np.array(table["angle"], dtype=np.float64) if "angle" in table else None
        for k, link in enumerate(self.links):
            sel = layer == k + 1
            sub = {key: np.asarray(v)[sel] for key, v in table.items()
                   if np.ndim(v) == 1 and len(v) == n}
            local = link(sub, *args, **kwargs)
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
