"""Where a frame's particle outlines are drawn: the per-frame expected-Dice threshold.

A U-Net's card carries one decision threshold, chosen on validation pairs of every dose. The
best threshold for the Dice of a frame moves with its dose (``docs/models.md``, the
calibration table): one threshold draws the particles of a clean frame about a pixel too wide.
The ``"expected-dice"`` outline rule picks, for each frame, the threshold that maximises the
Dice expected under the frame's own foreground probabilities (the plug-in rule for the
F-measure, Lipton, Elkan & Naryanaswamy, *Thresholding classifiers to maximize F1 score*,
2014): selecting the pixels with ``q >= t`` gives

    E[Dice](t) ~= 2 * sum(q[q >= t]) / (count(q >= t) + sum(q))

Particles are still found at the card's threshold; this rule only decides how far each one
reaches (it never goes below the card's threshold), so it trims rings, never adds particles.
Pure numpy/numba: no threads, no torch.
"""

from __future__ import annotations

import numba
import numpy as np

#: how a frame's outlines are drawn: at the card's threshold, or per frame (module docstring)
OUTLINE_RULES = ("expected-dice", "threshold")

#: resolution of the expected-Dice threshold (bins of P(foreground))
BINS = 256


@numba.njit(cache=True, nogil=True)
def _histogram(foreground, bins, counts, sums):  # pragma: no cover - compiled
    for q in foreground.ravel():
        if not (q >= 0.0):  # NaN: no class, no vote
            continue
        b = int(q * bins)
        if b >= bins:
            b = bins - 1
        counts[b] += 1
        sums[b] += q


def expected_dice_threshold(foreground: np.ndarray, *, floor: float = 0.0,
                            ceiling: float = 1.0, bins: int = BINS) -> float:
    """The threshold on P(foreground) that maximises a frame's expected Dice.

    Parameters
    ----------
    foreground : ndarray, shape (H, W), float
        Foreground probability ``1 - P(background)`` of one frame, in [0, 1]; NaN pixels are
        ignored.
    floor, ceiling : float
        The result is clipped to ``[floor, ceiling]`` (the pipeline passes the card's
        threshold as the floor).
    bins : int
        Candidate thresholds ``k / bins``; 256 resolves 0.004.

    Returns
    -------
    float
        ``t = k / bins`` with the largest ``2 S(t) / (N(t) + S(0))``, where ``N(t)`` counts the
        pixels with ``q >= t`` and ``S(t)`` sums their ``q``; among equal values the lowest
        ``t``. ``floor`` for a frame without foreground probability.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.zeros((64, 64), np.float32); q[8:24, 8:24] = 0.95; q[7, 8:24] = 0.2
    >>> round(expected_dice_threshold(q, floor=0.1), 3)  # the 0.2 ring is left out
    0.203
    """
    q = np.asarray(foreground, dtype=np.float32)
    counts = np.zeros(bins, np.int64)
    sums = np.zeros(bins, np.float64)
    _histogram(q, int(bins), counts, sums)
    total = sums.sum()
    if not total > 0:
        return float(floor)
    selected = np.cumsum(counts[::-1])[::-1]  # N(k / bins): pixels in bins k..end
    mass = np.cumsum(sums[::-1])[::-1]  # S(k / bins)
    expected = 2.0 * mass / (selected + total)
    k = int(np.argmax(expected))
    return float(min(max(k / bins, floor), ceiling))


def outline_threshold(foreground: np.ndarray, rule: str, threshold: float) -> float:
    """The threshold that draws one frame's outlines under ``rule``.

    Parameters
    ----------
    foreground : ndarray, shape (H, W)
        ``1 - P(background)`` of the frame.
    rule : {"expected-dice", "threshold"}
        See :data:`OUTLINE_RULES`.
    threshold : float
        The detection threshold (the card's, or the user's).

    Returns
    -------
    float
        ``threshold`` for ``"threshold"``; the expected-Dice threshold, never below
        ``threshold``, for ``"expected-dice"``.
    """
    if rule == "threshold":
        return float(threshold)
    if rule == "expected-dice":
        return expected_dice_threshold(foreground, floor=float(threshold))
    raise ValueError(f"outline rule must be one of {OUTLINE_RULES}, not {rule!r}")


def frame_mask(seg, probs: np.ndarray) -> np.ndarray:
    """Foreground mask of one frame as the segmenter outlines it.

    Parameters
    ----------
    seg : Segmenter
        Its ``threshold`` and, if it has one, ``outline`` rule (default ``"threshold"``).
    probs : ndarray, shape (C, H, W)
        Class probabilities of the frame (class 0 = background).

    Returns
    -------
    ndarray, shape (H, W), bool
    """
    fg = 1.0 - probs[0]
    return fg >= outline_threshold(fg, getattr(seg, "outline", "threshold"), seg.threshold)
