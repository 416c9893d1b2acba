"""Numba kernels for instance extraction (private).

Every kernel takes arrays and scalars and fills preallocated outputs; the
wrappers in :mod:`temstream.tracking.instances` validate and allocate.
"""

import numpy as np
from numba import njit

# Perimeter weights of the 3x3 border-pixel code (Benkrid & Crookes style
# weighting: straight runs 1, diagonal steps sqrt(2), corners (1 + sqrt(2)) / 2).
# code = 1 (centre) + 2 * (# 4-neighbours on the border) + 10 * (# diagonal ones)
_PERIM_W = np.zeros(50, dtype=np.float64)
_PERIM_W[np.array([5, 7, 15, 17, 25, 27])] = 1.0
_PERIM_W[np.array([21, 33])] = np.sqrt(2.0)
_PERIM_W[np.array([13, 23])] = (1.0 + np.sqrt(2.0)) / 2.0


@njit(cache=True, nogil=True)
def bboxes_from_labels(labels, n, out_bbox, out_area):
    """Bounding boxes and pixel counts of labels 1..n.

    Parameters
    ----------
    labels : (H, W) int32
    n : int
        Largest label.
    out_bbox : (n + 1, 4) int64
        Filled with (top, left, bottom, right), bottom/right exclusive.
    out_area : (n + 1,) int64
        Filled with the pixel count of each label (row 0 = background).
    """
    h, w = labels.shape
    for k in range(n + 1):
        out_bbox[k, 0] = h
        out_bbox[k, 1] = w
        out_bbox[k, 2] = 0
        out_bbox[k, 3] = 0
        out_area[k] = 0
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k > 0:
                out_area[k] += 1
                if r < out_bbox[k, 0]:
                    out_bbox[k, 0] = r
                if r + 1 > out_bbox[k, 2]:
                    out_bbox[k, 2] = r + 1
                if c < out_bbox[k, 1]:
                    out_bbox[k, 1] = c
                if c + 1 > out_bbox[k, 3]:
                    out_bbox[k, 3] = c + 1


@njit(cache=True, nogil=True)
def relabel_in_bboxes(labels, bbox, keep, out_new_id):
    """Compact labels in place: kept labels become 1..N in order, others 0.

    Only the pixels inside each label's bounding box are visited. Safe in
    place because a new id never exceeds the old one and labels are visited
    in increasing order.

    Parameters
    ----------
    labels : (H, W) int32, modified in place
    bbox : (n + 1, 4) int64, (top, left, bottom, right)
    keep : (n + 1,) bool
    out_new_id : (n + 1,) int32, filled with the new id of each old label
    """
    n = bbox.shape[0] - 1
    nxt = 0
    out_new_id[0] = 0
    for k in range(1, n + 1):
        if keep[k]:
            nxt += 1
            out_new_id[k] = nxt
        else:
            out_new_id[k] = 0
        new = out_new_id[k]
        if new == k:
            continue
        for r in range(bbox[k, 0], bbox[k, 2]):
            for c in range(bbox[k, 1], bbox[k, 3]):
                if labels[r, c] == k:
                    labels[r, c] = new
    return nxt


@njit(cache=True, nogil=True, inline="always")
def _is_border(labels, r, c, k, h, w):
    # pixel (r, c) belongs to k and touches a 4-neighbour outside k (or the edge)
    if labels[r, c] != k:
        return False
    if r == 0 or r == h - 1 or c == 0 or c == w - 1:
        return True
    return (labels[r - 1, c] != k or labels[r + 1, c] != k
            or labels[r, c - 1] != k or labels[r, c + 1] != k)


@njit(cache=True, nogil=True)
def region_props(labels, bbox, weights, probs, n_fold, perim_w,
                 out_x, out_y, out_area, out_angle, out_strength, out_score,
                 out_perimeter, out_eccentricity, out_class_sums):
    """Per-label properties, visiting only each label's bounding box.

    Parameters
    ----------
    labels : (H, W) int32
        Labels 1..N (0 = background).
    bbox : (N + 1, 4) int64
        (top, left, bottom, right) per label, row 0 unused.
    weights : (H, W) float32 or (0, 0) float32
        Centroid weights (probability or intensity); empty = unweighted.
    probs : (C, H, W) float32 or (0, H, W) float32
        Class probabilities for the confidence and the per-class sums;
        empty = score 1.
    n_fold : int
        Symmetry order of the orientation moment (>= 1).
    perim_w : (50,) float64
        Perimeter weight per border code.
    out_x, out_y : (N,) float64
        Sub-pixel centroid (column, row), weighted when ``weights`` is given.
    out_area : (N,) float64
        Pixel count.
    out_angle : (N,) float64
        arg(sum (z - zbar)**n) / n with z = dx - i dy (counter-clockwise on
        screen, rows pointing down), radians in (-pi/n, pi/n].
    out_strength : (N,) float64
        |sum (z - zbar)**n| / sum |z - zbar|**n in [0, 1].
    out_score : (N,) float32
        Mean over the pixels of the largest class probability.
    out_perimeter : (N,) float64
    out_eccentricity : (N,) float64
    out_class_sums : (N, C) float64
        Summed probability of each class over the label's pixels.
    """
    h, w = labels.shape
    n = bbox.shape[0] - 1
    use_w = weights.shape[0] > 0
    nc = probs.shape[0]
    for k in range(1, n + 1):
        i = k - 1
        t0 = bbox[k, 0]
        l0 = bbox[k, 1]
        b0 = bbox[k, 2]
        r0 = bbox[k, 3]
        cnt = 0.0
        sx = 0.0
        sy = 0.0
        ws = 0.0
        wx = 0.0
        wy = 0.0
        sc = 0.0
        for r in range(t0, b0):
            for c in range(l0, r0):
                if labels[r, c] == k:
                    # coordinates relative to the box corner keep sums small
                    dx = c - l0
                    dy = r - t0
                    cnt += 1.0
                    sx += dx
                    sy += dy
                    if use_w:
                        wv = weights[r, c]
                        ws += wv
                        wx += wv * dx
                        wy += wv * dy
                    if nc > 0:
                        best = probs[0, r, c]
                        for q in range(nc):
                            p = probs[q, r, c]
                            out_class_sums[i, q] += p
                            if p > best:
                                best = p
                        sc += best
        mx = sx / cnt
        my = sy / cnt
        if use_w and ws > 0.0:
            out_x[i] = l0 + wx / ws
            out_y[i] = t0 + wy / ws
        else:
            out_x[i] = l0 + mx
            out_y[i] = t0 + my
        out_area[i] = cnt
        out_score[i] = sc / cnt if nc > 0 else 1.0
        # second pass: centred moments of the shape (unweighted)
        mu20 = 0.0
        mu02 = 0.0
        mu11 = 0.0
        cre = 0.0
        cim = 0.0
        cabs = 0.0
        perim = 0.0
        for r in range(t0, b0):
            for c in range(l0, r0):
                if labels[r, c] == k:
                    dx = (c - l0) - mx
                    dy = (r - t0) - my
                    mu20 += dx * dx
                    mu02 += dy * dy
                    mu11 += dx * dy
                    # z = dx - i dy, z**n by repeated multiplication
                    zr = dx
                    zi = -dy
                    pr = 1.0
                    pi_ = 0.0
                    for _ in range(n_fold):
                        tr = pr * zr - pi_ * zi
                        pi_ = pr * zi + pi_ * zr
                        pr = tr
                    cre += pr
                    cim += pi_
                    cabs += np.sqrt(pr * pr + pi_ * pi_)  # |z**n| = |z|**n
                    if _is_border(labels, r, c, k, h, w):
                        code = 1
                        for dr in range(-1, 2):
                            for dc in range(-1, 2):
                                if dr == 0 and dc == 0:
                                    continue
                                rr = r + dr
                                cc = c + dc
                                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                                    continue
                                if _is_border(labels, rr, cc, k, h, w):
                                    if dr == 0 or dc == 0:
                                        code += 2
                                    else:
                                        code += 10
                        perim += perim_w[code]
        out_perimeter[i] = perim
        out_angle[i] = np.arctan2(cim, cre) / n_fold
        out_strength[i] = np.sqrt(cre * cre + cim * cim) / cabs if cabs > 0.0 else 0.0
        a = mu20 / cnt
        cc_ = mu02 / cnt
        b = mu11 / cnt
        half = 0.5 * (a - cc_)
        root = np.sqrt(half * half + b * b)
        l1 = 0.5 * (a + cc_) + root
        l2 = 0.5 * (a + cc_) - root
        if l1 > 0.0:
            v = 1.0 - l2 / l1
            out_eccentricity[i] = np.sqrt(v) if v > 0.0 else 0.0
        else:
            out_eccentricity[i] = 0.0


@njit(cache=True, nogil=True)
def grow_labels(labels, mask, max_steps, queue):
    """Grow labels into unlabelled ``mask`` pixels by breadth-first search.

    Geodesic growth with 4-connectivity, at most ``max_steps`` pixels from
    the seed; a pixel reached by two labels in the same step keeps the one
    that arrives first in raster order. Modifies ``labels`` in place.

    Parameters
    ----------
    labels : (H, W) int32
    mask : (H, W) bool
        Where growth is allowed.
    max_steps : int
    queue : (H * W,) int64
        Work space.
    """
    h, w = labels.shape
    head = 0
    tail = 0
    for r in range(h):
        for c in range(w):
            if labels[r, c] > 0:
                queue[tail] = r * w + c
                tail += 1
    for _ in range(max_steps):
        end = tail
        if head == end:
            break
        while head < end:
            p = queue[head]
            head += 1
            r = p // w
            c = p - r * w
            k = labels[r, c]
            for d in range(4):
                rr = r
                cc = c
                if d == 0:
                    rr = r - 1
                elif d == 1:
                    rr = r + 1
                elif d == 2:
                    cc = c - 1
                else:
                    cc = c + 1
                if rr < 0 or rr >= h or cc < 0 or cc >= w:
                    continue
                if labels[rr, cc] == 0 and mask[rr, cc]:
                    labels[rr, cc] = k
                    queue[tail] = rr * w + cc
                    tail += 1
