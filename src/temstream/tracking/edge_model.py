"""Particle outlines at the true edge: where each particle's projected material ends.

A network outlines particles where its training data put their edge; a renderer or a microscope
with another blur moves that edge by a pixel or more (flat particles come out ~30 % too large,
spheres a few per cent), and the half-contrast convention puts a sphere's edge well inside its
true extent (a sphere's thickness rises as the square root of the distance from its edge). This
module fits, for each found particle, a model of its edge to the frame and moves its outline to
the fitted edge.

The model: the mean intensity of the pixels at signed distance ``s`` from the found outline
(positive outwards, averaged along the whole perimeter, so shot noise averages out) is

    I(s) = B - C * blur_sigma(g((e - s) / L))

with ``B`` the local background, ``C`` the contrast of the full thickness, ``e`` the true edge
(offset from the found outline, px), ``L`` the particle's inner radius (from the found area) and
``g(u) = (1 - (1 - u)^2)^p`` for ``0 < u < 1`` (1 beyond, 0 outside) the shape of the projected
thickness inside the edge: ``p = 0`` a flat particle (a cube or platelet: a step), ``p = 0.5`` a
sphere or a rod's round section; ``blur_sigma`` a Gaussian of the point-spread width. ``B`` and
``C`` are solved in closed form for every template (``p``, ``sigma``, ``e`` on grids) and the
best one wins, a curved edge only when it fits clearly better than a flat one.

Where it fits: in-focus images. A defocus puts a Fresnel fringe pair at every edge, which this
model does not have: on temstream's simulated movies (defocus -1.5 um) it draws particles ~9 %
small; there the network's own outlines are closer (``benchmarks/compare_instance_settings.py``). Contrast of either sign is fitted (dark or bright particles).

Pure numpy/OpenCV: no threads, no torch.
"""

from __future__ import annotations

import functools

import cv2
import numba
import numpy as np

from temstream.tracking.edges import checked_labels

#: signed distances (px, positive outside the found outline) over which a particle's profile
#: is measured, and the bin width
PROFILE_PX = (-16.0, 10.0)
BIN_PX = 0.5
#: template grids: thickness shapes (0 flat ... 0.5 sphere), blur widths (px), edge offsets (px)
SHAPES = (0.0, 0.25, 0.5)
SIGMAS = (0.5, 0.8, 1.2, 1.8, 2.6, 3.8)
OFFSETS = np.arange(-6.0, 6.01, 0.25)
#: inner radii (px) the templates are tabulated for; a particle uses the nearest
RADII = np.geomspace(2.0, 128.0, 19)
#: a bin needs this many pixels to count, a particle this many bins inside and outside
MIN_PIXELS = 3
MIN_BINS = 4
#: the frame is smoothed this much (px) before the outline is drawn at each fitted edge level
EDGE_SMOOTH_PX = 1.0
#: residual variances a curved-edge template must gain over the best flat one to be chosen
SHAPE_PENALTY = 1.0


def _bins() -> np.ndarray:
    lo, hi = PROFILE_PX
    return np.arange(lo + BIN_PX / 2, hi, BIN_PX)


def _blurred_edge(radius: float, p: float, width: float, fine: np.ndarray) -> np.ndarray:
    """The thickness shape ``g`` of an edge at 0 (``fine`` = distance inside it, px) blurred by
    a Gaussian of ``width`` px."""
    u = np.clip(fine / radius, 0.0, 1.0)
    g = (1 - (1 - u) ** 2) ** p if p > 0 else (u > 0).astype(float)
    step = fine[1] - fine[0]
    kernel = np.exp(-0.5 * (np.arange(-4 * width, 4 * width + 1e-9, step) / width) ** 2)
    return np.convolve(g, kernel / kernel.sum(), mode="same")


@functools.lru_cache(maxsize=1)
def _templates() -> np.ndarray:
    """Normalised contrast profiles, (radii, shapes, sigmas, offsets, bins): the thickness
    shape ``g`` of an edge at the offset, blurred by sigma (and the pixel's width). A template
    depends on ``e - s`` only, so each (radius, shape, sigma) is blurred once on a fine grid and
    sampled at every offset."""
    s = _bins()
    x = (OFFSETS[:, None] - s[None, :]).ravel()
    fine = np.arange(x.min() - 20, x.max() + 20, 0.05)
    out = np.empty((len(RADII), len(SHAPES), len(SIGMAS), len(OFFSETS), len(s)), np.float32)
    for i, radius in enumerate(RADII):
        for j, p in enumerate(SHAPES):
            for k, sigma in enumerate(SIGMAS):
                g = _blurred_edge(radius, p, np.hypot(sigma, 1 / np.sqrt(12)), fine)
                out[i, j, k] = np.interp(x, fine, g).reshape(len(OFFSETS), -1)
    return out


@functools.lru_cache(maxsize=4)
def _edge_levels(smooth_px: float) -> np.ndarray:
    """Where each template's true edge lies in the frame smoothed by ``smooth_px``: the
    fraction of the full contrast there, (radii, shapes, sigmas). A flat particle's edge is at
    one half whatever the blur; a sphere's lower, the more so the sharper the image."""
    fine = np.arange(-40.0, 40.0, 0.05)
    out = np.empty((len(RADII), len(SHAPES), len(SIGMAS)))
    for i, radius in enumerate(RADII):
        for j, p in enumerate(SHAPES):
            for k, sigma in enumerate(SIGMAS):
                width = np.sqrt(sigma ** 2 + 1 / 12 + smooth_px ** 2)
                out[i, j, k] = np.interp(0.0, fine, _blurred_edge(radius, p, width, fine))
    return out


def _signed_distance(labels: np.ndarray, found: np.ndarray):
    """Signed distance to the found outlines (px, + outside) and the particle each pixel
    belongs to (inside: its own; outside: the nearest)."""
    outside, source = cv2.distanceTransformWithLabels((~found).view(np.uint8), cv2.DIST_L2, 5,
                                                      labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(source.max()) + 1, np.int32)
    lut[source[found]] = labels[found]
    owner = lut[source]
    inside = cv2.distanceTransform(found.view(np.uint8), cv2.DIST_L2, 5)
    signed = np.where(found, 0.5 - inside, outside - 0.5)
    return signed.astype(np.float32), owner


@numba.njit(cache=True, nogil=True)
def _accumulate(frame, signed, owner, lo, step, nb, total, count):  # pragma: no cover
    """Sum and count the pixels of each (owner, distance bin) in one pass over the frame."""
    h, w = frame.shape
    for r in range(h):
        for c in range(w):
            k = owner[r, c]
            if k <= 0:
                continue
            b = int(np.floor((signed[r, c] - lo) / step))
            if b < 0 or b >= nb:
                continue
            total[k - 1, b] += frame[r, c]
            count[k - 1, b] += 1


def edge_profiles(image: np.ndarray, labels: np.ndarray):
    """Mean intensity and pixel count per signed-distance bin of each particle.

    Returns
    -------
    mean, count : (N, bins) float64
        For ids 1..N; bins of :data:`BIN_PX` over :data:`PROFILE_PX`.
    signed, owner : (H, W)
        Signed distance to the found outlines and the owning particle of every pixel.
    """
    found = labels > 0
    n = int(labels.max(initial=0))
    signed, owner = _signed_distance(labels, found)
    nb = len(_bins())
    total = np.zeros((n, nb))
    count = np.zeros((n, nb))
    _accumulate(np.ascontiguousarray(image, dtype=np.float64), signed, owner,
                PROFILE_PX[0], BIN_PX, nb, total, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return mean, count, signed, owner


def _least_squares(m: np.ndarray, wt: np.ndarray, y: np.ndarray):
    """Weighted fit ``y ~ base + a * m`` of every template at once.

    ``m`` (n, T, bins) templates, ``wt`` (n, bins) pixel counts (0 = unused bin), ``y`` (n,
    bins) mean intensities; returns the squared error, ``a`` and ``base`` (each (n, T))."""
    sw = np.maximum(wt.sum(1), 1e-12)
    ym = (wt * y).sum(1) / sw
    w = wt[..., None].astype(np.float32)
    yc = (wt * (y - ym[:, None]))[..., None].astype(np.float32)
    mm = np.matmul(m, w)[..., 0] / sw[:, None]
    smm = np.matmul(m * m, w)[..., 0] - mm * mm * sw[:, None]
    smy = np.matmul(m, yc)[..., 0].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = smy / smm
        sse = (wt * (y - ym[:, None]) ** 2).sum(1)[:, None] - a * smy
    return np.where(smm > 1e-6, sse, np.inf), a, ym[:, None] - a * mm


def _window(ri: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Offset indices (n, 7) around each particle's coarse best: +-0.75 px at 0.25 px."""
    return np.clip(coarse[:, None] * 4 + np.arange(-3, 4)[None, :], 0, len(OFFSETS) - 1)


def _choose(sse: np.ndarray, nbins: np.ndarray) -> np.ndarray:
    """The best template (index into the last axis of ``sse``, (n, shapes * sigmas * k)).

    A curved edge must earn its extra freedom: flat unless curvature lowers the error by more
    than :data:`SHAPE_PENALTY` residual variances (a soft point-spread tail would otherwise
    pass for a sphere's rounded edge and push flat particles' outlines out)."""
    rows = np.arange(sse.shape[0])
    best = sse.argmin(1)
    noise = sse[rows, best] / np.maximum(nbins - 4, 1)  # variance of a bin's residual
    flat = sse[:, :sse.shape[1] // len(SHAPES)].argmin(1)
    return np.where(sse[rows, flat] <= sse[rows, best] + SHAPE_PENALTY * noise, flat, best)


def fit_edges(mean: np.ndarray, count: np.ndarray, radius: np.ndarray):
    """The best edge template of each particle, searched coarse (1 px) then fine (0.25 px).

    Parameters
    ----------
    mean, count : (N, bins)
        From :func:`edge_profiles`.
    radius : (N,)
        Inner radius (px) of each found particle.

    Returns
    -------
    offset, sigma, shape, offset_err, level, base, scale : (N,) float64
        Edge offset from the found outline (px, + outwards; NaN where the fit failed: too
        few bins or no contrast), blur width (px), thickness shape ``p``, the offset's
        uncertainty (px; half the spread of the offsets whose error is within one residual
        variance of the best), the intensity at the fitted edge in the frame smoothed by
        :data:`EDGE_SMOOTH_PX`, and the fit ``I = base + scale * template``.
    """
    t = _templates()
    n, ns, ng = mean.shape[0], len(SHAPES), len(SIGMAS)
    ri = np.abs(np.log(RADII)[None, :] - np.log(np.maximum(radius, 1e-3))[:, None]).argmin(1)
    s = _bins()
    wt = np.where(count >= MIN_PIXELS, count, 0).astype(np.float64)
    y = np.where(wt > 0, mean, 0.0)
    nbins = (wt > 0).sum(1)
    usable = (((wt > 0) & (s < 0)).sum(1) >= MIN_BINS) & (((wt > 0) & (s > 0)).sum(1) >= MIN_BINS)
    sse, *_ = _least_squares(t[:, :, :, ::4][ri].reshape(n, -1, len(s)), wt, y)
    coarse = _choose(sse, nbins) % (len(OFFSETS[::4]))
    win = _window(ri, coarse)                                          # (n, 7)
    at = (ri[:, None, None, None], np.arange(ns)[None, :, None, None],
          np.arange(ng)[None, None, :, None], win[:, None, None, :])   # (n, S, G, 7, bins)
    sse, a, base = _least_squares(t[at].reshape(n, -1, len(s)), wt, y)
    sse[~usable] = np.inf
    rows = np.arange(n)
    best = _choose(sse, nbins)
    ok = np.isfinite(sse[rows, best]) & (a[rows, best] != 0)
    j, k, w = np.unravel_index(best, (ns, ng, win.shape[1]))
    nan = np.full(n, np.nan)
    offset = np.where(ok, OFFSETS[win[rows, w]], nan)
    scale = np.where(ok, a[rows, best], nan)
    base = np.where(ok, base[rows, best], nan)
    level = base + scale * _edge_levels(EDGE_SMOOTH_PX)[ri, j, k]
    noise = sse[rows, best] / np.maximum(nbins - 4, 1)
    near = (sse <= (sse[rows, best] + noise)[:, None]).reshape(n, ns * ng, -1).any(1)
    offs = np.where(near, OFFSETS[win], np.nan)
    with np.errstate(invalid="ignore"):
        err = np.where(ok, 0.5 * (np.nanmax(offs, 1) - np.nanmin(offs, 1) + 0.25), nan)
    return (offset, np.where(ok, np.asarray(SIGMAS)[k], nan),
            np.where(ok, np.asarray(SHAPES)[j], nan), err, level, base, scale)


def fitted_outlines(image: np.ndarray, labels: np.ndarray, *, max_shift_px: float = 6.0,
                    mode: str = "level"):
    """Found particles redrawn at their fitted true edge.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame the particles were found in (any real dtype; dark or bright particles).
    labels : ndarray, shape (H, W), int
        Found particles, 0 = background (ids 1..N).
    max_shift_px : float
        An outline moves at most this far; a particle whose fit failed keeps its outline.

    Returns
    -------
    drawn : ndarray, shape (H, W), int32
        The same ids with their outlines at the fitted edges (each particle keeps its pixels
        nearer to it than to any other).
    offset_err : ndarray, shape (N,)
        Uncertainty of each particle's edge (px; NaN where it kept its outline).

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:80, :80]
    >>> r = np.hypot(yy - 40, xx - 40)
    >>> frame = 100.0 - 40.0 * (r < 12)                     # a flat disk of radius 12
    >>> frame = cv2.GaussianBlur(frame, (0, 0), 1.5)
    >>> found = (r < 15).astype(np.int32)                    # drawn 3 px too wide
    >>> drawn, _ = fitted_outlines(frame, found)
    >>> round(float(np.sqrt(drawn.sum() / np.pi)), 1)        # back at ~12 px
    11.8
    """
    labels = checked_labels(image, labels)
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(labels.shape, np.int32), np.zeros(0)
    mean, count, signed, owner = edge_profiles(image, labels)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    offset, _, _, err, level, _, scale = fit_edges(mean, count, np.sqrt(area / np.pi))
    bad = ~np.isfinite(offset) | (np.abs(offset) > max_shift_px)
    if mode == "offset":
        shift = np.concatenate([[-np.inf], np.where(bad, 0.0, offset)]).astype(np.float32)
        drawn = np.where((owner > 0) & (signed <= shift[owner]), owner, 0).astype(np.int32)
    else:
        from temstream.tracking.edges import _fill_enclosed, _grow_within, _regions

        smooth = cv2.GaussianBlur(np.ascontiguousarray(image, dtype=np.float32), (0, 0),
                                  EDGE_SMOOTH_PX, borderType=cv2.BORDER_REFLECT)
        edge = np.concatenate([[np.nan], np.where(bad, np.nan, level)]).astype(np.float32)
        sign = np.concatenate([[0.0], np.sign(scale)]).astype(np.float32)
        dist = np.maximum(signed, 0).astype(np.float32)
        region = np.empty_like(labels)
        drawn = np.empty_like(labels)
        _regions(smooth, owner, dist, labels, edge, sign, np.float32(max_shift_px), region,
                 drawn)
        queue = np.empty(labels.size, np.int64)
        _grow_within(drawn, region, queue)
        _fill_enclosed(drawn, queue)
        keep_found = np.concatenate([[False], bad])
        drawn[keep_found[drawn]] = 0
        drawn = np.where(keep_found[labels], labels, drawn)
    kept = np.bincount(drawn.ravel(), minlength=n + 1)[1:]
    restore = np.concatenate([[False], kept == 0])
    if restore.any():  # never lose a particle to its fit
        back = restore[labels]
        drawn[back] = labels[back]
    return drawn, np.where(bad, np.nan, err)
