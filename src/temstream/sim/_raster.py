"""Numba kernel: projected thickness of convex particles, rasterised on local bounding boxes.

Geometry is in pixel units, relative to each particle's centre; the beam runs along z. Three
primitive kinds cover every shape:

* ``ELLIPSOID`` (sphere, irregular blob): ``x^T A x <= 1`` with ``A`` (3, 3) in 1/px^2, plus an
  optional in-plane radial modulation ``rho(phi) = 1 + sum_k a_k cos(m_k phi + p_k)``.
* ``POLYHEDRON`` (cube, triangular prism): intersection of half-spaces ``n . x <= d``.
* ``CAPSULE`` (rod): points within radius ``r`` of the segment ``[-h u, +h u]``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ELLIPSOID, POLYHEDRON, CAPSULE = 0, 1, 2
MAX_PLANES = 8
MAX_HARMONICS = 4


@njit(cache=True, nogil=True)
def _ellipsoid_chord(q, harm, x, y):
    if harm[0, 1] != 0.0:
        phi = np.arctan2(y, x)
        rho = 1.0
        for k in range(harm.shape[0]):
            rho += harm[k, 1] * np.cos(harm[k, 0] * phi + harm[k, 2])
        if rho < 0.2:
            rho = 0.2
        x = x / rho
        y = y / rho
    a = q[2, 2]
    b = q[0, 2] * x + q[1, 2] * y
    c = q[0, 0] * x * x + 2.0 * q[0, 1] * x * y + q[1, 1] * y * y - 1.0
    disc = b * b - a * c
    if disc <= 0.0:
        return 0.0
    return 2.0 * np.sqrt(disc) / a


@njit(cache=True, nogil=True)
def _polyhedron_chord(planes, nplanes, x, y):
    lo = -1e30
    hi = 1e30
    for p in range(nplanes):
        nx = planes[p, 0]
        ny = planes[p, 1]
        nz = planes[p, 2]
        c = planes[p, 3] - nx * x - ny * y
        if abs(nz) < 1e-9:
            if c < 0.0:
                return 0.0
        elif nz > 0.0:
            v = c / nz
            if v < hi:
                hi = v
        else:
            v = c / nz
            if v > lo:
                lo = v
    if hi > lo:
        return hi - lo
    return 0.0


@njit(cache=True, nogil=True)
def _capsule_chord(cap, x, y):
    ux, uy, uz, h, r = cap[0], cap[1], cap[2], cap[3], cap[4]
    lo = 1e30
    hi = -1e30
    r2 = r * r
    # end spheres
    for s in (-1.0, 1.0):
        dx = x - s * h * ux
        dy = y - s * h * uy
        d2 = r2 - dx * dx - dy * dy
        if d2 > 0.0:
            half = np.sqrt(d2)
            zc = s * h * uz
            if zc - half < lo:
                lo = zc - half
            if zc + half > hi:
                hi = zc + half
    # cylinder clipped to the slab |(p . u)| <= h
    wu = x * ux + y * uy
    a = 1.0 - uz * uz
    if a > 1e-9:
        b = -wu * uz
        c = x * x + y * y - wu * wu - r2
        disc = b * b - a * c
        if disc > 0.0:
            sq = np.sqrt(disc)
            z0 = (-b - sq) / a
            z1 = (-b + sq) / a
            if abs(uz) > 1e-9:
                s0 = (-h - wu) / uz
                s1 = (h - wu) / uz
                if s0 > s1:
                    s0, s1 = s1, s0
                if s0 > z0:
                    z0 = s0
                if s1 < z1:
                    z1 = s1
            elif abs(wu) > h:
                z1 = z0
            if z1 > z0:
                if z0 < lo:
                    lo = z0
                if z1 > hi:
                    hi = z1
    elif x * x + y * y < r2:
        if -h < lo:
            lo = -h
        if h > hi:
            hi = h
    if hi > lo:
        return hi - lo
    return 0.0


@njit(cache=True, nogil=True)
def rasterize(kind, center, quad, harm, planes, nplanes, capsule, bbox, tau_per_px,
              phase_per_px, label_id, layer, ss, pixel_nm, thick, tau, phase, labels, best, layers,
              layer_labels, layer_best):
    """Add the particles' projected thickness to the frame buffers (in place).

    Parameters
    ----------
    kind : (n,) int8
        Primitive of each particle (``ELLIPSOID``, ``POLYHEDRON``, ``CAPSULE``).
    center : (n, 3) float64
        Centre (x = column, y = row, z) in px; pixel (r, c) has its centre at (x=c, y=r).
    quad : (n, 3, 3) float64
        Ellipsoid quadratic forms, 1/px^2.
    harm : (n, MAX_HARMONICS, 3) float64
        Radial modulation (m, amplitude, phase) of ellipsoids; amplitude 0 = none.
    planes : (n, MAX_PLANES, 4) float64, nplanes : (n,) int64
        Half-spaces (nx, ny, nz, d) of polyhedra, d in px.
    capsule : (n, 5) float64
        (ux, uy, uz, half length px, radius px) of capsules.
    bbox : (n, 4) int64
        (row0, row1, col0, col1), clipped to the frame, end exclusive.
    tau_per_px, phase_per_px : (n,) float64
        Attenuation t/Lambda and phase sigma V0 t per pixel length of chord.
    label_id : (n,) int32
        Instance id written to ``labels``; 0 = distractor (thickness only, no truth).
    layer : (n,) int64
        Index into ``layers``.
    ss : int
        Supersampling per axis; a pixel belongs to a particle when >= half its samples hit it.
    pixel_nm : float
        Pixel size; ``thick`` is accumulated in nm.
    thick, tau, phase : (H, W) float32
        Accumulated projected thickness (nm), attenuation and phase.
    labels : (H, W) int32, best : (H, W) float32
        Instance labels and the mean chord of the owner; overlap rule: the particle with the
        larger mean projected thickness in the pixel owns it (ties: the earlier particle).
    layers : (L, H, W) bool
        Per-layer coverage masks.
    layer_labels : (L, H, W) int32, layer_best : (L, H, W) float32
        Instance labels of each layer alone and the mean chord of their owner (the same
        overlap rule within a layer); particles of different layers that overlap in projection
        are both kept, each in its own plane.
    """
    n = kind.shape[0]
    inv = 1.0 / (ss * ss)
    half = 0.5 * (ss - 1) / ss
    for i in range(n):
        cx = center[i, 0]
        cy = center[i, 1]
        for r in range(bbox[i, 0], bbox[i, 1]):
            for c in range(bbox[i, 2], bbox[i, 3]):
                tsum = 0.0
                hits = 0
                for a in range(ss):
                    y = r - cy - half + a / ss
                    for b in range(ss):
                        x = c - cx - half + b / ss
                        k = kind[i]
                        if k == 0:
                            t = _ellipsoid_chord(quad[i], harm[i], x, y)
                        elif k == 1:
                            t = _polyhedron_chord(planes[i], nplanes[i], x, y)
                        else:
                            t = _capsule_chord(capsule[i], x, y)
                        if t > 0.0:
                            tsum += t
                            hits += 1
                if hits == 0:
                    continue
                tm = tsum * inv
                thick[r, c] += tm * pixel_nm
                tau[r, c] += tm * tau_per_px[i]
                phase[r, c] += tm * phase_per_px[i]
                if label_id[i] > 0 and 2 * hits >= ss * ss:
                    layers[layer[i], r, c] = True
                    if tm > layer_best[layer[i], r, c]:
                        layer_best[layer[i], r, c] = tm
                        layer_labels[layer[i], r, c] = label_id[i]
                    if tm > best[r, c]:
                        best[r, c] = tm
                        labels[r, c] = label_id[i]
