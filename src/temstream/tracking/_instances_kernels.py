"""Numba kernels behind :func:`temstream.tracking.instances.extract_instances` (private).

Every kernel takes arrays and scalars and fills preallocated outputs. Regions
are visited through their bounding boxes, so the cost grows with the
foreground area, not with the frame size.
"""

import numpy as np
from numba import njit

# Perimeter weights indexed by the border code of a border pixel:
# code = 1 + 2 * (4-neighbours on the border) + 10 * (diagonal neighbours on the border).
# Straight runs weigh 1, diagonal steps sqrt(2), corners (1 + sqrt(2)) / 2 (the
# estimator of skimage.measure.perimeter with 4-connectivity).
PERIMETER_WEIGHTS = np.zeros(50, dtype=np.float64)
PERIMETER_WEIGHTS[np.array([5, 7, 15, 17, 25, 27])] = 1.0
PERIMETER_WEIGHTS[np.array([21, 33])] = np.sqrt(2.0)
PERIMETER_WEIGHTS[np.array([13, 23])] = (1.0 + np.sqrt(2.0)) / 2.0


@njit(cache=True, nogil=True)
def bbox_area(labels, n, out_bbox, out_area):
    """Bounding boxes (top, left, bottom, right; exclusive) and pixel counts of labels 1..n."""
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
                if r >= out_bbox[k, 2]:
                    out_bbox[k, 2] = r + 1
                if c < out_bbox[k, 1]:
                    out_bbox[k, 1] = c
                if c >= out_bbox[k, 3]:
                    out_bbox[k, 3] = c + 1


@njit(cache=True, nogil=True)
def grow_seeds(labels, extent, bbox, queue):
    """Grow seed labels into ``extent`` (4-connected breadth-first, first come first served).

    Pixels of ``extent`` reachable from no seed stay 0. ``bbox`` (n + 1, 4) is
    updated in place; ``queue`` is (H * W,) int64 scratch.
    """
    h, w = labels.shape
    head = 0
    tail = 0
    for r in range(h):
        for c in range(w):
            if labels[r, c] > 0:
                queue[tail] = r * w + c
                tail += 1
    while head < tail:
        p = queue[head]
        head += 1
        r = p // w
        c = p - r * w
        k = labels[r, c]
        for q in range(4):
            rr = r + (q == 0) - (q == 1)
            cc = c + (q == 2) - (q == 3)
            if rr < 0 or rr >= h or cc < 0 or cc >= w:
                continue
            if labels[rr, cc] != 0 or not extent[rr, cc]:
                continue
            labels[rr, cc] = k
            queue[tail] = rr * w + cc
            tail += 1
            if rr < bbox[k, 0]:
                bbox[k, 0] = rr
            if rr >= bbox[k, 2]:
                bbox[k, 2] = rr + 1
            if cc < bbox[k, 1]:
                bbox[k, 1] = cc
            if cc >= bbox[k, 3]:
                bbox[k, 3] = cc + 1


# Fast-math without the no-NaN/no-inf assumptions: reassociation lets LLVM
# vectorise the masked reductions; masked-out pixels are selected away, never
# multiplied, so a NaN probability outside a region cannot leak into it.
_FM = {"reassoc", "contract", "arcp", "nsz"}


@njit(cache=True, nogil=True, fastmath=_FM)
def _moments(inreg, bh, bw, r0, c0, weights, probs, out):
    """Masked sums over one padded box: out = (n, sx, sy, sw, swx, swy, sum max(p0, p1)).

    Coordinates are relative to the box corner (r0, c0); the score sum is only
    computed for two-class probabilities.
    """
    weighted = weights.shape[0] > 0
    two = probs.shape[0] == 2
    cnt = 0.0
    sx = 0.0
    sy = 0.0
    sw = 0.0
    swx = 0.0
    swy = 0.0
    ss = 0.0
    for a in range(bh):
        y = np.float64(a)
        for b in range(bw):
            m = inreg[a + 1, b + 1] != 0
            x = np.float64(b)
            cnt += 1.0 if m else 0.0
            sx += x if m else 0.0
            sy += y if m else 0.0
            if weighted:
                wt = np.float64(weights[r0 + a, c0 + b]) if m else 0.0
                sw += wt
                swx += wt * x
                swy += wt * y
            if two:
                pm = max(probs[0, r0 + a, c0 + b], probs[1, r0 + a, c0 + b])
                ss += np.float64(pm) if m else 0.0
    out[0] = cnt
    out[1] = sx
    out[2] = sy
    out[3] = sw
    out[4] = swx
    out[5] = swy
    out[6] = ss


@njit(cache=True, nogil=True, fastmath=_FM)
def _central(inreg, bh, bw, mx, my, sel, out):
    """Second central moments and the n-fold complex moment (n <= 6 via the ``sel`` one-hot).

    out = (m20, m02, m11, re c_n, im c_n, sum |z|^n).
    """
    s1 = sel[1]
    s2 = sel[2]
    s3 = sel[3]
    s4 = sel[4]
    s5 = sel[5]
    s6 = sel[6]
    m20 = 0.0
    m02 = 0.0
    m11 = 0.0
    cre = 0.0
    cim = 0.0
    babs = 0.0
    for a in range(bh):
        y = a - my
        for b in range(bw):
            m = inreg[a + 1, b + 1] != 0
            x = b - mx
            x2 = x * x - y * y
            y2 = 2.0 * x * y
            x3 = x2 * x - y2 * y
            y3 = x2 * y + y2 * x
            x4 = x2 * x2 - y2 * y2
            y4 = 2.0 * x2 * y2
            x5 = x4 * x - y4 * y
            y5 = x4 * y + y4 * x
            x6 = x3 * x3 - y3 * y3
            y6 = 2.0 * x3 * y3
            zr = s1 * x + s2 * x2 + s3 * x3 + s4 * x4 + s5 * x5 + s6 * x6
            zi = s1 * y + s2 * y2 + s3 * y3 + s4 * y4 + s5 * y5 + s6 * y6
            m20 += x * x if m else 0.0
            m02 += y * y if m else 0.0
            m11 += x * y if m else 0.0
            cre += zr if m else 0.0
            cim += zi if m else 0.0
            babs += np.sqrt(zr * zr + zi * zi) if m else 0.0
    out[0] = m20
    out[1] = m02
    out[2] = m11
    out[3] = cre
    out[4] = cim
    out[5] = babs


@njit(cache=True, nogil=True)
def _central_any_n(inreg, bh, bw, mx, my, n_fold, out):
    """:func:`_central` for n_fold > 6 (scalar loop)."""
    for q in range(6):
        out[q] = 0.0
    for a in range(bh):
        y = a - my
        for b in range(bw):
            if inreg[a + 1, b + 1] == 0:
                continue
            x = b - mx
            zr = 1.0
            zi = 0.0
            for _ in range(n_fold):
                t = zr * x - zi * y
                zi = zr * y + zi * x
                zr = t
            out[0] += x * x
            out[1] += y * y
            out[2] += x * y
            out[3] += zr
            out[4] += zi
            out[5] += np.sqrt(zr * zr + zi * zi)


@njit(cache=True, nogil=True)
def _perimeter(inreg, border, bh, bw, perim_w):
    """skimage's 4-connectivity perimeter estimator on one padded box."""
    for a in range(1, bh + 1):
        for b in range(1, bw + 1):
            inner = (inreg[a - 1, b] & inreg[a + 1, b] & inreg[a, b - 1] & inreg[a, b + 1])
            border[a, b] = inreg[a, b] & (1 - inner)
    perim = 0.0
    for a in range(1, bh + 1):
        for b in range(1, bw + 1):
            if border[a, b]:
                code = 1 + 2 * (border[a - 1, b] + border[a + 1, b] + border[a, b - 1]
                                + border[a, b + 1]) \
                    + 10 * (border[a - 1, b - 1] + border[a - 1, b + 1]
                            + border[a + 1, b - 1] + border[a + 1, b + 1])
                perim += perim_w[code]
    return perim


@njit(cache=True, nogil=True)
def region_properties(labels, bbox, area, new_id, weights, probs, n_fold, perim_w,
                      out_x, out_y, out_angle, out_strength, out_score, out_perimeter,
                      out_l1, out_l2, out_class_sums):
    """Moments, orientation, perimeter and confidence of kept regions; relabels in place.

    Parameters
    ----------
    labels : (H, W) int32
        Labels 1..n on input; on output label k becomes ``new_id[k]`` (0 = dropped).
    bbox : (n + 1, 4) int64
        top, left, bottom, right (exclusive) of each label.
    area : (n + 1,) int64
        Pixel count of each label.
    new_id : (n + 1,) int32
        Output id of each label, 1..m, or 0 to drop it.
    weights : (H, W) float32, or (0, 0)
        Centroid weights; (0, 0) means unweighted.
    probs : (C, H, W) float32, or (0, 1, 1)
        Class probabilities for the score and the class sums.
    n_fold : int
        Symmetry order of the complex orientation moment (>= 1).
    perim_w : (50,) float64
        :data:`PERIMETER_WEIGHTS`.
    out_x, out_y, out_angle, out_strength, out_perimeter, out_l1, out_l2 : (m,) float64
        Centroid (px), n-fold angle (rad), |c_n| / sum |z|^n, perimeter (px),
        eigenvalues of the covariance (px^2, l1 >= l2).
    out_score : (m,) float32
        Mean over the region of the largest class probability (1 without probs).
    out_class_sums : (m, C) float64
        Summed probability of each class over the region (filled when C > 2).
    """
    n = bbox.shape[0] - 1
    nc = probs.shape[0]
    max_h = 0
    max_w = 0
    for k in range(1, n + 1):
        if new_id[k] > 0:
            max_h = max(max_h, bbox[k, 2] - bbox[k, 0])
            max_w = max(max_w, bbox[k, 3] - bbox[k, 1])
    inreg = np.zeros((max_h + 2, max_w + 2), np.uint8)
    border = np.zeros((max_h + 2, max_w + 2), np.uint8)
    sel = np.zeros(7)
    if n_fold <= 6:
        sel[n_fold] = 1.0
    acc = np.empty(8)
    cen = np.empty(6)
    for k in range(1, n + 1):
        j = new_id[k]
        r0 = bbox[k, 0]
        c0 = bbox[k, 1]
        r1 = bbox[k, 2]
        c1 = bbox[k, 3]
        if j == 0:
            for r in range(r0, r1):
                for c in range(c0, c1):
                    if labels[r, c] == k:
                        labels[r, c] = 0
            continue
        i = j - 1
        bh = r1 - r0
        bw = c1 - c0
        for a in range(bh + 2):
            for b in range(bw + 2):
                inreg[a, b] = 0
                border[a, b] = 0
        for a in range(bh):
            for b in range(bw):
                inreg[a + 1, b + 1] = labels[r0 + a, c0 + b] == k
        _moments(inreg, bh, bw, r0, c0, weights, probs, acc)
        cnt = acc[0]
        mx = acc[1] / cnt
        my = acc[2] / cnt
        if weights.shape[0] > 0 and acc[3] > 0.0:
            out_x[i] = c0 + acc[4] / acc[3]
            out_y[i] = r0 + acc[5] / acc[3]
        else:
            out_x[i] = c0 + mx
            out_y[i] = r0 + my
        if nc == 2:
            out_score[i] = acc[6] / cnt
        elif nc > 2:
            ss = 0.0
            for a in range(bh):
                for b in range(bw):
                    if inreg[a + 1, b + 1]:
                        pm = probs[0, r0 + a, c0 + b]
                        for q in range(nc):
                            pq = probs[q, r0 + a, c0 + b]
                            out_class_sums[i, q] += pq
                            if pq > pm:
                                pm = pq
                        ss += pm
            out_score[i] = ss / cnt
        else:
            out_score[i] = 1.0
        if n_fold <= 6:
            _central(inreg, bh, bw, mx, my, sel, cen)
        else:
            _central_any_n(inreg, bh, bw, mx, my, n_fold, cen)
        out_angle[i] = np.arctan2(cen[4], cen[3]) / n_fold
        out_strength[i] = np.sqrt(cen[3] ** 2 + cen[4] ** 2) / cen[5] if cen[5] > 0.0 else 0.0
        out_perimeter[i] = _perimeter(inreg, border, bh, bw, perim_w)
        ca = cen[0] / cnt
        cd = cen[1] / cnt
        cb = cen[2] / cnt
        half_tr = 0.5 * (ca + cd)
        disc = np.sqrt(max(0.25 * (ca - cd) * (ca - cd) + cb * cb, 0.0))
        out_l1[i] = half_tr + disc
        out_l2[i] = max(half_tr - disc, 0.0)
        if j != k:
            for r in range(r0, r1):
                for c in range(c0, c1):
                    if labels[r, c] == k:
                        labels[r, c] = j


@njit(cache=True, nogil=True)
def border_pairs(labels, values, out_a, out_b, out_v, out_edges):
    """Every 4-neighbour pixel pair that joins two different particles.

    Fills ``out_a[i] < out_b[i]`` (the two labels) and ``out_v[i]`` (the mean of ``values``
    at the two pixels) and returns how many pairs were written; the outputs need room for two
    pairs per particle pixel. ``out_edges[k]`` ((n + 1,)) is incremented by the number of
    4-neighbour edges between label k and any other label, background included (the outline
    length of particle k).
    """
    h, w = labels.shape
    m = 0
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            for q in range(2):
                rr = r + q
                cc = c + 1 - q
                if rr >= h or cc >= w:
                    continue
                j = labels[rr, cc]
                if j == k:
                    continue
                out_edges[k] += 1
                out_edges[j] += 1
                if j == 0 or k == 0:
                    continue
                out_a[m] = min(k, j)
                out_b[m] = max(k, j)
                out_v[m] = 0.5 * (values[r, c] + values[rr, cc])
                m += 1
    return m


@njit(cache=True, nogil=True)
def foreground_sums(labels, p_background, out):
    """``out[k] += sum of 1 - p_background`` over the pixels of label k (k >= 1)."""
    h, w = labels.shape
    for r in range(h):
        for c in range(w):
            k = labels[r, c]
            if k > 0:
                out[k] += 1.0 - p_background[r, c]


@njit(cache=True, nogil=True)
def trim_below(labels, p_background, threshold):
    """Set labels to 0 where ``1 - p_background >= threshold`` fails (NaN fails); returns
    the number of pixels cut. In float32, as numpy evaluates ``1 - p >= t`` on float32 ``p``."""
    h, w = labels.shape
    cut = 0
    one = np.float32(1.0)
    for r in range(h):
        for c in range(w):
            if labels[r, c] > 0 and not (one - p_background[r, c] >= threshold):
                labels[r, c] = 0
                cut += 1
    return cut
