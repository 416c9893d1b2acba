"""Does the frame show a found particle? Its contrast against the frame's own noise at its size.

A segmenter can see particles in noise: specks of shot noise on a counting detector's 0-4 counts
per pixel, dark patches of a support's mottle, the soft edge of contamination. Whatever found
them, a particle is only kept when the frame shows it: the contrast of its pixels against its
local background must be ``z`` standard errors of the frame's noise *at the particle's own
scale*. That noise is measured on the frame itself, between particles: the spread of box means
of the particle's size minus box means three times larger (a band-pass, so slow illumination
and thickness gradients do not count). Shot noise averages down as 1 / sqrt(area); a mottle
correlated over a few pixels does not, and the measured spread says by how much, so the test is
dose-aware and knows the texture without a model of it.

Pure numpy/OpenCV: no threads, no torch.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

from temstream.tracking.edges import RING_PX, _nearest_particle, checked_labels

#: half-sides (px) of the boxes whose means sample the frame's noise at each scale
SCALES = (1, 2, 4, 8, 16, 32)
#: the noise is measured on the pixels this far (px) from every found particle
CLEAR_PX = 3.0
#: a scale's noise is measured on about this many pixels, and needs at least MIN_SAMPLES
SAMPLES = 5000
MIN_SAMPLES = 200
#: particles covering more of the frame than this make a dense layer: its noise is measured
#: only where boxes hold no particle
MAX_COVER = 0.25


def _sample(mask: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of about :data:`SAMPLES` pixels of ``mask`` on a regular grid, at
    least ``margin`` px inside the frame."""
    inner = mask[margin:mask.shape[0] - margin, margin:mask.shape[1] - margin]
    step = max(1, int(np.sqrt(inner.sum() / SAMPLES)))
    r, c = np.nonzero(inner[::step, ::step])
    return r * step + margin, c * step + margin


def _box_means(integral: np.ndarray, r: np.ndarray, c: np.ndarray, s: int) -> np.ndarray:
    """Means of the (2s + 1)-px boxes centred on the pixels (r, c), from the integral image."""
    top, bottom, left, right = r - s, r + s + 1, c - s, c + s + 1
    total = (integral[bottom, right] - integral[top, right] - integral[bottom, left]
             + integral[top, left])
    return total / (2 * s + 1) ** 2


def noise_by_scale(frame: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame's noise at each scale, measured away from the particles.

    Parameters
    ----------
    frame : (H, W) float32
    dist : (H, W) float
        Distance (px) to the nearest found particle.

    Returns
    -------
    radius : (S,) float
        Equivalent disk radius (px) of each box.
    sigma : (S,) float
        Robust standard deviation (MAD x 1.4826) of box mean minus the mean of a box three
        times wider, over the pixels whose wide box holds no particle (or, where too few are and
        the particles cover less than :data:`MAX_COVER` of the frame, over all pixels outside
        them): the standard error of a particle's mean level at that size. NaN where fewer
        than :data:`MIN_SAMPLES` pixels qualify.
    """
    integral = cv2.integral(frame, sdepth=cv2.CV_64F)
    outside = dist > CLEAR_PX
    # between the particles of a dense layer the gaps hold their blurred edges, not noise
    lenient = (dist == 0).mean() < MAX_COVER
    radius, sigma = [], []
    for s in SCALES:
        b = 2 * s + 1
        radius.append(b / np.sqrt(np.pi))
        wide = 3 * s + 1  # half-side of the box three times wider
        # where the wide box (its diagonal) holds no particle; where particles crowd the
        # frame, any pixel outside them (the median of the spread resists a few particles)
        r, c = _sample(dist > CLEAR_PX + 1.5 * wide, wide)
        if r.size < MIN_SAMPLES and lenient:
            r, c = _sample(outside, wide)
        if r.size < MIN_SAMPLES:
            sigma.append(np.nan)
            continue
        d = _box_means(integral, r, c, s) - _box_means(integral, r, c, wide)
        # the wide box holds a ninth of the narrow one: remove its share of the spread
        sigma.append(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(8 / 9))
    return np.asarray(radius), np.asarray(sigma)


@numba.njit(cache=True, nogil=True)
def _levels(frame, labels, depth, dist, owner, ring_lo, ring_hi, measure, deepest,
            sums):  # pragma: no cover - compiled
    """Each measured particle's central part (pixels deeper than half its largest depth) and
    its ring (``ring_lo`` < distance <= ``ring_hi`` outside all particles, nearer to it than to
    any other): sums and counts into ``sums`` (4, n + 1)."""
    h, w = frame.shape
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k > 0 and depth[r, c] > deepest[k]:
                deepest[k] = depth[r, c]
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k > 0:
                if measure[k] and depth[r, c] >= 0.5 * deepest[k]:
                    sums[0, k] += frame[r, c]
                    sums[1, k] += 1.0
            elif ring_lo < dist[r, c] <= ring_hi:
                k = owner[r, c]
                if measure[k]:
                    sums[2, k] += frame[r, c]
                    sums[3, k] += 1.0


def significance(image: np.ndarray, labels: np.ndarray, *, which: np.ndarray | None = None,
                 ring_px: tuple[float, float] = RING_PX) -> np.ndarray:
    """How clearly the frame shows each found particle, in standard errors of its noise.

    ``z = |mean of the particle's central part - mean of its ring| / sigma(r)``, with
    ``sigma(r)`` the frame's noise at the central part's size (:func:`noise_by_scale`,
    interpolated in log-log) and the central part and ring as in
    :func:`temstream.tracking.edges.contrast_significance`.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The raw frame.
    labels : ndarray, shape (H, W), int
        Found particles, 0 = background.
    which : ndarray of bool, optional
        Indexed by id: measure only these (the others get +inf).
    ring_px : (float, float)
        Distances (px) between which each particle's background is measured.

    Returns
    -------
    ndarray, shape (labels.max(),)
        z of ids 1..N; +inf for every particle when the frame has no room between its
        particles to measure the noise (a dense monolayer: nothing is dropped), 0 for an id
        without pixels or ring. Beyond the largest measured scale the noise is extrapolated
        as shot noise (falling as 1 / radius), which a mottle would make optimistic.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> frame = rng.poisson(2.0, (128, 128)).astype(np.float32)  # 0-4 counts per pixel
    >>> frame[40:60, 40:60] = rng.poisson(1.2, (20, 20))          # a particle, 40 % darker
    >>> labels = np.zeros((128, 128), np.int32)
    >>> labels[40:60, 40:60] = 1
    >>> labels[90:96, 90:96] = 2                                  # a speck of noise
    >>> z = significance(frame, labels)
    >>> bool(z[0] > 5), bool(z[1] < 3)
    (True, True)
    """
    labels = checked_labels(image, labels)
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(0)
    frame = np.ascontiguousarray(image, dtype=np.float32)
    found = labels > 0
    dist, owner = _nearest_particle(labels, found)
    if not np.isfinite(frame).all():
        return np.full(n, np.inf)
    radius, sigma = noise_by_scale(frame, dist)
    good = np.isfinite(sigma) & (sigma > 0)
    if not good.any():  # no room between the particles to measure the noise: no test
        return np.full(n, np.inf)
    depth = cv2.distanceTransform(found.view(np.uint8), cv2.DIST_L2, 5)
    measure = np.ones(n + 1, np.bool_) if which is None else np.asarray(which, dtype=bool)
    sums = np.zeros((4, n + 1))  # core sum, core count, ring sum, ring count
    _levels(frame, labels, depth, dist, owner, float(ring_px[0]), float(ring_px[1]), measure,
            np.zeros(n + 1, np.float32), sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = sums[0, 1:] / sums[1, 1:]
        background = sums[2, 1:] / sums[3, 1:]
        r = np.sqrt(sums[1, 1:] / np.pi)  # the noise of a mean over the central part's pixels
        lr, ls = np.log(radius[good]), np.log(sigma[good])
        x = np.log(np.maximum(r, 1e-3))
        noise = np.exp(np.interp(x, lr, ls) - np.maximum(x - lr[-1], 0))
        z = np.abs(level - background) / noise
    z = np.where(np.isfinite(z), z, 0.0)
    if which is not None:
        z[~which[1:n + 1]] = np.inf
    return z
