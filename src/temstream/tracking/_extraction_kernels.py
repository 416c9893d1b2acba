"""Numba kernels behind :func:`temstream.tracking.extraction.extract_instances` (private).

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
    probs : (C, H, W) float32, or (0, H, W)
        Class probabilities for the score and the class sums.
    n_fold : int
        Symmetry order of the complex orientation moment.
    perim_w : (50,) float64
        :data:`PERIMETER_WEIGHTS`.
    out_x, out_y, out_angle, out_strength, out_perimeter, out_l1, out_l2 : (m,) float64
        Centroid (px), n-fold angle (rad), |c_n| / sum |z|^n, perimeter (px),
        eigenvalues of the covariance (px^2, l1 >= l2).
    out_score : (m,) float32
        Mean over the region of the largest class probability (1 without probs).
    out_class_sums : (m, C) float64
        Summed probability of each class over the region.
    """
    h, w = labels.shape
    n = bbox.shape[0] - 1
    nc = probs.shape[0]
    weighted = weights.shape[0] > 0
    max_h = 0
    max_w = 0
    for k in range(1, n + 1):
        if new_id[k] > 0:
            max_h = max(max_h, bbox[k, 2] - bbox[k, 0])
            max_w = max(max_w, bbox[k, 3] - bbox[k, 1])
    border = np.zeros((max_h + 2, max_w + 2), np.int64)
    for k in range(1, n + 1):
        j = new_id[k]
        if j == 0:
            if area[k] > 0:
                for r in range(bbox[k, 0], bbox[k, 2]):
                    for c in range(bbox[k, 1], bbox[k, 3]):
                        if labels[r, c] == k:
                            labels[r, c] = 0
            continue
        i = j - 1
        r0 = bbox[k, 0]
        c0 = bbox[k, 1]
        # pass 1: centroids (coordinates relative to the box corner), score, class sums
        cnt = 0.0
        sx = 0.0
        sy = 0.0
        sw = 0.0
        swx = 0.0
        swy = 0.0
        sscore = 0.0
        for r in range(r0, bbox[k, 2]):
            for c in range(c0, bbox[k, 3]):
                if labels[r, c] != k:
                    continue
                dx = c - c0
                dy = r - r0
                cnt += 1.0
                sx += dx
                sy += dy
                if weighted:
                    wt = weights[r, c]
                    sw += wt
                    swx += wt * dx
                    swy += wt * dy
                if nc > 0:
                    pmax = probs[0, r, c]
                    for q in range(nc):
                        pq = probs[q, r, c]
                        out_class_sums[i, q] += pq
                        if pq > pmax:
                            pmax = pq
                    sscore += pmax
        mx = sx / cnt
        my = sy / cnt
        if weighted and sw > 0.0:
            out_x[i] = c0 + swx / sw
            out_y[i] = r0 + swy / sw
        else:
            out_x[i] = c0 + mx
            out_y[i] = r0 + my
        out_score[i] = sscore / cnt if nc > 0 else 1.0
        # pass 2: central moments, n-fold complex moment, border pixels
        m20 = 0.0
        m02 = 0.0
        m11 = 0.0
        cre = 0.0
        cim = 0.0
        babs = 0.0
        bh = bbox[k, 2] - r0
        bw = bbox[k, 3] - c0
        for a in range(bh + 2):
            for b in range(bw + 2):
                border[a, b] = 0
        for r in range(r0, bbox[k, 2]):
            for c in range(c0, bbox[k, 3]):
                if labels[r, c] != k:
                    continue
                dx = (c - c0) - mx
                dy = (r - r0) - my
                m20 += dx * dx
                m02 += dy * dy
                m11 += dx * dy
                zr = 1.0
                zi = 0.0
                for _ in range(n_fold):
                    t = zr * dx - zi * dy
                    zi = zr * dy + zi * dx
                    zr = t
                cre += zr
                cim += zi
                babs += np.sqrt(zr * zr + zi * zi)          # |z|^n = |z^n|
                if (r == 0 or c == 0 or r == h - 1 or c == w - 1
                        or labels[r - 1, c] != k or labels[r + 1, c] != k
                        or labels[r, c - 1] != k or labels[r, c + 1] != k):
                    border[r - r0 + 1, c - c0 + 1] = 1
        # pass 3: perimeter from the border codes (on the padded box scratch)
        perim = 0.0
        for a in range(1, bh + 1):
            for b in range(1, bw + 1):
                if border[a, b]:
                    code = 1 + 2 * (border[a - 1, b] + border[a + 1, b] + border[a, b - 1]
                                    + border[a, b + 1]) \
                        + 10 * (border[a - 1, b - 1] + border[a - 1, b + 1]
                                + border[a + 1, b - 1] + border[a + 1, b + 1])
                    perim += perim_w[code]
        out_angle[i] = np.arctan2(cim, cre) / n_fold
        out_strength[i] = np.sqrt(cre * cre + cim * cim) / babs if babs > 0.0 else 0.0
        out_perimeter[i] = perim
        a = m20 / cnt
        d = m02 / cnt
        b = m11 / cnt
        half_tr = 0.5 * (a + d)
        disc = np.sqrt(max(0.25 * (a - d) * (a - d) + b * b, 0.0))
        out_l1[i] = half_tr + disc
        out_l2[i] = max(half_tr - disc, 0.0)
        if j != k:
            for r in range(r0, bbox[k, 2]):
                for c in range(c0, bbox[k, 3]):
                    if labels[r, c] == k:
                        labels[r, c] = j
