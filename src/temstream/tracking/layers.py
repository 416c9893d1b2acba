"""Per-layer particles of a two-layer (moiré) segmentation.

A two-layer model (``classes`` with ``layer_*`` and ``centre_*`` channels, a multi-label head)
says for every pixel how likely each layer has a particle there (both may) and where each
layer's particle centres are. :func:`extract_layers` turns that into one instance label plane
per layer, so that an A and a B particle that overlap in projection are two particles with
their full outlines, and into one particle table whose ``layer`` column says the plane (1..L).
Its phases, each callable alone:

1. :func:`layer_particles` -- per layer: the cores of its centre map seed the particles, which
   grow over the layer's presence (touching particles of one layer stay apart); small and
   faint ones are dropped;
2. :class:`LayerLattices` -- per frame: each layer's lattice is fitted to its particles
   (:func:`temstream.tracking.lattice.fit_lattice`); a particle off its own layer's lattice and
   on the other's moves to the other plane (equal-size layers are told apart by lattice
   membership alone); a missed interior site where the layer's presence is high gets its
   particle; the planes are swapped when that keeps each layer's lattice orientation from the
   previous frame (layer identity stays the same through a movie);
3. :func:`merge_planes` -- the planes numbered so that ids never repeat across layers (plane 1
   holds 1..n1, plane 2 n1+1..n1+n2: a particle's ``label`` is its id in its plane and in the
   single-plane view), the table, and the single-plane view (higher layers drawn over lower
   ones), which tools that know nothing of layers read as ``/data/labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from temstream.config.schema import InstancesConfig
from temstream.tracking import _instances_kernels as _k
from temstream.tracking.instances import (TABLE_COLUMNS, Particles, Segmentation,
                                          drop_small_seeds, empty_table, label_mask, measure)
from temstream.tracking.lattice import Lattice, fit_lattice

__all__ = ["is_layered", "LayeredSegmentation", "layer_particles", "LayerLattices",
           "merge_planes", "extract_layers", "CORE_LEVEL"]

#: a pixel belongs to a particle's core where its centre map exceeds this (the map is the
#: distance to the particle's edge over its largest value: 0.5 is the inner half of its radius)
CORE_LEVEL = 0.5
#: cores smaller than this (px) are noise
MIN_CORE_AREA = 3


def is_layered(classes) -> bool:
    """Whether ``classes`` are those of a multi-label two-layer model (``layer_*`` channels,
    each with its ``centre_*`` channel)."""
    classes = tuple(classes)
    layers = [c[6:] for c in classes if c.startswith("layer_")]
    return bool(layers) and all(f"centre_{s}" in classes for s in layers) \
        and "both" not in classes


@dataclass
class LayeredSegmentation:
    """What the layered instance stage reads of a two-layer model's output.

    Attributes
    ----------
    presence : (L, H, W) float32
        P(layer k has a particle at the pixel); several layers may be on.
    centres : (L, H, W) float32
        Each layer's centre map (1 at a particle's centre, 0 at its edge).
    threshold : float
        Presence threshold.
    names : tuple of str
        Layer names (``a``, ``b``).
    """

    presence: np.ndarray
    centres: np.ndarray
    threshold: float
    names: tuple[str, ...]

    @classmethod
    def of(cls, probabilities, classes, threshold) -> "LayeredSegmentation":
        p = np.asarray(probabilities)
        classes = tuple(classes)
        if p.ndim != 3 or p.shape[0] != len(classes):
            raise ValueError(f"probabilities must be (C, H, W) over {len(classes)} classes "
                             f"{classes}, got shape {p.shape}")
        if not is_layered(classes):
            raise ValueError(f"classes {classes} are not those of a two-layer model "
                             "(layer_* and centre_* channels)")
        names = tuple(c[6:] for c in classes if c.startswith("layer_"))
        pres = np.stack([p[classes.index(f"layer_{s}")] for s in names]).astype(np.float32)
        cen = np.stack([p[classes.index(f"centre_{s}")] for s in names]).astype(np.float32)
        return cls(np.nan_to_num(pres), np.nan_to_num(cen), float(threshold), names)

    @property
    def n_layers(self) -> int:
        return self.presence.shape[0]


def layer_particles(seg: LayeredSegmentation, k: int, settings: InstancesConfig):
    """The particles of layer ``k`` alone: (labels (H, W) int32 1..n, table).

    Seeds are the components of ``centre > CORE_LEVEL`` inside the layer's presence (at least
    ``MIN_CORE_AREA`` px); they grow (4-connected, breadth first) over ``presence >
    threshold``; presence without a core becomes a particle of its own. Particles below
    ``settings.min_area`` px or whose mean presence is below ``settings.min_score`` are
    dropped. The table has the columns of :func:`temstream.tracking.instances.measure` with
    ``layer`` = k + 1 and ``score`` = the mean presence.

    ``min_score`` is at most ``threshold + 0.1`` here: a particle hidden behind one of the
    other layer is often seen with a presence only a little above the threshold.
    """
    pres = seg.presence[k]
    extent = pres > seg.threshold
    cores = (seg.centres[k] > CORE_LEVEL) & extent
    labels, bbox, area = drop_small_seeds(*label_mask(cores), MIN_CORE_AREA)
    n = bbox.shape[0] - 1
    if n > 0:
        _k.grow_seeds(labels, np.ascontiguousarray(extent), bbox,
                      np.empty(labels.size, np.int64))
    rest = extent & (labels == 0)
    if rest.any():
        extra, _, _ = label_mask(rest)
        labels = np.where(extra > 0, extra + n, labels).astype(np.int32, copy=False)
        n = int(labels.max())
    parts = Particles.of(labels, n)
    parts.keep &= parts.area >= max(settings.min_area, 1)
    probs = np.stack([1.0 - pres, pres])
    min_score = min(settings.min_score, seg.threshold + 0.1)
    if min_score > 0 and parts.n:
        fg_sum = np.zeros(parts.n + 1)
        _k.foreground_sums(parts.labels, probs[0], fg_sum)
        parts.keep &= fg_sum >= min_score * parts.area
    one = Segmentation(cores, extent, pres, probs, False, seg.threshold)
    labels, table = measure(parts, one, settings.n_fold)  # relabels the kept ones 1..m
    table["layer"][:] = k + 1
    return labels, table


def _take(table, index):
    return {key: np.asarray(v)[index] for key, v in table.items()}


def _cat(a, b):
    return {key: np.concatenate([np.asarray(a[key]), np.asarray(b[key])]) for key in a}


def refine_centres(seg: LayeredSegmentation, planes, tables, *, level: float = 0.3) -> None:
    """Each particle's position from its layer's centre map (in place): the centroid of
    ``c**2`` over its pixels where the map ``c`` exceeds ``level``. Where particles of two
    layers overlap, or one was split or completed from lattice sites, the outline is the least
    certain part and the centre map the most; particles without such pixels keep their
    position."""
    for k, (plane, t) in enumerate(zip(planes, tables)):
        if not len(t["x"]):
            continue
        c = seg.centres[k]
        w = np.where(c > level, c * c, 0.0).ravel()
        lab = plane.ravel()
        n = max(int(lab.max(initial=0)), int(np.max(t["label"], initial=0))) + 1
        sw = np.bincount(lab, w, n)
        ys, xs = np.divmod(np.arange(lab.size), plane.shape[1])
        sx = np.bincount(lab, w * xs, n)
        sy = np.bincount(lab, w * ys, n)
        ids = np.asarray(t["label"])
        ok = sw[ids] > 1e-6
        t["x"] = np.where(ok, sx[ids] / np.maximum(sw[ids], 1e-12), t["x"])
        t["y"] = np.where(ok, sy[ids] / np.maximum(sw[ids], 1e-12), t["y"])


def merge_planes(planes, tables):
    """Per-layer labels (each 1..n_k) and tables -> (view, table, layer_labels).

    Ids are made unique across layers (layer k's particles follow those of layers < k), so a
    particle's ``label`` is its id in its own plane and in the single-plane ``view``, where
    particles of higher layers are drawn over those of lower ones.

    Returns
    -------
    view : (H, W) int32
    table : dict
        Rows of layer 1, then layer 2, ...; ``label`` the id.
    layer_labels : (L, H, W) int32
    """
    out = np.zeros((len(planes),) + planes[0].shape, np.int32)
    view = np.zeros(planes[0].shape, np.int32)
    table = empty_table()
    offset = 0
    for k, (plane, t) in enumerate(zip(planes, tables)):
        n = len(t["x"])
        ids = np.asarray(t["label"], np.int32)
        remap = np.zeros(max(int(plane.max(initial=0)), int(ids.max(initial=0))) + 1, np.int32)
        remap[ids] = ids + offset
        out[k] = remap[plane]
        view = np.where(out[k] > 0, out[k], view)
        t = dict(t)
        t["label"] = ids + offset
        t["layer"] = np.full(n, k + 1, np.int16)
        table = _cat(table, {c: np.asarray(t[c]).astype(table[c].dtype) for c in TABLE_COLUMNS})
        offset += n
    return view, table, out


@dataclass
class LayerLattices:
    """The lattice phase of the layered instance stage, with its memory of the previous frame.

    Parameters
    ----------
    reassign : bool
        Move particles that sit on the other layer's lattice and off their own.
    split : bool
        Split a particle that holds a site of each layer's lattice (an A and a B particle the
        network saw as one) into one particle per site, each in its layer's plane.
    complete : bool
        Add a particle at each interior lattice site that has none but whose presence (mean
        over a disk of the layer's typical particle radius) exceeds the threshold.
    keep_identity : bool
        Swap the planes when that keeps each layer's lattice orientation from the previous
        frame (equal-size layers, whose naming by the network is arbitrary).

    Attributes
    ----------
    lattices : list of Lattice or None
        The current frame's fit of each layer.
    """

    reassign: bool = True
    split: bool = True
    complete: bool = True
    keep_identity: bool = True
    lattices: list = field(default_factory=list)
    _previous: list = field(default_factory=list)

    def reset(self) -> None:
        """Forget the previous frame (a new series)."""
        self._previous = []
        self.lattices = []

    # -- the phases ----------------------------------------------------------------------
    def __call__(self, seg: LayeredSegmentation, planes: list, tables: list,
                 settings: InstancesConfig):
        """Check and complete the per-layer particles of one frame; returns (planes, tables,
        seg) with the planes (and the layer order of ``seg``) possibly changed."""
        L = len(planes)
        fits = [self._fit(t) for t in tables]
        if L == 2:
            fits = self._layer_lattices(tables, fits)
        if L == 2 and self.reassign and all(f is not None for f in fits):
            planes, tables, moved = self._reassign(planes, tables, fits)
            if moved:  # fit again without the particles that moved
                fits = self._layer_lattices(tables, [self._fit(t) for t in tables])
        if L == 2 and self.split and all(f is not None for f in fits) \
                and self._distinct(*fits):
            planes, tables = self._split(seg, planes, tables, fits, settings)
        if self.complete:
            for k in range(L):
                if fits[k] is not None:
                    other = planes[1 - k] if L == 2 else None
                    planes[k], tables[k] = self._complete(seg, k, planes[k], tables[k],
                                                          fits[k], settings, other)
        if L == 2 and self.keep_identity and self._swapped(fits):
            planes, tables, fits = planes[::-1], tables[::-1], fits[::-1]
            seg = LayeredSegmentation(seg.presence[::-1], seg.centres[::-1], seg.threshold,
                                      seg.names)
            for k, t in enumerate(tables):
                t["layer"][:] = k + 1
        self.lattices = fits
        if all(f is not None for f in fits) and (len(fits) < 2 or self._distinct(*fits)):
            self._previous = [(f.theta, f.a) for f in fits]
        return planes, tables, seg

    def _layer_lattices(self, tables, fits):
        """The two layers' lattices from all particles, whatever plane the network put them
        in (:func:`~temstream.tracking.lattice.two_lattices`), each named after the plane that
        holds most of its particles; each plane's own fit when only one lattice shows."""
        from temstream.tracking.lattice import two_lattices

        n = [len(t["x"]) for t in tables]
        if sum(n) < 24:
            return fits
        # the lattice constant from the planes' own fits, else from the particle size
        known = [f.a for f in fits if f is not None]
        if known:
            a = float(np.median(known))
        else:
            area = np.r_[tables[0]["area"], tables[1]["area"]]
            a = 2.6 * float(np.sqrt(np.median(area) / np.pi))
        pts = np.r_[np.c_[tables[0]["x"], tables[0]["y"]], np.c_[tables[1]["x"], tables[1]["y"]]]
        pair = two_lattices(pts, a)
        if len(pair) < 2 or not self._distinct(*pair):
            return fits
        plane = np.r_[np.zeros(n[0], int), np.ones(n[1], int)]
        share = [float(np.mean(plane[g.inliers] == 0)) if g.inliers.any() else 0.5
                 for g in pair]
        return list(pair) if share[0] >= share[1] else [pair[1], pair[0]]

    @staticmethod
    def _fit(table) -> Lattice | None:
        pts = np.c_[table["x"], table["y"]]
        return fit_lattice(pts) if len(pts) >= 12 else None

    @staticmethod
    def _distinct(fa: Lattice, fb: Lattice) -> bool:
        """Whether two layers' lattices differ enough to tell their particles apart."""
        from temstream.tracking.lattice import wrap_angle

        twist = abs(float(wrap_angle(fa.theta - fb.theta, 60.0)))
        return twist > 1.0 or abs(fa.a / fb.a - 1) > 0.03

    def _reassign(self, planes, tables, fits):
        fa, fb = fits
        if not self._distinct(fa, fb):
            return planes, tables, False
        moved = []
        for k in (0, 1):
            t = tables[k]
            pts = np.c_[t["x"], t["y"]]
            if not len(pts):
                moved.append(np.zeros(0, bool))
                continue
            own, other = fits[k], fits[1 - k]
            r_own = own.residuals(pts) / own.a
            r_other = other.residuals(pts) / other.a
            # off its own lattice (beyond the thermal scatter) and clearly nearer the other's
            moved.append((r_other < 0.15) & (r_own > np.maximum(0.15, 2.5 * r_other)))
        if not any(m.any() for m in moved):
            return planes, tables, False
        new_planes = [p.copy() for p in planes]
        new_tables = []
        for k in (0, 1):
            stay = ~moved[k]
            t = tables[k]
            gone = np.asarray(t["label"])[moved[k]]
            new_planes[k][np.isin(planes[k], gone)] = 0
            new_tables.append(_take(t, stay))
        for k in (0, 1):  # the movers join the other plane with new ids
            t = tables[k]
            if not moved[k].any():
                continue
            dest = 1 - k
            rows = _take(t, moved[k])
            ids = np.asarray(rows["label"])
            # one already found in the other plane (both layers' maps saw the particle): drop;
            # compared with the particles that stay there (two overlapping particles the network
            # named the wrong way round both move, and must not drop each other)
            there = np.c_[new_tables[dest]["x"], new_tables[dest]["y"]]
            if len(there):
                from scipy.spatial import cKDTree

                d, _ = cKDTree(there).query(np.c_[rows["x"], rows["y"]])
                new = d > 0.4 * fits[dest].a
                rows, ids = _take(rows, new), ids[new]
            if not len(ids):
                continue
            start = int(new_planes[dest].max(initial=0)) + 1
            new_ids = np.arange(start, start + len(ids), dtype=np.int32)
            lut = np.zeros(int(planes[k].max(initial=0)) + 1, np.int32)
            lut[ids] = new_ids
            src = lut[planes[k]]
            new_planes[dest] = np.where((src > 0) & (new_planes[dest] == 0), src,
                                        new_planes[dest])
            rows["label"] = new_ids
            rows["layer"] = np.full(len(ids), dest + 1, np.int16)
            new_tables[dest] = _cat(new_tables[dest], rows)
        return new_planes, new_tables, True

    def _split(self, seg, planes, tables, fits, settings):
        """One particle per lattice site for particles that hold a site of each layer.

        A particle of plane k larger than 1.3 times its layer's median area whose pixels
        contain a site of its own lattice and one of the other is split: each pixel goes to
        the site with the smaller ``distance - radius`` (a power diagram of the two layers'
        disks), and pixels within ``radius + 1`` of a site go to it in any case (the two
        particles overlap); the own-layer parts stay, the other-layer parts join the other
        plane unless it has a particle at that site already.
        """
        from scipy import ndimage

        h, w = planes[0].shape
        radius = [float(np.sqrt(np.median(t["area"]) / np.pi)) if len(t["x"]) else 0.0
                  for t in tables]
        if min(radius) <= 0:
            return planes, tables
        sites = [f.sites_in((h, w)) for f in fits]
        pix = [np.clip(np.rint(sv).astype(int), 0, [w - 1, h - 1]) for sv in sites]
        out_planes = [p.copy() for p in planes]
        out_tables = list(tables)
        added: list[list] = [[], []]  # (plane, per-pixel part ids image, n parts)
        for k in (0, 1):
            o = 1 - k
            plane, t = planes[k], tables[k]
            big = np.asarray(t["label"])[t["area"] > 1.3 * np.pi * radius[k] ** 2]
            if not len(big):
                continue
            isbig = np.zeros(max(int(plane.max(initial=0)), int(big.max())) + 1, bool)
            isbig[big] = True
            own_lab = plane[pix[k][:, 1], pix[k][:, 0]]
            oth_lab = plane[pix[o][:, 1], pix[o][:, 0]]
            both = np.intersect1d(own_lab[isbig[own_lab]], oth_lab[isbig[oth_lab]])
            if not len(both):
                continue
            region = np.isin(plane, both)
            use_own = np.isin(own_lab, both)
            use_oth = np.isin(oth_lab, both)
            seeds = []
            for sel, px in ((use_own, pix[k]), (use_oth, pix[o])):
                img = np.zeros((h, w), np.int32)
                img[px[sel, 1], px[sel, 0]] = np.arange(1, int(sel.sum()) + 1)
                d, ind = ndimage.distance_transform_edt(img == 0, return_indices=True)
                seeds.append((d, img[ind[0], ind[1]]))
            (d_own, n_own), (d_oth, n_oth) = seeds
            to_own = region & ((d_own - radius[k] <= d_oth - radius[o]) | (d_own <= radius[k] + 1))
            to_oth = region & ((d_oth - radius[o] < d_own - radius[k]) | (d_oth <= radius[o] + 1))
            # other-layer parts at sites the other plane has a particle at already: dropped
            oth_sites = sites[o][use_oth]
            if len(tables[o]["x"]) and len(oth_sites):
                from scipy.spatial import cKDTree

                dd, _ = cKDTree(np.c_[tables[o]["x"], tables[o]["y"]]).query(oth_sites)
                known = np.r_[False, dd < 0.4 * fits[o].a]
                to_oth &= ~known[n_oth]
            rows_keep = ~np.isin(np.asarray(t["label"]), both)
            out_planes[k][region] = 0
            out_tables[k] = _take(out_tables[k], np.r_[rows_keep, np.zeros(
                len(out_tables[k]["x"]) - len(rows_keep), bool)])
            added[k].append(np.where(to_own, n_own, 0))
            added[o].append(np.where(to_oth, n_oth, 0))
        if not any(added):
            return planes, tables
        for k in (0, 1):
            pres = seg.presence[k]
            for parts_img in added[k]:
                n = int(parts_img.max(initial=0))
                if n == 0:
                    continue
                parts = Particles.of(parts_img.astype(np.int32), n)
                parts.keep &= parts.area >= max(settings.min_area, 1)
                if not parts.keep.any():
                    continue
                one = Segmentation(parts_img > 0, None, pres, np.stack([1.0 - pres, pres]),
                                   False, seg.threshold)
                labels, rows = measure(parts, one, settings.n_fold)
                plane = out_planes[k]
                start = int(max(plane.max(initial=0),
                                np.max(out_tables[k]["label"], initial=0))) + 1
                free = (labels > 0) & (plane == 0)
                plane[free] = labels[free] + start - 1
                rows["label"] = np.arange(start, start + len(rows["x"]), dtype=np.int32)
                rows["layer"][:] = k + 1
                out_tables[k] = _cat(out_tables[k], rows)
        return out_planes, out_tables

    def _complete(self, seg, k, plane, table, fit: Lattice, settings, other=None):
        """Particles at interior sites of layer ``k`` that the cores missed: where the layer's
        presence says so, or where the site lies under a particle of the other layer (a
        particle hidden behind another shows little of itself; a vacancy there cannot be told
        from it, and sites are far more often occupied than not)."""
        n = len(table["x"])
        if n < 12:
            return plane, table
        r = float(np.sqrt(np.median(table["area"]) / np.pi))
        h, w = plane.shape
        sites = fit.sites_in((h, w), margin=r + 1)
        if not len(sites):
            return plane, table
        from scipy.spatial import cKDTree

        tree = cKDTree(np.c_[table["x"], table["y"]])
        d, _ = tree.query(sites)
        empty = sites[d > 0.5 * fit.a]
        if not len(empty):
            return plane, table
        # only inside the layer: enough of its particles around the site
        near = tree.query_ball_point(empty, 1.6 * fit.a, return_length=True)
        empty = empty[np.asarray(near) >= 3]
        pres = seg.presence[k]
        rr = int(np.ceil(r))
        yy, xx = np.mgrid[-rr:rr + 1, -rr:rr + 1]
        disk = yy ** 2 + xx ** 2 <= r * r
        added = []
        for sx, sy in empty:
            cx, cy = int(round(sx)), int(round(sy))
            ys, xs = yy[disk] + cy, xx[disk] + cx
            ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
            ys, xs = ys[ok], xs[ok]
            if len(ys) < disk.sum() // 2:
                continue
            free = plane[ys, xs] == 0
            if free.mean() <= 0.8:
                continue
            hidden = other is not None and np.mean(other[ys, xs] > 0) > 0.8
            if pres[ys, xs].mean() > seg.threshold or hidden:
                added.append((ys[free], xs[free]))
        if not added:
            return plane, table
        plane = plane.copy()
        start = int(plane.max(initial=0)) + 1
        for i, (ys, xs) in enumerate(added):
            plane[ys, xs] = start + i
        ids = np.arange(start, start + len(added), dtype=np.int32)
        parts = Particles.of(np.where(plane >= start, plane - start + 1, 0).astype(np.int32),
                             len(added))
        probs = np.stack([1.0 - pres, pres])
        # centroids unweighted: a hidden particle's presence says little about its centre
        one = Segmentation(plane > 0, None, None, probs, False, seg.threshold)
        _, rows = measure(parts, one, settings.n_fold)
        rows["label"] = ids
        rows["layer"][:] = k + 1
        return plane, _cat(table, rows)

    def _swapped(self, fits) -> bool:
        if len(self._previous) != 2 or any(f is None for f in fits):
            return False
        if not self._distinct(*fits):
            return False
        from temstream.tracking.lattice import wrap_angle

        def cost(order):
            c = 0.0
            for f, (theta, a) in zip(order, self._previous):
                c += abs(float(wrap_angle(f.theta - theta, 60.0))) + 60.0 * abs(f.a / a - 1)
            return c

        return cost(fits[::-1]) + 0.5 < cost(fits)


def extract_layers(probabilities, settings: InstancesConfig | None = None, *, classes,
                   threshold=0.5, lattices: LayerLattices | None = None):
    """Per-layer instance labels and one particle table from a two-layer model's output.

    Parameters
    ----------
    probabilities : (C, H, W) float ndarray
        The model's output over ``classes`` (``background``, ``layer_a``, ``layer_b``,
        ``centre_a``, ``centre_b``).
    settings : InstancesConfig, optional
        ``min_area``, ``min_score`` (on each layer's presence) and ``n_fold`` apply.
    classes : sequence of str
    threshold : float
        Presence threshold of every layer (the model card's).
    lattices : LayerLattices, optional
        The lattice phase and its memory of the previous frame (None: per-layer particles as
        the network found them).

    Returns
    -------
    labels : (H, W) int32
        The single-plane view (:func:`merge_planes`).
    table : dict of (N,) ndarrays
        The columns of :func:`temstream.tracking.instances.extract_instances`; ``layer`` 1..L
        is the plane of the particle, ``label`` its id there (unique across planes).
    layer_labels : (L, H, W) int32
        Plane ``k`` holds layer ``k + 1``'s particles; overlapping particles of different
        layers are both present.

    Examples
    --------
    An A particle and a smaller B particle overlapping in projection stay two particles:

    >>> yy, xx = np.mgrid[:40, :40]
    >>> a = (yy - 20) ** 2 + (xx - 15) ** 2 < 64
    >>> b = (yy - 20) ** 2 + (xx - 24) ** 2 < 36
    >>> def centre(m, cy, cx, r):
    ...     return np.clip(1 - np.hypot(yy - cy, xx - cx) / r, 0, 1) * m
    >>> p = np.stack([(~a & ~b) * 1.0, a * 0.95, b * 0.95, centre(a, 20, 15, 8),
    ...               centre(b, 20, 24, 6)]).astype(np.float32)
    >>> view, t, planes = extract_layers(
    ...     p, InstancesConfig(min_area=10),
    ...     classes=("background", "layer_a", "layer_b", "centre_a", "centre_b"))
    >>> t["layer"].tolist(), t["label"].tolist(), [int(planes[k].max()) for k in (0, 1)]
    ([1, 2], [1, 2], [1, 2])
    >>> bool(((planes[0] > 0) & (planes[1] > 0)).any())   # the overlap is in both planes
    True
    """
    settings = InstancesConfig() if settings is None else settings
    seg = LayeredSegmentation.of(probabilities, classes, threshold)
    planes, tables = [], []
    for k in range(seg.n_layers):
        plane, table = layer_particles(seg, k, settings)
        planes.append(plane)
        tables.append(table)
    if lattices is not None:
        planes, tables, seg = lattices(seg, planes, tables, settings)
    refine_centres(seg, planes, tables)
    return merge_planes(planes, tables)
