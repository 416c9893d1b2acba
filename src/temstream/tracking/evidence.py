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
import numpy as np

from temstream.tracking.edges import RING_PX, _core_and_ring, _medians, _nearest_particle

#: half-sides (px) of the boxes whose means sample the frame's noise at each scale
SCALES = (1, 2, 4, 8, 16, 32)
#: the noise is measured on the pixels this far (px) from every found particle
CLEAR_PX = 3.0
#: fewer clear pixels than this fraction of the frame (a dense monolayer): no test
MIN_CLEAR = 0.05


def noise_by_scale(frame: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frame's noise at each scale, measured where ``clear`` holds.

    Returns
    -------
    radius : (S,) float
        Equivalent disk radius (px) of each box.
    sigma : (S,) float
        Robust standard deviation (MAD x 1.4826) of box mean minus the mean of a box three
        times wider, over the clear pixels: the standard error of a particle's mean level at
        that size. NaN where the box does not fit the frame.
    """
    h, w = frame.shape
    radius, sigma = [], []
    step = max(1, int(np.sqrt(clear.sum() / 20000)))  # ~20,000 samples are plenty
    sample = np.zeros_like(clear)
    sample[::step, ::step] = True
    sample &= clear
    for s in SCALES:
        b, big = 2 * s + 1, 6 * s + 3
        radius.append(b / np.sqrt(np.pi))
        if big > min(h, w) or not sample.any():
            sigma.append(np.nan)
            continue
        d = (cv2.blur(frame, (b, b), borderType=cv2.BORDER_REFLECT)
             - cv2.blur(frame, (big, big), borderType=cv2.BORDER_REFLECT))[sample]
        # the wide box holds a ninth of the narrow one: remove its share of the spread
        sigma.append(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(1 - 2 / 9 + 1 / 9))
    return np.asarray(radius), np.asarray(sigma)


def significance(image: np.ndarray, labels: np.ndarray, *, which: np.ndarray | None = None,
                 ring_px: tuple[float, float] = RING_PX) -> np.ndarray:
    """How clearly the frame shows each found particle, in standard errors of its noise.

    ``z = |mean of the particle's central part - median of its ring| / sigma(r)``, with
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
        z of ids 1..N; +inf for every particle when the frame has too few pixels clear of
        particles to measure its noise (a dense monolayer: nothing is dropped), 0 for an id
        without pixels or ring.

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
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if labels.shape != np.shape(image) or labels.ndim != 2:
        raise ValueError(f"image {np.shape(image)} and labels {labels.shape} must be the same "
                         f"2-D shape")
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(0)
    frame = np.ascontiguousarray(image, dtype=np.float32)
    found = labels > 0
    dist, owner = _nearest_particle(labels, found)
    clear = dist > CLEAR_PX
    if clear.mean() < MIN_CLEAR or not np.isfinite(frame).all():
        return np.full(n, np.inf)
    radius, sigma = noise_by_scale(frame, clear)
    good = np.isfinite(sigma) & (sigma > 0)
    if not good.any():
        return np.full(n, np.inf)
    core, ring = _core_and_ring(labels, found, dist, n, ring_px)
    if which is not None:
        which = np.asarray(which, dtype=bool)
        core &= which[labels]
        ring &= which[owner]
    background = _medians(frame[ring], owner[ring], n)
    ids = labels[core]
    total = np.bincount(ids, weights=frame[core], minlength=n + 1)[1:n + 1]
    count = np.bincount(ids, minlength=n + 1)[1:n + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        level = total / count
        r = np.sqrt(count / np.pi)  # the noise of a mean over the central part's pixels
        noise = np.exp(np.interp(np.log(np.maximum(r, 1e-3)), np.log(radius[good]),
                                 np.log(sigma[good])))
        z = np.abs(level - background) / noise
    z = np.where(np.isfinite(z), z, 0.0)
    if which is not None:
        z[~which[1:n + 1]] = np.inf
    return z
