"""Where a frame's particle outlines are drawn: the per-frame expected-Dice threshold.

A U-Net's card carries one decision threshold, chosen on validation pairs of every dose. The
best threshold for the Dice of a frame moves with its dose: one threshold draws the particles
of a clean frame about a pixel too wide.
The ``"expected-dice"`` outline rule picks, for each frame, the threshold that maximises the
Dice expected under the frame's own foreground probabilities (the plug-in rule for the
F-measure, Lipton, Elkan & Narayanaswamy, *Thresholding classifiers to maximize F1 score*,
2014): selecting the pixels with ``q >= t`` gives

    E[Dice](t) ~= 2 * sum(q[q >= t]) / (count(q >= t) + sum(q))

Particles are still found at the card's threshold; this rule only decides how far each one
reaches (it never goes below the card's threshold), so it trims rings, never adds particles.
The rules are named by ``instances.outline`` (:data:`temstream.config.schema.OUTLINE_RULES`);
``"half-contrast"`` outlines are redrawn from the frame (:mod:`temstream.tracking.edges`).
Pure numpy/numba: no threads, no torch.
"""

from __future__ import annotations

import numba
import numpy as np

from temstream.config.schema import OUTLINE_RULES

#: resolution of the expected-Dice threshold (bins of P(foreground))
BINS = 256


@numba.njit(cache=True, nogil=True)
def _histogram(foreground, floor, bins, counts, sums):  # pragma: no cover - compiled
    """Bin the pixels at or above ``floor`` (bin ``int(floor * bins)`` holds those of its
    bin from ``floor`` up); return the sum over every pixel. Most pixels of a frame are
    background below the floor, so they cost one addition each."""
    lowest = int(floor * bins)
    total = 0.0
    for q in foreground.ravel():
        if not (q >= 0.0):  # NaN: no class, no vote
            continue
        total += q
        if q >= floor:
            b = min(max(int(q * bins), lowest), bins - 1)
            counts[b] += 1
            sums[b] += q
    return total


def expected_dice_threshold(foreground: np.ndarray, *, floor: float = 0.0,
                            ceiling: float = 1.0, bins: int = BINS) -> float:
    """The threshold on P(foreground) that maximises a frame's expected Dice.

    Parameters
    ----------
    foreground : ndarray, shape (H, W), float
        Foreground probability ``1 - P(background)`` of one frame, in [0, 1]; NaN pixels are
        ignored.
    floor, ceiling : float
        The threshold is sought at and above ``floor`` (the pipeline passes the card's
        threshold) and capped at ``ceiling``.
    bins : int
        Candidate thresholds ``k / bins``; 256 resolves 0.004.

    Returns
    -------
    float
        The candidate ``t`` (``floor`` or ``k / bins`` above it) with the largest
        ``2 S(t) / (N(t) + S(0))``, where ``N(t)`` counts the pixels with ``q >= t`` and
        ``S(t)`` sums their ``q``; among equal values the lowest ``t``; at most ``ceiling``.
        ``floor`` for a frame without foreground probability.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.zeros((64, 64), np.float32); q[8:24, 8:24] = 0.95; q[7, 8:24] = 0.2
    >>> round(expected_dice_threshold(q, floor=0.1), 3)  # the 0.2 ring is left out
    0.203
    """
    q = np.asarray(foreground, dtype=np.float32)
    floor = float(np.clip(floor, 0.0, 1.0))
    counts = np.zeros(bins, np.int64)
    sums = np.zeros(bins, np.float64)
    total = _histogram(q, np.float32(floor), int(bins), counts, sums)
    lowest = int(np.float32(floor) * bins)  # the bin of t = floor
    if not total > 0 or lowest >= bins:
        return floor
    selected = np.cumsum(counts[::-1])[::-1][lowest:]  # N(t) for t = floor, (lowest+1)/bins...
    mass = np.cumsum(sums[::-1])[::-1][lowest:]  # S(t)
    expected = 2.0 * mass / (selected + total)
    k = int(np.argmax(expected))
    t = floor if k == 0 else (lowest + k) / bins
    return float(min(t, ceiling))


def outline_threshold(foreground: np.ndarray, rule: str, threshold: float) -> float:
    """The threshold that draws one frame's outlines under ``rule``.

    Parameters
    ----------
    foreground : ndarray, shape (H, W)
        ``1 - P(background)`` of the frame.
    rule : {"expected-dice", "threshold", "half-contrast"}
        See :data:`OUTLINE_RULES`.
    threshold : float
        The detection threshold (the card's, or the user's).

    Returns
    -------
    float
        ``threshold`` for ``"threshold"`` and ``"half-contrast"`` (whose outlines the
        instance stage redraws from the image); the expected-Dice threshold, never below
        ``threshold``, for ``"expected-dice"``.
    """
    if rule in ("threshold", "half-contrast", "edge-model"):
        return float(threshold)
    if rule == "expected-dice":
        return expected_dice_threshold(foreground, floor=float(threshold))
    raise ValueError(f"outline rule must be one of {OUTLINE_RULES}, not {rule!r}")
