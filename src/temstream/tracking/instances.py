"""Particle instances and their properties from a segmentation.

:func:`extract_instances` turns a segmenter's class probabilities (or a boolean
mask) into an instance label image and a per-particle table. Labelling is
OpenCV's ``connectedComponents`` (8-connectivity) plus one numba pass for the
bounding boxes (the fastest exact candidate in ``benchmarks/bench_instances.py``;
``connectedComponentsWithStats`` is slower because it also computes centroids
we recompute weighted anyway); the properties come from one numba kernel that
makes a few branchless (vectorised) passes over each particle's bounding box.

Orientation convention
----------------------
``angle`` is ``arg(sum_p (z_p - zbar)**n) / n`` with ``z = x + i*y`` in image
coordinates: x = column to the right, y = row **downwards**. An angle of +0.1
therefore turns the particle *clockwise as seen on screen*. Values lie in
(-pi/n, pi/n] and are defined modulo 2*pi/n.
"""

import cv2
import numpy as np

from temstream.tracking import _instances_kernels as _k
from temstream.tracking.edges import contrast_significance, half_contrast_outlines

__all__ = ["extract_instances", "empty_table", "label_mask", "TABLE_COLUMNS", "LABELLERS"]

#: Keys of the particle table, in order.
TABLE_COLUMNS = ("label", "x", "y", "area", "angle", "score", "layer",
                 "equivalent_diameter", "perimeter", "eccentricity", "orientation_strength")

_DTYPES = {"label": np.int32, "score": np.float32, "layer": np.int16}

#: Connected-component labellers accepted by :func:`label_mask` (all 8-connected, same partition).
LABELLERS = ("opencv", "opencv-stats", "scipy", "skimage")


def label_mask(mask, labeller="opencv"):
    """Label 8-connected components and measure their boxes.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    labeller : {"opencv", "opencv-stats", "scipy", "skimage"}
        ``"opencv"``: ``cv2.connectedComponents`` + a numba pass for the boxes
        (fastest measured); ``"opencv-stats"``: ``connectedComponentsWithStats``.

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 = background, components 1..n.
    bbox : (n + 1, 4) int64 ndarray
        top, left, bottom, right (exclusive), pixels.
    area : (n + 1,) int64 ndarray
        Pixel counts.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if labeller == "opencv":
        import cv2

        n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8,
                                            ltype=cv2.CV_32S)
        return labels, *_boxes(labels, n - 1)
    if labeller == "opencv-stats":
        import cv2

        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        stats = stats.astype(np.int64)
        bbox = np.empty((n, 4), np.int64)
        bbox[:, 0] = stats[:, cv2.CC_STAT_TOP]
        bbox[:, 1] = stats[:, cv2.CC_STAT_LEFT]
        bbox[:, 2] = bbox[:, 0] + stats[:, cv2.CC_STAT_HEIGHT]
        bbox[:, 3] = bbox[:, 1] + stats[:, cv2.CC_STAT_WIDTH]
        return labels, bbox, stats[:, cv2.CC_STAT_AREA].copy()
    if labeller == "scipy":
        from scipy import ndimage

        labels = np.empty(mask.shape, np.int32)
        n = ndimage.label(mask, structure=np.ones((3, 3), bool), output=labels)
    elif labeller == "skimage":
        from skimage.measure import label

        labels, n = label(mask, connectivity=2, return_num=True)
        labels = labels.astype(np.int32, copy=False)
    else:
        raise ValueError(f"unknown labeller {labeller!r}; use one of {LABELLERS}")
    return labels, *_boxes(labels, n)


def _boxes(labels, n):
    bbox = np.empty((n + 1, 4), np.int64)
    area = np.empty(n + 1, np.int64)
    _k.bbox_area(labels, int(n), bbox, area)
    return bbox, area


def _conventions(probabilities, classes, threshold, seed_threshold):
    """Return (mask, weights, probs, seeds_extent, layered) for the class convention."""
    arr = np.asarray(probabilities)
    if arr.ndim == 2:
        if arr.dtype != bool:
            raise ValueError(f"a 2-D input must be a boolean mask, got dtype {arr.dtype}; "
                             "pass class probabilities as a (C, H, W) array")
        return arr, None, None, None, False
    if arr.ndim != 3:
        raise ValueError(f"probabilities must be (C, H, W) class probabilities or a (H, W) "
                         f"bool mask, got shape {arr.shape}")
    classes = tuple(classes)
    if arr.shape[0] != len(classes):
        raise ValueError(f"probabilities have {arr.shape[0]} channels but {len(classes)} class "
                         f"names {classes}; pass classes=segmenter.classes")
    if len(classes) < 2 or classes[0] != "background":
        raise ValueError(f"classes must be ('background', ...) with at least one foreground "
                         f"class, got {classes}")
    probs = np.ascontiguousarray(arr, dtype=np.float32)
    if "core" in classes and "particle" in classes:
        core = probs[classes.index("core")]
        extent = (1.0 - probs[0]) > threshold
        others = np.delete(probs, classes.index("core"), axis=0).max(axis=0)
        seeds = (core > seed_threshold) & (core > others)
        return seeds, core + probs[classes.index("particle")], probs, extent, False
    if "particle" in classes and "boundary" in classes:
        p = probs[classes.index("particle")]
        extent = (1.0 - probs[0]) > threshold
        seeds = (p > max(threshold, seed_threshold)) & (p > probs[classes.index("boundary")])
        return seeds, p, probs, extent, False
    if len(classes) == 2:
        return probs[1] > threshold, probs[1], probs, None, False
    fg = 1.0 - probs[0]
    return fg > threshold, fg, probs, None, True


def _split_touching(mask, labels, min_distance):
    """Watershed on the distance transform, one marker per local distance maximum."""
    import cv2
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    dist = cv2.distanceTransform(mask.view(np.uint8), cv2.DIST_L2, 5)
    peaks = peak_local_max(dist, min_distance=int(min_distance), labels=labels,
                           exclude_border=False)
    markers = np.zeros(labels.shape, np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    out = watershed(-dist, markers, mask=mask).astype(np.int32, copy=False)
    return out, len(peaks)


def _merge_weak_borders(labels, n, particle, merge_below, merge_share):
    """Merge neighbouring particles that are fragments of one particle.

    Two touching particles merge when the pixels of their common border average less than
    ``merge_below`` of 1 - ``particle`` (P(particle), (H, W): no predicted contact line
    between them) and that border is more than ``merge_share`` of the smaller one's outline
    (a fragment is wrapped by its neighbour; two particles in contact share a short neck).
    Returns (labels, n).
    """
    cap = 2 * int(np.count_nonzero(labels))  # each particle pixel starts at most two pairs
    a = np.empty(cap, np.int32)
    b = np.empty(cap, np.int32)
    v = np.empty(cap, np.float32)
    edges = np.zeros(n + 1, np.int64)
    m = _k.border_pairs(labels, particle, a, b, v, edges)
    if m == 0:
        return labels, n
    key = a[:m].astype(np.int64) * (n + 1) + b[:m]
    pairs, inverse = np.unique(key, return_inverse=True)
    length = np.bincount(inverse)
    evidence = 1.0 - np.bincount(inverse, weights=v[:m]) / length
    i, j = pairs // (n + 1), pairs % (n + 1)
    share = length / np.maximum(np.minimum(edges[i], edges[j]), 1)
    weak = (evidence < merge_below) & (share > merge_share)
    if not weak.any():
        return labels, n
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(int(weak.sum())), (i[weak], j[weak])), shape=(n + 1, n + 1))
    n_comp, comp = connected_components(graph, directed=False)
    # number the components in order of their lowest label: background (0, never joined) stays 0
    _, first = np.unique(comp, return_index=True)
    rank = np.empty(n_comp, np.int32)
    rank[comp[np.sort(first)]] = np.arange(n_comp, dtype=np.int32)
    return rank[comp][labels], n_comp - 1


def _add_unseen(labels, n, keep, p_background, image, level, z_min, min_area, labeller):
    """Add the particles the network saw only below its threshold and the frame shows.

    Candidates are the components of 1 - ``p_background`` > ``level`` that touch no kept
    particle and have ``min_area`` pixels (a found particle dropped as too small or too faint
    is judged again with all of its extent at this level); each one that stands out of its
    background by ``z_min`` standard errors
    (:func:`~temstream.tracking.edges.contrast_significance`, measured beside the kept
    particles, which bound its ring) becomes particle n + 1, n + 2, ... Returns (labels, n,
    keep) with ``keep`` extended to the new ids.
    """
    with np.errstate(invalid="ignore"):  # NaN probabilities are background
        seen = (1.0 - p_background) > level
    kept = keep[labels]
    seen &= ~kept
    cand, _, carea = label_mask(seen, labeller)
    m = carea.size - 1
    if m == 0:
        return labels, n, keep
    # a candidate that touches a kept particle is that particle's faint rim, not a new one
    rim = cv2.dilate(kept.view(np.uint8), None) > 0
    ok = carea >= max(min_area, 1)
    ok[np.unique(cand[rim & seen])] = False
    ok[0] = False
    if not ok.any():
        return labels, n, keep
    new = np.zeros(m + 1, np.int32)
    new[ok] = n + 1 + np.arange(int(ok.sum()), dtype=np.int32)
    trial = np.where(new[cand] > 0, new[cand], np.where(kept, labels, 0)).astype(np.int32)
    which = np.zeros(n + 1 + int(ok.sum()), bool)
    which[n + 1:] = True
    z = contrast_significance(image, trial, which=which)
    passed = np.zeros_like(which)
    passed[n + 1:] = z[n:] >= z_min
    if not passed.any():
        return labels, n, keep
    # renumber the candidates that passed n + 1, n + 2, ...: ids stay consecutive
    ids = np.zeros(which.size, np.int32)
    ids[passed] = n + 1 + np.arange(int(passed.sum()), dtype=np.int32)
    added = ids[new[cand]]
    labels = np.where(added > 0, added, labels).astype(np.int32, copy=False)
    keep = np.concatenate([keep, np.ones(int(passed.sum()), bool)])
    return labels, n + int(passed.sum()), keep


def empty_table():
    """A particle table with every key and no rows."""
    return {k: np.empty(0, _DTYPES.get(k, np.float64)) for k in TABLE_COLUMNS}


def _check_frame(image, labels):
    if np.shape(image) != labels.shape:
        raise ValueError(f"outline_image has shape {np.shape(image)} but the segmentation "
                         f"{labels.shape}; pass the frame it comes from")


def extract_instances(probabilities, *, classes=("background", "particle"), threshold=0.5,
                      min_area=8, split_touching=False, n_fold=4, intensity=None,
                      labeller="opencv", split_min_distance=3, seed_threshold=0.0,
                      min_seed_area=0, merge_below=0.0, merge_share=0.2, min_score=0.0,
                      outline_threshold=None, outline_image=None, faint_contrast_z=0.0,
                      faint_threshold=0.0):
    """Instance labels and a per-particle table from a segmentation.

    Parameters
    ----------
    probabilities : (C, H, W) float ndarray or (H, W) bool ndarray
        Softmax class probabilities (class 0 = background) or a foreground mask.
    classes : sequence of str
        Names of the C classes:

        - ``("background", "particle")``: foreground = P(particle) > threshold;
        - ``("background", "particle", "boundary")``: seeds = components of
          P(particle) > max(threshold, seed_threshold) and > P(boundary) (the
          boundary class keeps touching particles apart) with at least
          ``min_seed_area`` px; each seed then grows (4-connected, breadth first)
          over the pixels with 1 - P(background) > threshold, so the boundary ring
          is shared out; foreground components without a seed are kept whole;
        - ``("background", "particle", "boundary", "core")``: as above, with the
          seeds taken from the core class instead: P(core) > ``seed_threshold``
          and larger than every other class (one core per particle, also where
          particles overlap in projection);
        - ``("background", "layer_a", "layer_b", "both")`` (any other list with
          several foreground classes): foreground = 1 - P(background) > threshold,
          ``layer`` = the foreground class (1, 2, 3, ...) with the largest summed
          probability over the particle.
    threshold : float
        Probability threshold, from the model card.
    min_area : int
        Particles with fewer pixels are dropped (after splitting/growing).
    min_score : float
        Particles whose mean foreground probability 1 - P(background) is below
        this are dropped (faint detections in a mottled background; ignored for
        a mask input); 0 keeps all.
    split_touching : bool
        Split touching particles by a watershed on the distance transform, one
        marker per distance maximum at least ``split_min_distance`` px apart
        (scikit-image; ~10x slower than plain labelling).
    n_fold : int
        Rotational symmetry of the orientation: 4 cubes, 3 triangles, 2 rods,
        1 a plain direction.
    intensity : (H, W) ndarray, optional
        Weights for the centroid (e.g. the frame with bright particles) instead of
        the foreground probability. Without probabilities nor intensity the
        centroid is unweighted.
    labeller : {"opencv", "opencv-stats", "scipy", "skimage"}
        Connected-component implementation (same partition, different speed).
    split_min_distance : int
        Minimum distance between watershed markers, pixels.
    seed_threshold : float
        Boundary-class models: P(particle) a seed pixel needs (a high value keeps
        the weak necks between touching particles out of the seeds).
    min_seed_area : int
        Boundary-class models: smaller seeds are dropped (their pixels join a
        neighbour's particle or stay an unseeded component).
    merge_below, merge_share : float
        Boundary-class models: after growing, two touching particles merge when
        the mean of 1 - P(particle) over the pixels of their common border is
        below ``merge_below`` and that border is more than ``merge_share`` of
        the smaller one's outline (the seeds were fragments of one particle,
        not split by a predicted boundary); ``merge_below = 0`` never merges.
        Models with a core class never merge (a core is a whole particle).
    outline_threshold : float, optional
        Probability input: after the particles are found (and filtered by ``min_area`` and
        ``min_score``) at ``threshold``, their pixels with 1 - P(background) below this are
        cut from them, so that ``threshold`` decides which particles there are and this how
        far each reaches (the per-frame expected-Dice threshold of
        :mod:`temstream.models.decision`); a particle left without pixels is dropped.
        None (or not above ``threshold``) cuts nothing.
    outline_image : (H, W) ndarray, optional
        The frame itself: after the particles are found (and filtered), each one's outline is
        redrawn where the smoothed frame is half-way between the particle's local background
        and its core (:func:`temstream.tracking.edges.half_contrast_outlines`, the
        convention of hand-drawn outlines); no particle is added or removed.
    faint_contrast_z : float
        With ``outline_image``: a particle below ``min_score`` is kept when it stands out of
        its local background in the frame by at least this many standard errors
        (:func:`temstream.tracking.edges.contrast_significance`): a faint particle whose
        probabilities are speckled, not a speck of the support's mottle. 0 keeps none.
    faint_threshold : float
        With ``outline_image`` and ``faint_contrast_z``: particles the network saw only below
        ``threshold`` are looked for too. Each component of 1 - P(background) above this level
        that touches no kept particle and has ``min_area`` pixels is kept, as a new particle,
        when it passes the same contrast test (a found particle dropped as too small or too
        faint is so judged again with all of its extent at this level). 0 (or not below
        ``threshold``) looks for none.

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 = background, particles 1..N, row i of the table is label i + 1.
    table : dict of (N,) ndarrays
        Every key of :data:`TABLE_COLUMNS`, empty arrays when N = 0:

        - ``label`` (int32) id in ``labels``;
        - ``x``, ``y`` (float64) sub-pixel centroid, pixels, x = column,
          y = row, weighted by the foreground probability (or ``intensity``);
        - ``area`` (float64) pixels;
        - ``angle`` (float64) n-fold orientation, radians in (-pi/n, pi/n],
          measured from +x towards +y (clockwise on screen, rows point down),
          see the module notes; it points to a corner of a square or triangle
          (an axis-aligned square has pi/4) and along the long axis of a rod;
        - ``score`` (float32) mean over the particle of the largest class
          probability (1 for a mask);
        - ``layer`` (int16) 0, or 1/2/3 (A, B, both) for multi-layer models;
        - ``equivalent_diameter`` (float64) sqrt(4 area / pi), pixels;
        - ``perimeter`` (float64) pixels, the estimator of
          ``skimage.measure.perimeter`` (4-connectivity);
        - ``eccentricity`` (float64) of the ellipse with the same second moments;
        - ``orientation_strength`` (float64) |sum (z - zbar)^n| / sum |z - zbar|^n
          in [0, 1]; low values mean an unreliable angle (round or tiny particles).

    Raises
    ------
    ValueError
        On a shape/class mismatch or n_fold < 1. NaN probabilities are not an
        error: a NaN pixel fails every threshold test and counts as background.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((2, 32, 32), np.float32); p[0] = 1
    >>> p[0, 4:12, 6:14] = 0.1; p[1, 4:12, 6:14] = 0.9
    >>> labels, t = extract_instances(p)
    >>> int(labels.max()), float(t["x"][0]), float(t["y"][0]), float(t["area"][0])
    (1, 9.5, 7.5, 64.0)
    """
    n_fold = int(n_fold)
    if n_fold < 1:
        raise ValueError(f"n_fold must be >= 1 (4 cubes, 3 triangles, 2 rods), got {n_fold}")
    mask, weights, probs, extent, layered = _conventions(probabilities, classes, threshold,
                                                         seed_threshold)
    labels, bbox, area = label_mask(mask, labeller)
    n = bbox.shape[0] - 1
    if extent is not None and n > 0 and min_seed_area > 1:
        small = area < int(min_seed_area)
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
            labels, bbox, area = label_mask(labels > 0, labeller)
            n = bbox.shape[0] - 1
    if split_touching and n > 0:
        labels, n = _split_touching(mask, labels, split_min_distance)
        bbox, area = _boxes(labels, n)
    if extent is not None:
        if n > 0:
            _k.grow_seeds(labels, np.ascontiguousarray(extent), bbox,
                          np.empty(labels.size, np.int64))
        rest = extent & (labels == 0)
        if rest.any():  # foreground components without a seed: whole particles
            extra, _, _ = label_mask(rest, labeller)
            labels = np.where(extra > 0, extra + n, labels).astype(np.int32, copy=False)
            n = int(labels.max())
        # core seeds are whole particles, not fragments: nothing to merge
        if merge_below > 0 and n > 1 and "core" not in tuple(classes):
            labels, n = _merge_weak_borders(labels, n, weights, float(merge_below),
                                            float(merge_share))
        bbox, area = _boxes(labels, n)
    if intensity is not None:
        intensity = np.asarray(intensity)
        if intensity.shape != labels.shape:
            raise ValueError(f"intensity has shape {intensity.shape} but the segmentation "
                             f"{labels.shape}; pass the frame the probabilities come from")
        weights = intensity
    keep = area >= max(int(min_area), 1)
    keep[0] = False
    if min_score > 0 and probs is not None and n > 0:
        fg_sum = np.zeros(n + 1)
        _k.foreground_sums(labels, probs[0], fg_sum)
        faint = keep & (fg_sum < float(min_score) * area)
        if outline_image is not None and faint_contrast_z > 0 and faint.any():
            _check_frame(outline_image, labels)
            z = contrast_significance(outline_image, np.where(keep[labels], labels, 0),
                                      which=faint)
            faint[1:z.size + 1] &= z < float(faint_contrast_z)
        keep &= ~faint
    if (outline_image is not None and probs is not None and faint_contrast_z > 0
            and 0 < float(faint_threshold) < float(threshold)):
        _check_frame(outline_image, labels)
        labels, n, keep = _add_unseen(labels, n, keep, probs[0], outline_image,
                                      float(faint_threshold), float(faint_contrast_z),
                                      int(min_area), labeller)
        bbox, area = _boxes(labels, n)
    if (outline_threshold is not None and probs is not None and n > 0
            and float(outline_threshold) > float(threshold)):
        if _k.trim_below(labels, probs[0], np.float32(outline_threshold)):
            bbox, area = _boxes(labels, n)
            keep &= area > 0
    if outline_image is not None and n > 0:
        _check_frame(outline_image, labels)
        labels = half_contrast_outlines(outline_image, np.where(keep[labels], labels, 0))
        bbox, area = _boxes(labels, n)
        keep &= area > 0
    new_id = np.zeros(n + 1, np.int32)
    m = int(keep.sum())
    new_id[keep] = np.arange(1, m + 1, dtype=np.int32)
    table = {k: np.zeros(m, _DTYPES.get(k, np.float64)) for k in TABLE_COLUMNS}
    table["label"][:] = np.arange(1, m + 1, dtype=np.int32)
    table["area"][:] = area[keep]
    weights = (np.zeros((0, 0), np.float32) if weights is None
               else np.ascontiguousarray(weights, dtype=np.float32))
    kprobs = np.zeros((0, 1, 1), np.float32) if probs is None else probs
    l1 = np.empty(m)
    l2 = np.empty(m)
    class_sums = np.zeros((m, kprobs.shape[0]))
    _k.region_properties(labels, bbox, area, new_id, weights, kprobs, n_fold,
                         _k.PERIMETER_WEIGHTS, table["x"], table["y"], table["angle"],
                         table["orientation_strength"], table["score"], table["perimeter"],
                         l1, l2, class_sums)
    table["equivalent_diameter"][:] = np.sqrt(4.0 * table["area"] / np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["eccentricity"][:] = np.where(l1 > 0, np.sqrt(np.clip(1.0 - l2 / l1, 0, 1)), 0.0)
    if layered and m > 0:
        table["layer"][:] = np.argmax(class_sums[:, 1:], axis=1) + 1
    return labels, table
