"""Particle instances and their properties from a segmentation.

:func:`extract_instances` turns the class probabilities of a segmenter (or a
boolean mask) into an instance label image and a per-particle table:
sub-pixel centroid, area, equivalent diameter, perimeter, eccentricity,
n-fold orientation, mean confidence and layer.

Labelling uses OpenCV's connected components (8-connectivity, the fastest
exact candidate measured in ``benchmarks/bench_instances.py``); the
properties come from one numba kernel that visits each particle's bounding
box only, so the cost grows with the foreground, not with the frame.
"""

import numpy as np

from temstream.tracking import _kernels_instances as _k

__all__ = ["extract_instances", "label_components", "LABELLERS", "TABLE_COLUMNS"]

#: Keys of the table returned by :func:`extract_instances`, in order.
TABLE_COLUMNS = ("label", "x", "y", "area", "angle", "score", "layer",
                 "equivalent_diameter", "perimeter", "eccentricity",
                 "orientation_strength")

#: Connected-component labellers (8-connectivity), all giving the same
#: partition; ``"opencv"`` is the default.
LABELLERS = ("opencv", "scipy", "skimage")


def label_components(mask, *, labeller="opencv"):
    """Label the 8-connected components of a boolean mask.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    labeller : {"opencv", "scipy", "skimage"}
        Implementation; all return the same partition (label values may be
        numbered differently).

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 = background, 1..n.
    n : int
        Number of components.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if labeller == "opencv":
        import cv2

        n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8,
                                            ltype=cv2.CV_32S)
        return labels, int(n) - 1
    if labeller == "scipy":
        from scipy import ndimage

        labels = np.empty(mask.shape, dtype=np.int32)
        n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool), output=labels)
        return labels, int(n)
    if labeller == "skimage":
        from skimage.measure import label

        labels, n = label(mask, connectivity=2, return_num=True)
        return labels.astype(np.int32, copy=False), int(n)
    raise ValueError(f"unknown labeller {labeller!r}; use one of {LABELLERS}")


def _class_index(classes, name):
    try:
        return classes.index(name)
    except ValueError:
        return -1


def _foreground(probabilities, classes, threshold):
    """Foreground mask, centroid weights and the mode of the class convention.

    Returns (fg, weights, probs, mode, grow_mask); ``mode`` is one of
    "mask", "particle", "boundary", "layers".
    """
    arr = np.asarray(probabilities)
    if arr.ndim == 2:
        if arr.dtype != bool:
            raise ValueError(
                "a 2-D input must be a boolean mask (got dtype "
                f"{arr.dtype}); pass class probabilities as a (C, H, W) array")
        return arr, None, None, "mask", None
    if arr.ndim != 3:
        raise ValueError(f"probabilities must be (C, H, W) or a (H, W) bool mask, "
                         f"got shape {arr.shape}")
    classes = tuple(classes)
    if arr.shape[0] != len(classes):
        raise ValueError(f"probabilities have {arr.shape[0]} channels but classes "
                         f"names {len(classes)}: {classes}; pass the segmenter's classes")
    if len(classes) < 2 or classes[0] != "background":
        raise ValueError(f"classes must start with 'background' and name at least one "
                         f"foreground class, got {classes}")
    probs = np.ascontiguousarray(arr, dtype=np.float32)
    ip = _class_index(classes, "particle")
    ib = _class_index(classes, "boundary")
    if ip > 0 and ib > 0:
        weights = probs[ip]
        fg = weights > threshold
        grow = (probs[ip] + probs[ib]) > threshold
        return fg, weights, probs, "boundary", grow
    if len(classes) == 2:
        weights = probs[1]
        return weights > threshold, weights, probs, "particle", None
    # several foreground classes (e.g. layers): foreground = not background
    weights = 1.0 - probs[0]
    return weights > threshold, weights, probs, "layers", None


def _split_touching(fg, labels, min_distance):
    """Watershed on the distance transform, one marker per distance peak."""
    import cv2
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    dist = cv2.distanceTransform(fg.view(np.uint8), cv2.DIST_L2, 5)
    peaks = peak_local_max(dist, min_distance=int(min_distance), labels=labels,
                           exclude_border=False)
    markers = np.zeros(labels.shape, dtype=np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    out = watershed(-dist, markers, mask=fg)
    return out.astype(np.int32, copy=False), len(peaks)


def extract_instances(probabilities, *, classes=("background", "particle"),
                      threshold=0.5, min_area=8, split_touching=False, n_fold=4,
                      intensity=None, labeller="opencv", split_min_distance=4,
                      boundary_grow=3):
    """Instance labels and a per-particle table from a segmentation.

    Parameters
    ----------
    probabilities : (C, H, W) float ndarray or (H, W) bool ndarray
        Class probabilities (softmax output, class 0 = background) or a
        boolean foreground mask.
    classes : sequence of str
        Names of the C classes. Supported conventions:

        - ``("background", "particle")``: foreground = P(particle) > threshold;
        - ``("background", "particle", "boundary")``: cores =
          P(particle) > threshold are labelled (the boundary class keeps
          touching particles apart), then each core grows by up to
          ``boundary_grow`` px into pixels where P(particle) + P(boundary)
          > threshold;
        - any other list with several foreground classes, e.g.
          ``("background", "layer_a", "layer_b", "both")``: foreground =
          1 - P(background) > threshold and ``layer`` = the foreground class
          (1, 2, 3, ...) with the largest summed probability over the particle.
    threshold : float
        Probability threshold (from the model card).
    min_area : int
        Particles with fewer pixels are dropped.
    split_touching : bool
        Split touching particles by a watershed on the distance transform
        (one marker per distance peak at least ``split_min_distance`` px
        apart). Slower; off by default.
    n_fold : int
        Rotational symmetry for ``angle``: 4 cubes, 3 triangles, 2 rods,
        1 for a plain direction.
    intensity : (H, W) ndarray, optional
        If given, centroids are intensity-weighted (pass an image where the
        particles are bright) instead of probability-weighted.
    labeller : {"opencv", "scipy", "skimage"}
        Connected-component implementation (same partition).
    split_min_distance : int
        Minimum distance between watershed markers, pixels.
    boundary_grow : int
        Growth of cores into boundary pixels, pixels (3-class models only).

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 = background, particles 1..N.
    table : dict of (N,) ndarrays
        Row ``i`` describes label ``i + 1``. Keys:

        - ``label`` (int32): the label id;
        - ``x``, ``y`` (float64): sub-pixel centroid, pixels, x = column,
          y = row; weighted by the foreground probability (or ``intensity``;
          unweighted for a mask);
        - ``area`` (float64): pixels;
        - ``angle`` (float64): n-fold orientation arg(sum (z - zbar)**n) / n,
          radians in (-pi/n, pi/n], defined modulo 2 pi / n, with
          z = dx - i dy: counter-clockwise from the +x axis as seen on screen
          (rows pointing down);
        - ``score`` (float32): mean over the particle of the largest class
          probability (1 for a mask);
        - ``layer`` (int8): 0, or the layer class for multi-layer models;
        - ``equivalent_diameter`` (float64): sqrt(4 area / pi), pixels;
        - ``perimeter`` (float64): pixels, same estimator as
          ``skimage.measure.perimeter`` (4-connectivity);
        - ``eccentricity`` (float64): of the ellipse with the same second
          moments, in [0, 1);
        - ``orientation_strength`` (float64): |sum (z - zbar)**n| /
          sum |z - zbar|**n in [0, 1]; small values mean the angle is
          unreliable (round or tiny particles).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((2, 32, 32), np.float32); p[0] = 1
    >>> p[1, 4:12, 6:14] = 0.9; p[0, 4:12, 6:14] = 0.1
    >>> labels, t = extract_instances(p)
    >>> int(labels.max()), float(t["x"][0]), float(t["y"][0]), float(t["area"][0])
    (1, 9.5, 7.5, 64.0)
    """
    if int(n_fold) < 1:
        raise ValueError(f"n_fold must be >= 1 (4 cubes, 3 triangles, 2 rods), got {n_fold}")
    n_fold = int(n_fold)
    fg, weights, probs, mode, grow = _foreground(probabilities, classes, threshold)
    labels, n = label_components(fg, labeller=labeller)
    if split_touching and n > 0:
        labels, n = _split_touching(fg, labels, split_min_distance)
    if mode == "boundary" and boundary_grow > 0 and n > 0:
        queue = np.empty(labels.size, dtype=np.int64)
        _k.grow_labels(labels, np.ascontiguousarray(grow), int(boundary_grow), queue)
    bbox = np.empty((n + 1, 4), dtype=np.int64)
    area = np.empty(n + 1, dtype=np.int64)
    _k.bboxes_from_labels(labels, n, bbox, area)
    keep = area >= max(int(min_area), 1)
    keep[0] = False
    if not keep[1:].all():
        new_id = np.empty(n + 1, dtype=np.int32)
        n = _k.relabel_in_bboxes(labels, bbox, keep, new_id)
        bbox = np.concatenate([bbox[:1], bbox[keep]])
    if intensity is not None:
        intensity = np.asarray(intensity)
        if intensity.shape != labels.shape:
            raise ValueError(f"intensity has shape {intensity.shape}, the segmentation "
                             f"{labels.shape}; pass the frame the probabilities come from")
        weights = intensity
    weights = (np.zeros((0, 0), np.float32) if weights is None
               else np.ascontiguousarray(weights, dtype=np.float32))
    kprobs = (np.zeros((0,) + labels.shape, np.float32) if probs is None else probs)
    nc = kprobs.shape[0]
    table = {
        "label": np.arange(1, n + 1, dtype=np.int32),
        "x": np.empty(n), "y": np.empty(n), "area": np.empty(n),
        "angle": np.empty(n), "score": np.empty(n, np.float32),
        "layer": np.zeros(n, np.int8), "equivalent_diameter": None,
        "perimeter": np.empty(n), "eccentricity": np.empty(n),
        "orientation_strength": np.empty(n),
    }
    class_sums = np.zeros((n, nc), dtype=np.float64)
    _k.region_props(labels, bbox, weights, kprobs, n_fold, _k._PERIM_W,
                    table["x"], table["y"], table["area"], table["angle"],
                    table["orientation_strength"], table["score"], table["perimeter"],
                    table["eccentricity"], class_sums)
    table["equivalent_diameter"] = np.sqrt(4.0 * table["area"] / np.pi)
    if mode == "layers" and n > 0:
        table["layer"] = (np.argmax(class_sums[:, 1:], axis=1) + 1).astype(np.int8)
    return labels, table
