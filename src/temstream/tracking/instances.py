"""Particle instances and their properties from a segmentation.

:func:`extract_instances` turns a segmenter's class probabilities (or a boolean
mask) into an instance label image and a per-particle table, in named phases
that can each be called alone:

1. :func:`find_particles` -- seeds, their growth over the foreground, fragments merged;
2. :func:`drop_small_and_faint` -- which particles to keep;
3. :func:`add_unseen` -- the search below the threshold (half-contrast outlines);
4. :func:`draw_outlines` -- how far each particle reaches (``instances.outline``);
5. :func:`measure` -- the per-particle table.

Every setting comes from one :class:`~temstream.config.schema.InstancesConfig`.
Labelling is OpenCV's ``connectedComponents`` (8-connectivity) plus one numba
pass for the bounding boxes (the fastest exact candidate in
``benchmarks/bench_instances.py``); the properties come from one numba kernel
that makes a few branchless passes over each particle's bounding box.

Orientation convention
----------------------
``angle`` is ``arg(sum_p (z_p - zbar)**n) / n`` with ``z = x + i*y`` in image
coordinates: x = column to the right, y = row **downwards**. An angle of +0.1
therefore turns the particle *clockwise as seen on screen*. Values lie in
(-pi/n, pi/n] and are defined modulo 2*pi/n.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from temstream.config.schema import InstancesConfig
from temstream.tracking import _instances_kernels as _k
from temstream.tracking.edge_model import fitted_outlines
from temstream.tracking.edges import contrast_significance, half_contrast_outlines
from temstream.tracking.evidence import significance
from temstream.tracking.outlines import expected_dice_threshold

__all__ = ["extract_instances", "empty_table", "label_mask", "TABLE_COLUMNS", "Segmentation",
           "Particles", "find_particles", "drop_small_and_faint", "add_unseen",
           "draw_outlines", "measure"]

#: Keys of the particle table, in order.
TABLE_COLUMNS = ("label", "x", "y", "area", "area_err", "angle", "score", "layer",
                 "equivalent_diameter", "perimeter", "eccentricity", "orientation_strength")

_DTYPES = {"label": np.int32, "score": np.float32, "layer": np.int16}


def label_mask(mask):
    """Label 8-connected components and measure their boxes.

    Parameters
    ----------
    mask : (H, W) bool ndarray

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
    n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    return labels, *_boxes(labels, n - 1)


def _boxes(labels, n):
    bbox = np.empty((n + 1, 4), np.int64)
    area = np.empty(n + 1, np.int64)
    _k.bbox_area(labels, int(n), bbox, area)
    return bbox, area


def empty_table():
    """A particle table with every key and no rows."""
    return {k: np.empty(0, _DTYPES.get(k, np.float64)) for k in TABLE_COLUMNS}


@dataclass
class Segmentation:
    """What the instance stage reads of a segmentation, by class convention.

    Attributes
    ----------
    seeds : (H, W) bool ndarray
        Pixels whose components start the particles.
    extent : (H, W) bool ndarray or None
        Boundary-class models: the foreground the seeds grow over.
    weights : (H, W) float ndarray or None
        Centroid weights (the particle probability), None for a mask.
    probs : (C, H, W) float32 ndarray or None
        The class probabilities, None for a mask.
    layered : bool
        Several foreground classes (layers): each particle's ``layer`` is its likeliest one.
    threshold : float
        The detection threshold on ``1 - P(background)``.
    """

    seeds: np.ndarray
    extent: np.ndarray | None
    weights: np.ndarray | None
    probs: np.ndarray | None
    layered: bool
    threshold: float

    @classmethod
    def of(cls, probabilities, classes, threshold, seed_threshold) -> "Segmentation":
        """Read ``probabilities`` ((C, H, W) over ``classes``, or an (H, W) bool mask)."""
        arr = np.asarray(probabilities)
        if arr.ndim == 2:
            if arr.dtype != bool:
                raise ValueError(f"a 2-D input must be a boolean mask, got dtype {arr.dtype}; "
                                 "pass class probabilities as a (C, H, W) array")
            return cls(arr, None, None, None, False, float(threshold))
        if arr.ndim != 3:
            raise ValueError(f"probabilities must be (C, H, W) class probabilities or a (H, W) "
                             f"bool mask, got shape {arr.shape}")
        classes = tuple(classes)
        if arr.shape[0] != len(classes):
            raise ValueError(f"probabilities have {arr.shape[0]} channels but {len(classes)} "
                             f"class names {classes}; pass classes=segmenter.classes")
        if len(classes) < 2 or classes[0] != "background":
            raise ValueError(f"classes must be ('background', ...) with at least one "
                             f"foreground class, got {classes}")
        probs = np.ascontiguousarray(arr, dtype=np.float32)
        if "particle" in classes and "boundary" in classes:
            p = probs[classes.index("particle")]
            extent = (1.0 - probs[0]) > threshold
            seeds = (p > max(threshold, seed_threshold)) & (p > probs[classes.index("boundary")])
            return cls(seeds, extent, p, probs, False, float(threshold))
        if len(classes) == 2:
            return cls(probs[1] > threshold, None, probs[1], probs, False, float(threshold))
        fg = 1.0 - probs[0]
        return cls(fg > threshold, None, fg, probs, True, float(threshold))


@dataclass
class Particles:
    """Particles being built: a label image, their boxes and areas, and which ones are kept.

    Attributes
    ----------
    labels : (H, W) int32 ndarray
        0 = background, particles 1..n.
    bbox : (n + 1, 4) int64 ndarray
    area : (n + 1,) int64 ndarray
    keep : (n + 1,) bool ndarray
        Entry 0 (the background) is always False.
    edge_err : (n + 1,) float ndarray or None
        Uncertainty of each outline (px, normal to it), where an edge model measured it.
    """

    labels: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    keep: np.ndarray
    edge_err: np.ndarray | None = None

    @classmethod
    def of(cls, labels, n=None) -> "Particles":
        """Measure ``labels`` (particles 1..n, ``n`` defaults to the largest label); all kept."""
        n = int(labels.max(initial=0)) if n is None else int(n)
        bbox, area = _boxes(labels, n)
        keep = np.ones(n + 1, bool)
        keep[0] = False
        return cls(labels, bbox, area, keep)

    @property
    def n(self) -> int:
        return self.bbox.shape[0] - 1

    def remeasure(self) -> None:
        """Boxes and areas again after ``labels`` changed in place (ids unchanged)."""
        self.bbox, self.area = _boxes(self.labels, self.n)

    def kept_labels(self) -> np.ndarray:
        """``labels`` with the dropped particles set to background."""
        return np.where(self.keep[self.labels], self.labels, 0)


def drop_small_seeds(labels: np.ndarray, bbox: np.ndarray, area: np.ndarray,
                     min_area: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds of fewer than ``min_area`` px removed and the rest labelled again.

    Parameters
    ----------
    labels : (H, W) int32
        Seed labels, 0 = none (changed in place where seeds are removed).
    bbox, area : ndarray
        :func:`label_mask`'s boxes and areas of ``labels`` (index 0 = background).
    min_area : int
        px.

    Returns
    -------
    labels, bbox, area
        As :func:`label_mask` returns them (the inputs, unchanged, when no seed is small).
    """
    small = area < min_area
    small[0] = False
    if not small.any():
        return labels, bbox, area
    labels[small[labels]] = 0
    return label_mask(labels > 0)


def find_particles(seg: Segmentation, settings: InstancesConfig) -> Particles:
    """Seeds, grown over the foreground, and fragments merged (boundary-class models).

    The seeds' 8-connected components are the particles. Where the model has a boundary
    class, seeds smaller than ``min_seed_area`` are dropped, each seed grows (4-connected,
    breadth first) over ``seg.extent`` so the boundary ring is shared out, foreground
    components without a seed are kept whole, and two touching particles whose common border
    shows no boundary merge (:func:`_merge_weak_borders`).
    """
    labels, bbox, area = label_mask(seg.seeds)
    n = bbox.shape[0] - 1
    if seg.extent is None:
        return Particles.of(labels, n)
    if n > 0 and settings.min_seed_area > 1:
        labels, bbox, area = drop_small_seeds(labels, bbox, area, settings.min_seed_area)
        n = bbox.shape[0] - 1
    if n > 0:
        _k.grow_seeds(labels, np.ascontiguousarray(seg.extent), bbox,
                      np.empty(labels.size, np.int64))
    rest = seg.extent & (labels == 0)
    if rest.any():  # foreground components without a seed: whole particles
        extra, _, _ = label_mask(rest)
        labels = np.where(extra > 0, extra + n, labels).astype(np.int32, copy=False)
        n = int(labels.max())
    if settings.merge_below > 0 and n > 1:
        labels, n = _merge_weak_borders(labels, n, seg.weights, settings.merge_below,
                                        settings.merge_share)
    return Particles.of(labels, n)


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


def _faint_rescue(settings: InstancesConfig, frame) -> bool:
    """Whether the frame may keep particles the network doubts (half-contrast outlines)."""
    return frame is not None and settings.outline == "half-contrast" \
        and settings.faint_contrast_z > 0


def drop_small_and_faint(parts: Particles, seg: Segmentation, settings: InstancesConfig,
                         frame=None) -> None:
    """Drop (in ``parts.keep``) particles below ``min_area`` pixels or ``min_score`` mean
    foreground probability, and (with the frame) those the frame does not show.

    With the frame, every particle must stand out of its local background by
    ``min_contrast_z`` standard errors of the frame's noise at its size
    (:func:`~temstream.tracking.evidence.significance`), so that no particle is found where the
    frame shows only noise, whatever the segmenter saw. With
    half-contrast outlines, a particle below ``min_score`` is kept when it reaches
    ``faint_contrast_z``: a faint particle whose probabilities are speckled, not a speck of
    the support's mottle.
    """
    parts.keep &= parts.area >= max(settings.min_area, 1)
    if parts.n == 0:
        return
    faint = np.zeros_like(parts.keep)
    if settings.min_score > 0 and seg.probs is not None:
        fg_sum = np.zeros(parts.n + 1)
        _k.foreground_sums(parts.labels, seg.probs[0], fg_sum)
        faint = parts.keep & (fg_sum < settings.min_score * parts.area)
    if _faint_rescue(settings, frame) and faint.any():
        z = contrast_significance(frame, parts.kept_labels(), which=faint)
        faint[1:z.size + 1] &= z < settings.faint_contrast_z
    if frame is not None and settings.min_contrast_z > 0:
        z = significance(frame, parts.kept_labels(), which=parts.keep)
        parts.keep[1:z.size + 1] &= z >= settings.min_contrast_z
    parts.keep &= ~faint


def add_unseen(parts: Particles, seg: Segmentation, settings: InstancesConfig,
               frame=None) -> Particles:
    """Add the particles the network saw only below its threshold and the frame shows.

    Only with half-contrast outlines, a frame and ``0 < faint_threshold < threshold``.
    Candidates are the components of 1 - P(background) > ``faint_threshold`` that touch no
    kept particle and have ``min_area`` pixels (a found particle dropped as too small or too
    faint is judged again with all of its extent at this level); each one that stands out of
    its background by ``faint_contrast_z`` standard errors (measured beside the kept
    particles, which bound its ring) becomes particle n + 1, n + 2, ...
    """
    level = settings.faint_threshold
    if not (_faint_rescue(settings, frame) and seg.probs is not None
            and 0 < level < seg.threshold):
        return parts
    with np.errstate(invalid="ignore"):  # NaN probabilities are background
        seen = (1.0 - seg.probs[0]) > level
    kept = parts.keep[parts.labels]
    seen &= ~kept
    cand, _, carea = label_mask(seen)
    ok = carea >= max(settings.min_area, 1)
    # a candidate that touches a kept particle is that particle's faint rim, not a new one
    rim = cv2.dilate(kept.view(np.uint8), None) > 0
    ok[np.unique(cand[rim & seen])] = False
    ok[0] = False
    if not ok.any():
        return parts
    n = parts.n
    new = np.zeros(carea.size, np.int32)
    new[ok] = n + 1 + np.arange(int(ok.sum()), dtype=np.int32)
    trial = np.where(new[cand] > 0, new[cand], np.where(kept, parts.labels, 0)).astype(np.int32)
    which = np.zeros(n + 1 + int(ok.sum()), bool)
    which[n + 1:] = True
    z = contrast_significance(frame, trial, which=which)
    passed = np.zeros_like(which)
    passed[n + 1:] = z[n:] >= settings.faint_contrast_z
    if not passed.any():
        return parts
    # renumber the candidates that passed n + 1, n + 2, ...: ids stay consecutive
    ids = np.zeros(which.size, np.int32)
    ids[passed] = n + 1 + np.arange(int(passed.sum()), dtype=np.int32)
    added = ids[new[cand]]
    labels = np.where(added > 0, added, parts.labels).astype(np.int32, copy=False)
    grown = Particles.of(labels, n + int(passed.sum()))
    grown.keep[:n + 1] = parts.keep
    return grown


def draw_outlines(parts: Particles, seg: Segmentation, settings: InstancesConfig,
                  frame=None) -> None:
    """Decide how far each found particle reaches (``settings.outline``), in place.

    - ``"expected-dice"``: the pixels below the frame's expected-Dice threshold
      (:func:`~temstream.tracking.outlines.expected_dice_threshold`, never below
      ``seg.threshold``) are cut from the particles;
    - ``"threshold"``: nothing changes;
    - ``"half-contrast"`` (with a frame): each kept particle is redrawn where the smoothed frame
      is half-way between its local background and its core
      (:func:`~temstream.tracking.edges.half_contrast_outlines`).

    A particle left without pixels is dropped; none is added.
    """
    if parts.n == 0:
        return
    if settings.outline == "expected-dice" and seg.probs is not None:
        level = expected_dice_threshold(1.0 - seg.probs[0], floor=seg.threshold)
        if level > seg.threshold and _k.trim_below(parts.labels, seg.probs[0],
                                                   np.float32(level)):
            parts.remeasure()
            parts.keep &= parts.area > 0
    elif settings.outline == "half-contrast" and frame is not None:
        parts.labels = half_contrast_outlines(frame, parts.kept_labels())
        parts.remeasure()
        parts.keep &= parts.area > 0
    elif settings.outline == "edge-model" and frame is not None:
        parts.labels, err = fitted_outlines(frame, parts.kept_labels())
        parts.edge_err = np.full(parts.n + 1, np.nan)
        parts.edge_err[1:err.size + 1] = err
        parts.remeasure()
        parts.keep &= parts.area > 0


def measure(parts: Particles, seg: Segmentation, n_fold: int, intensity=None):
    """The kept particles, numbered 1..m, and their table (see :func:`extract_instances`)."""
    keep = parts.keep
    new_id = np.zeros(parts.n + 1, np.int32)
    m = int(keep.sum())
    new_id[keep] = np.arange(1, m + 1, dtype=np.int32)
    table = {k: np.zeros(m, _DTYPES.get(k, np.float64)) for k in TABLE_COLUMNS}
    table["label"][:] = np.arange(1, m + 1, dtype=np.int32)
    table["area"][:] = parts.area[keep]
    weights = seg.weights if intensity is None else intensity
    weights = (np.zeros((0, 0), np.float32) if weights is None
               else np.ascontiguousarray(weights, dtype=np.float32))
    kprobs = np.zeros((0, 1, 1), np.float32) if seg.probs is None else seg.probs
    l1, l2 = np.empty(m), np.empty(m)
    class_sums = np.zeros((m, kprobs.shape[0]))
    labels = parts.labels
    _k.region_properties(labels, parts.bbox, parts.area, new_id, weights, kprobs, n_fold,
                         _k.PERIMETER_WEIGHTS, table["x"], table["y"], table["angle"],
                         table["orientation_strength"], table["score"], table["perimeter"],
                         l1, l2, class_sums)
    table["equivalent_diameter"][:] = np.sqrt(4.0 * table["area"] / np.pi)
    # an outline uncertain by e px along its length is uncertain by perimeter x e in area
    table["area_err"][:] = (np.nan if parts.edge_err is None
                            else table["perimeter"] * parts.edge_err[keep])
    with np.errstate(divide="ignore", invalid="ignore"):
        table["eccentricity"][:] = np.where(l1 > 0, np.sqrt(np.clip(1.0 - l2 / l1, 0, 1)), 0.0)
    if seg.layered and m > 0:
        table["layer"][:] = np.argmax(class_sums[:, 1:], axis=1) + 1
    return labels, table


def _check_shapes(labels_shape, frame, intensity) -> None:
    for name, image in (("frame", frame), ("intensity", intensity)):
        if image is not None and np.shape(image) != labels_shape:
            raise ValueError(f"{name} has shape {np.shape(image)} but the segmentation "
                             f"{labels_shape}; pass the frame the probabilities come from")


def extract_instances(probabilities, settings: InstancesConfig | None = None, *,
                      classes=("background", "particle"), threshold=0.5, frame=None,
                      intensity=None):
    """Instance labels and a per-particle table from a segmentation.

    Parameters
    ----------
    probabilities : (C, H, W) float ndarray or (H, W) bool ndarray
        Softmax class probabilities (class 0 = background) or a foreground mask.
    settings : InstancesConfig, optional
        The instance stage's settings (``[instances]``; its defaults when None).
    classes : sequence of str
        Names of the C classes:

        - ``("background", "particle")``: foreground = P(particle) > threshold;
        - ``("background", "particle", "boundary")``: seeds = components of
          P(particle) > max(threshold, seed_threshold) and > P(boundary) (the
          boundary class keeps touching particles apart), grown over
          1 - P(background) > threshold (:func:`find_particles`);
        - any other list with several foreground classes (``("background",
          "layer_a", "layer_b", "both")``): foreground = 1 - P(background) >
          threshold, ``layer`` = the foreground class (1, 2, 3, ...) with the
          largest summed probability over the particle.
    threshold : float
        Detection threshold on 1 - P(background), from the model card.
    frame : (H, W) ndarray, optional
        The raw frame: half-contrast outlines are redrawn from it, and its faint-particle
        rules test it (other outline rules do not read it).
    intensity : (H, W) ndarray, optional
        Centroid weights (e.g. the frame with bright particles) instead of the particle
        probability; without probabilities nor intensity the centroid is unweighted.

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 = background, particles 1..N, row i of the table is label i + 1.
    table : dict of (N,) ndarrays
        Every key of :data:`TABLE_COLUMNS`, empty arrays when N = 0:

        - ``label`` (int32) id in ``labels``;
        - ``x``, ``y`` (float64) sub-pixel centroid, pixels, x = column,
          y = row, weighted by the particle probability (or ``intensity``);
        - ``area`` (float64) pixels;
        - ``area_err`` (float64) its uncertainty, pixels: the perimeter times the outline's
          uncertainty where the edge model drew it (``outline = "edge-model"``), else NaN;
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
        On a shape or class mismatch. NaN probabilities are not an error: a NaN pixel
        fails every threshold test and counts as background.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((2, 32, 32), np.float32); p[0] = 1
    >>> p[0, 4:12, 6:14] = 0.1; p[1, 4:12, 6:14] = 0.9
    >>> labels, t = extract_instances(p)
    >>> int(labels.max()), float(t["x"][0]), float(t["y"][0]), float(t["area"][0])
    (1, 9.5, 7.5, 64.0)
    """
    settings = InstancesConfig() if settings is None else settings
    seg = Segmentation.of(probabilities, classes, threshold, settings.seed_threshold)
    _check_shapes(seg.seeds.shape, frame, intensity)
    parts = find_particles(seg, settings)
    drop_small_and_faint(parts, seg, settings, frame)
    parts = add_unseen(parts, seg, settings, frame)
    draw_outlines(parts, seg, settings, frame)
    return measure(parts, seg, settings.n_fold, intensity)
