"""Adapters that turn the compute parts into pipeline stages (plain callables, no threads).

- :class:`Preprocess`: optional 3x3 median of the raw frame (dtype kept: 16-bit range intact).
- :class:`Instances`: class probabilities -> (labels, particle table) via
  :func:`temstream.tracking.instances.extract_instances`.
- :class:`Link`: particle table -> track ids via :class:`temstream.tracking.linking.Linker`;
  writes the unwrapped orientation back into the table.
- :func:`synthetic_particles`: probabilities with a few particles, for warming up the
  particle kernels before a live run.
"""

from __future__ import annotations

import cv2
import numpy as np


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

    Particles are found at ``threshold``; with ``outline="expected-dice"`` each frame's
    outlines are then drawn at its expected-Dice threshold (:mod:`temstream.models.decision`),
    with ``outline="half-contrast"`` from the frame itself at half of each particle's contrast
    (:mod:`temstream.tracking.edges`).
    """

    def __init__(self, *, classes: tuple[str, ...], threshold: float = 0.5, min_area: int = 24,
                 split_touching: bool = False, n_fold: int = 4, seed_threshold: float = 0.85,
                 min_seed_area: int = 10, merge_below: float = 0.5,
                 merge_share: float = 0.2, min_score: float = 0.65,
                 faint_contrast_z: float = 5.0, faint_threshold: float = 0.0,
                 outline: str = "threshold"):
        from temstream.models.decision import OUTLINE_RULES, outline_threshold
        from temstream.tracking.instances import extract_instances

        if outline not in OUTLINE_RULES:
            raise ValueError(f"outline must be one of {OUTLINE_RULES}, not {outline!r}")
        self._extract = extract_instances
        self._outline_threshold = outline_threshold
        self.outline = outline
        self.kwargs = dict(classes=tuple(classes), threshold=threshold, min_area=min_area,
                           split_touching=split_touching, n_fold=n_fold,
                           seed_threshold=seed_threshold, min_seed_area=min_seed_area,
                           merge_below=merge_below, merge_share=merge_share,
                           min_score=min_score, faint_contrast_z=faint_contrast_z,
                           faint_threshold=faint_threshold)

    def __call__(self, probabilities: np.ndarray, raw: np.ndarray | None = None):
        kwargs = self.kwargs  # one read each: the dashboard may swap them between frames
        rule = self.outline
        outline, image = None, None
        if rule == "expected-dice" and np.ndim(probabilities) == 3:
            outline = self._outline_threshold(1.0 - probabilities[0], rule, kwargs["threshold"])
        elif rule == "half-contrast" and raw is not None:
            image = raw
        return self._extract(probabilities, intensity=None, outline_threshold=outline,
                             outline_image=image, **kwargs)


class Link:
    """Feed each frame's particle table to the online linker; returns the ids.

    The linker unwraps orientations along each track; the unwrapped angles replace ``angle``.
    """

    def __init__(self, *, search_range: float, memory: int = 0, predict: bool = False,
                 n_fold: int = 4):
        from temstream.tracking.linking import Linker

        self._linker_kwargs = dict(search_range=search_range, memory=memory,
                                   predictor="velocity" if predict else None, n_fold=n_fold)
        self.linker = Linker(**self._linker_kwargs)

        self._offset = 0  # ids stay unique across series in one recording
        self._next = 0

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
        ids = np.asarray(self.linker.step(table), dtype=np.int64) + self._offset
        if len(ids):
            self._next = max(self._next, int(ids.max()) + 1)
        unwrapped = getattr(self.linker, "unwrapped_angle", None)
        if unwrapped is not None and "angle" in table and len(unwrapped) == len(ids):
            table["angle"] = np.asarray(unwrapped)
        return ids
