"""Particle outlines redrawn at half of each particle's own contrast (the hand-drawn convention).

A network trained on simulations outlines a particle where the simulator put its geometric
edge: for a sphere or a blurred edge that is where the contrast has fallen to about a fifth of
its plateau. People outlining particles by hand (and the usual "full width at half maximum"
sizing) draw the edge where the contrast is about half of it: on the real msa-em images the
hand-drawn edges sit at 55 % of the plateau, and a sim-trained network draws those particles
2-5 px too wide (``docs/models.md``). :func:`half_contrast_outlines` keeps the particles that
were found and redraws each one's outline from the image: the pixels of the smoothed frame
that lie beyond half-way from the particle's local background to its own core level, grown a
few pixels out of the found outline and with holes filled (faint particles whose
probabilities are speckled come out whole).

Pure numpy/OpenCV/numba: no threads, no torch.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

#: defaults, chosen by cross-validation on the 20 msa-em images (docs/models.md): the level
#: is the half-maximum convention, not tuned
SMOOTH_PX = 5.0
GROW_PX = 6
LEVEL = 0.5
#: the local background of a particle: pixels this far (px) from every found particle and
#: nearer to this one than to any other
RING_PX = (4.0, 12.0)
#: a redrawn outline smaller than this fraction of the found one is not trusted (too faint a
#: particle, or one whose contrast the smoothing washed out): the found outline stays
MIN_KEPT = 0.3



def checked_labels(image, labels) -> np.ndarray:
    """``labels`` as C-contiguous int32, checked to be the 2-D shape of ``image``.

    Raises
    ------
    ValueError
        When the two shapes differ or are not 2-D.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if labels.shape != np.shape(image) or labels.ndim != 2:
        raise ValueError(f"image {np.shape(image)} and labels {labels.shape} must be the same "
                         f"2-D shape")
    return labels

def _medians(values: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` for each id 1..n (NaN where an id has none): one sort of the
    selected pixels, not of the frame."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    with np.errstate(invalid="ignore"):  # inf frames: NaN ranks, NaN levels, outlines kept
        rank = (values - lo) * (0.5 / max(hi - lo, 1e-12))  # in [0, 0.5]: ids stay apart
    order = np.argsort(ids + rank)  # by id, then by value
    counts = np.bincount(ids, minlength=n + 1)[:n + 1]
    starts = (np.cumsum(counts) - counts)[1:]  # where each id 1..n begins in ``order``
    counts = counts[1:]
    out = np.full(n, np.nan)
    has = counts > 0
    lo = values[order[starts[has] + (counts[has] - 1) // 2]]
    hi = values[order[starts[has] + counts[has] // 2]]
    out[has] = 0.5 * (lo + hi)
    return out


def _nearest_particle(labels: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (px) to the nearest particle pixel and that particle's id, for every pixel
    (0 and its own id inside a particle): one OpenCV labelled distance transform, each
    particle pixel its own source (a few times faster than scipy's feature transform)."""
    dist, source = cv2.distanceTransformWithLabels((~found).view(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(source.max()) + 1, np.int32)
    lut[source[found]] = labels[found]
    return dist, lut[source]


def _smoothed_by_size(image: np.ndarray, labels: np.ndarray, owner: np.ndarray, n: int,
                      smooth_px: float) -> np.ndarray:
    """The frame smoothed, each pixel at the scale of the particle it belongs to: ``smooth_px``,
    or half or a quarter of it for particles whose radius is under 3x that (a wide Gaussian
    pulls the half-contrast contour of a small particle inwards, by about sigma^2 / 2r)."""
    frame = np.ascontiguousarray(image, dtype=np.float32)
    sigmas = smooth_px / np.array([1.0, 2.0, 4.0])
    radius = np.sqrt(np.bincount(labels.ravel(), minlength=n + 1) / np.pi)
    scale = np.searchsorted(-3.0 * sigmas, -radius).clip(0, 2)  # largest sigma <= radius / 3
    stack = [cv2.GaussianBlur(frame, (0, 0), float(s), borderType=cv2.BORDER_REFLECT)
             if (scale == j).any() else None for j, s in enumerate(sigmas)]
    if sum(s is not None for s in stack) == 1:
        return next(s for s in stack if s is not None)
    pick = scale[owner]
    smooth = np.empty_like(frame)
    for j, s in enumerate(stack):
        if s is not None:
            np.copyto(smooth, s, where=pick == j)
    return smooth


def _core_and_ring(labels: np.ndarray, found: np.ndarray, dist: np.ndarray, n: int,
                   ring_px: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Where each particle's level and background are measured: its central part (the pixels
    deeper than half of its largest depth; the rim would pull the level towards the
    background) and the ring ``ring_px`` px outside all particles."""
    depth = cv2.distanceTransform(found.view(np.uint8), cv2.DIST_L2, 5)
    deepest = np.zeros(n + 1, np.float32)
    np.maximum.at(deepest, labels[found], depth[found])
    core = found & (depth >= 0.5 * deepest[labels])
    ring = (dist > ring_px[0]) & (dist <= ring_px[1])
    return core, ring


def contrast_significance(image: np.ndarray, labels: np.ndarray, *,
                          ring_px: tuple[float, float] = RING_PX,
                          patch_px: float = SMOOTH_PX,
                          which: np.ndarray | None = None) -> np.ndarray:
    """How clearly each particle stands out of its local background, in standard errors.

    ``z = |level - background| / noise * sqrt(area / (pi * patch_px**2))``: level = median of
    the particle's central part, background = median of its ring (as in
    :func:`half_contrast_outlines`), noise = the ring's median absolute deviation x 1.4826,
    and the particle counted as independent patches of radius ``patch_px`` (the support's
    mottle is correlated over a few pixels, so its pixels are not independent). On the 20
    msa-em images, specks of the mottle the network half saw score z 1.3-2.6 (10th-90th
    percentile), faint particles of 200 px or more a median of 6 (65 % reach 5).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame (any real dtype), not smoothed.
    labels : ndarray, shape (H, W), int
        Found particles, 0 = background.
    ring_px : (float, float)
        Distances (px) from the found particles between which the background is measured.
    patch_px : float
        Radius (px) of the patches counted as independent.
    which : ndarray of bool, optional
        Indexed by id (at least ``labels.max() + 1`` long, entry 0 unused): measure only these
        ids (the others get 0; they still bound their neighbours' rings):
        the sorts behind the medians then cover only their pixels.

    Returns
    -------
    ndarray, shape (labels.max(),), float64
        z of ids 1..N (0 for an id without pixels, ring or spread, or on a non-finite frame).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.normal(100.0, 10.0, (64, 64))
    >>> frame[22:42, 22:42] -= 20.0  # two noise sigmas deeper, over 400 px: z ~ 4.5
    >>> labels = np.zeros((64, 64), np.int32); labels[22:42, 22:42] = 1
    >>> labels[5:9, 5:9] = 2  # a patch of plain noise
    >>> z = contrast_significance(frame, labels)
    >>> z.round(1).tolist()
    [5.0, 0.1]
    """
    labels = checked_labels(image, labels)
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(0)
    frame = np.asarray(image, dtype=np.float64)
    found = labels > 0
    dist, owner = _nearest_particle(labels, found)
    core, ring = _core_and_ring(labels, found, dist, n, ring_px)
    if which is not None:
        which = np.asarray(which, dtype=bool)
        core &= which[labels]
        ring &= which[owner]
    background = _medians(frame[ring], owner[ring], n)
    level = _medians(frame[core], labels[core], n)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.abs(frame[ring] - np.concatenate([[np.nan], background])[owner[ring]])
        noise = 1.4826 * _medians(spread, owner[ring], n)
        area = np.bincount(labels.ravel(), minlength=n + 1)[1:n + 1]
        z = np.abs(level - background) / noise * np.sqrt(area / (np.pi * float(patch_px) ** 2))
    return np.where(np.isfinite(z), z, 0.0)


def half_contrast_outlines(image: np.ndarray, labels: np.ndarray, *,
                           smooth_px: float = SMOOTH_PX, grow_px: int = GROW_PX,
                           level: float = LEVEL, ring_px: tuple[float, float] = RING_PX,
                           min_kept: float = MIN_KEPT) -> np.ndarray:
    """Redraw found particles' outlines where the image contrast is half of each one's own.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame the particles were found in (any real dtype; dark or bright particles).
    labels : ndarray, shape (H, W), int
        Found particles, 0 = background (ids need not be consecutive).
    smooth_px : float
        Standard deviation (px) of the Gaussian that smooths the frame before the level is
        applied (shot noise would otherwise fray the outline); half or a quarter of it around
        particles of radius under ``3 * smooth_px``.
    grow_px : int
        How far (px) an outline may reach beyond the found one.
    level : float
        Where the edge lies between the local background (0) and the particle's core (1).
    ring_px : (float, float)
        Distances (px) from the found particles between which each particle's local
        background is measured (median over the pixels nearer to it than to any other).
    min_kept : float
        A particle whose redrawn outline covers less than this fraction of its found area
        keeps its found outline.

    Returns
    -------
    ndarray, shape (H, W), int32
        The same particle ids with their new outlines; no particle is added or removed, and
        each keeps its pixels nearer to it than to any other particle.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :64]
    >>> frame = 100.0 - 60.0 * np.clip((14 - np.hypot(yy - 32, xx - 32)) / 4, 0, 1)
    >>> found = (np.hypot(yy - 32, xx - 32) < 15).astype(np.int32)  # drawn 3 px too wide
    >>> int(half_contrast_outlines(frame, found, smooth_px=1.0).sum())  # radius ~12 px
    437
    """
    labels = np.asarray(labels)
    if labels.shape != np.shape(image) or labels.ndim != 2:
        raise ValueError(f"image {np.shape(image)} and labels {labels.shape} must be the same "
                         f"2-D shape")
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(labels.shape, np.int32)
    found = labels > 0
    dist, owner = _nearest_particle(labels, found)
    smooth = _smoothed_by_size(image, labels, owner, n, float(smooth_px))
    core, ring = _core_and_ring(labels, found, dist, n, ring_px)
    background = _medians(smooth[ring], owner[ring], n)
    plateau = _medians(smooth[core], labels[core], n)
    # particles without a ring or a core (NaN medians) keep their found outline
    with np.errstate(invalid="ignore"):
        edge = np.concatenate([[np.nan], background + float(level) * (plateau - background)])
        sign = np.concatenate([[0.0], np.sign(plateau - background)])
    # the pixels beyond each particle's level, within grow_px of it and on its side, are its
    # region; it grows from its found pixels in the region through the region only (pieces
    # that do not touch the particle are something else), then its holes are filled
    region = np.empty_like(labels)
    drawn = np.empty_like(labels)
    _regions(smooth, owner, dist, labels, edge.astype(np.float32), sign.astype(np.float32),
             np.float32(grow_px), region, drawn)
    queue = np.empty(labels.size, np.int64)
    _grow_within(drawn, region, queue)
    _fill_enclosed(drawn, queue)
    kept = np.bincount(drawn.ravel(), minlength=n + 1)
    restore = ~np.isfinite(edge) | (kept < float(min_kept) * np.bincount(labels.ravel(),
                                                                       minlength=n + 1))
    restore[0] = False
    if restore.any():
        drawn[restore[drawn]] = 0
        back = restore[labels]
        drawn[back] = labels[back]
    return drawn


@numba.njit(cache=True, nogil=True)
def _regions(smooth, owner, dist, labels, edge, sign, grow, region, drawn):  # pragma: no cover
    """``region``: the owner's id where the pixel lies beyond the owner's level (NaN level:
    nowhere) and within ``grow`` px of it; ``drawn``: the found pixels in their own region."""
    h, w = smooth.shape
    for r in range(h):
        for c in range(w):
            k = owner[r, c]
            inside = dist[r, c] <= grow and (smooth[r, c] - edge[k]) * sign[k] > 0
            region[r, c] = k if inside else 0
            drawn[r, c] = k if inside and labels[r, c] == k else 0


@numba.njit(cache=True, nogil=True)
def _spread(ids, allowed, queue, tail):  # pragma: no cover - compiled
    """Breadth first from the ``tail`` pixels queued: each 4-neighbour that is 0 in ``ids``
    takes the id spreading into it (with ``allowed``: only where ``allowed`` holds that id).
    Returns how many pixels were queued in all (``queue[:n]`` lists them)."""
    h, w = ids.shape
    head = 0
    while head < tail:
        p = queue[head]
        head += 1
        r = p // w
        c = p - r * w
        k = ids[r, c]
        for q in range(4):
            rr = r + (q == 0) - (q == 1)
            cc = c + (q == 2) - (q == 3)
            if rr < 0 or rr >= h or cc < 0 or cc >= w or ids[rr, cc] != 0:
                continue
            if allowed is not None and allowed[rr, cc] != k:
                continue
            ids[rr, cc] = k
            queue[tail] = rr * w + cc
            tail += 1
    return tail


@numba.njit(cache=True, nogil=True)
def _grow_within(drawn, region, queue):  # pragma: no cover - compiled
    """Grow ``drawn`` (4-connected, breadth first) into the pixels of ``region`` that carry
    the same id."""
    h, w = drawn.shape
    tail = 0
    for r in range(h):
        for c in range(w):
            if drawn[r, c] > 0:
                queue[tail] = r * w + c
                tail += 1
    _spread(drawn, region, queue, tail)


@numba.njit(cache=True, nogil=True)
def _fill_enclosed(drawn, queue):  # pragma: no cover - compiled
    """Give each hole (a 4-connected patch of 0 that does not reach the frame's edge) to the
    particle around it, when one particle alone borders it."""
    h, w = drawn.shape
    outside, hole = -1, -2  # marks while filling, 0 again at the end
    tail = 0
    for r in range(h):
        for c in range(w):
            if (r == 0 or c == 0 or r == h - 1 or c == w - 1) and drawn[r, c] == 0:
                drawn[r, c] = outside
                queue[tail] = r * w + c
                tail += 1
    _spread(drawn, None, queue, tail)
    for r0 in range(h):
        for c0 in range(w):
            if drawn[r0, c0] != 0:
                continue
            drawn[r0, c0] = hole
            queue[0] = r0 * w + c0
            n = _spread(drawn, None, queue, 1)
            lo, hi = 2147483647, 0  # ids bordering this hole
            for i in range(n):
                p = queue[i]
                r = p // w
                c = p - r * w
                for q in range(4):
                    rr = r + (q == 0) - (q == 1)
                    cc = c + (q == 2) - (q == 3)
                    if 0 <= rr < h and 0 <= cc < w and drawn[rr, cc] > 0:
                        lo = min(lo, drawn[rr, cc])
                        hi = max(hi, drawn[rr, cc])
            fill = lo if lo == hi else outside
            for i in range(n):
                p = queue[i]
                drawn[p // w, p - (p // w) * w] = fill
    for r in range(h):
        for c in range(w):
            if drawn[r, c] < 0:
                drawn[r, c] = 0
