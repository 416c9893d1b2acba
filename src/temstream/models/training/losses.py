"""Training losses: cross-entropy with the U-Net paper's border weight map, soft Dice, their sum.

Ronneberger et al. (2015) weight each pixel by ``w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2)``
with ``d1``, ``d2`` the distances to the nearest and second-nearest particle, so that the narrow
background gaps between touching particles dominate the loss. Here ``d2`` is approximated as
``d1 + 2 dv`` with ``dv`` the distance to the edge between the Voronoi cells of the particles
(exact on the line joining two particles); two Euclidean distance transforms per image instead of
one per particle.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def border_weight_map(target: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0,
                      class_weights=None) -> np.ndarray:
    """U-Net border weight map of one target image.

    Parameters
    ----------
    target : ndarray, shape (H, W), integer
        Class index per pixel, 0 = background. Particles are the connected components of the
        non-background classes other than a boundary class (see Notes).
    w0 : float
        Peak extra weight in gaps between particles.
    sigma : float
        Width (px) of the gap weighting.
    class_weights : sequence of float, optional
        ``w_c`` per class (default 1 for all).

    Returns
    -------
    ndarray, shape (H, W), float32
        Per-pixel weight >= min(class_weights).

    Notes
    -----
    For 3-class particle targets (0 background, 1 particle, 2 boundary) instances are the
    connected components of class 1, the boundary class separating touching particles. For
    other targets every non-background pixel counts as particle.
    """
    target = np.asarray(target)
    cw = np.ones(int(target.max()) + 1, np.float32) if class_weights is None else \
        np.asarray(class_weights, np.float32)
    w = cw[np.clip(target, 0, len(cw) - 1)]
    inside = target == 1 if target.max() <= 2 else target > 0
    labels, n = ndimage.label(inside)
    if n < 2 or w0 == 0:
        return w.astype(np.float32)
    d1, idx = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    nearest = labels[idx[0], idx[1]]
    edge = np.zeros(nearest.shape, bool)
    edge[:-1] |= nearest[:-1] != nearest[1:]
    edge[:, :-1] |= nearest[:, :-1] != nearest[:, 1:]
    dv = ndimage.distance_transform_edt(~edge)
    d2 = d1 + 2 * dv
    w = w + w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2)) * (labels == 0)
    return w.astype(np.float32)


def weighted_ce(logits, target, weight):
    """Pixel-weighted cross-entropy.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, C, H, W)
    target : torch.Tensor, shape (B, H, W), int64
    weight : torch.Tensor, shape (B, H, W), float32

    Returns
    -------
    torch.Tensor, scalar
        ``sum(w * ce) / sum(w)``.
    """
    import torch.nn.functional as F

    ce = F.cross_entropy(logits.float(), target, reduction="none")
    return (ce * weight).sum() / weight.sum().clamp_min(1e-6)


def soft_dice_loss(logits, target, *, eps: float = 1.0):
    """1 - mean soft Dice over the non-background classes present in the batch.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, C, H, W)
    target : torch.Tensor, shape (B, H, W), int64

    Returns
    -------
    torch.Tensor, scalar
        The foreground (1 - P(background) vs target > 0) Dice and each class's Dice, averaged.
    """
    import torch
    import torch.nn.functional as F

    p = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target, p.shape[1]).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    inter = (p * onehot).sum(dims)
    denom = p.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    present = onehot.sum(dims)[1:] > 0
    per_class = dice[1:][present] if present.any() else dice[1:]
    fg_p, fg_t = 1 - p[:, 0], (target > 0).float()
    fg = (2 * (fg_p * fg_t).sum() + eps) / (fg_p.sum() + fg_t.sum() + eps)
    return 1 - 0.5 * (fg + per_class.mean())


def segmentation_loss(kind: str, logits, target, weight):
    """``ce`` (border-weighted), ``dice``, or ``ce+dice``."""
    if kind == "ce":
        return weighted_ce(logits, target, weight)
    if kind == "dice":
        return soft_dice_loss(logits, target)
    if kind == "ce+dice":
        return weighted_ce(logits, target, weight) + soft_dice_loss(logits, target)
    raise ValueError(f"loss must be 'ce', 'dice' or 'ce+dice', not {kind!r}")


def layer_targets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer presence and centre maps from per-layer instance labels.

    Parameters
    ----------
    labels : ndarray, shape (L, H, W), integer
        Instance labels of each layer (0 = background).

    Returns
    -------
    masks : ndarray, shape (L, H, W), float32
        1 where the layer has a particle.
    centres : ndarray, shape (L, H, W), float32
        Each particle's distance to its own edge (pixels where it touches another particle of
        its layer count as edge), divided by its largest value: 1 at the centre, falling to 0
        at the outline, so touching particles of one layer have separate peaks.

    Examples
    --------
    >>> lab = np.zeros((1, 9, 16), np.int32)
    >>> lab[0, 1:8, 1:8] = 1; lab[0, 1:8, 8:15] = 2       # two touching squares
    >>> m, c = layer_targets(lab)
    >>> float(m.sum()), float(c[0, 4, 4]), float(c[0, 4, 11]), float(c[0, 4, 8])
    (98.0, 1.0, 1.0, 0.0)
    """
    labels = np.asarray(labels)
    masks = (labels > 0).astype(np.float32)
    centres = np.zeros(labels.shape, np.float32)
    for k, lab in enumerate(labels):
        if not lab.any():
            continue
        lab = lab.astype(np.int64)
        edge = np.zeros(lab.shape, bool)   # a 4-neighbour of another particle
        dv = (lab[1:] != lab[:-1]) & (lab[1:] > 0) & (lab[:-1] > 0)
        dh = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
        edge[1:] |= dv
        edge[:-1] |= dv
        edge[:, 1:] |= dh
        edge[:, :-1] |= dh
        inside = (lab > 0) & ~edge
        dt = ndimage.distance_transform_edt(inside).astype(np.float32)
        ids, inv = np.unique(lab, return_inverse=True)
        inv = inv.reshape(lab.shape)
        peak = ndimage.maximum(dt, inv, np.arange(len(ids)))
        peak = np.maximum(np.asarray(peak, np.float32), 1e-6)
        centres[k] = np.where(lab > 0, dt / peak[inv], 0.0)
    return masks, centres


def layer_loss(logits, masks, centres, swappable=None, *, eps: float = 1.0,
               overlap_weight: float = 0.0):
    """Loss of a multi-label two-layer head: per layer, binary cross-entropy and soft Dice of
    the presence, and cross-entropy of the centre map; for equal-size layers (``swappable``),
    the better of the two namings of the layers.

    Parameters
    ----------
    logits : torch.Tensor, shape (B, 2L, H, W)
        L presence logits, then L centre logits.
    masks, centres : torch.Tensor, shape (B, L, H, W), float32
        :func:`layer_targets`.
    swappable : torch.Tensor, shape (B,), bool, optional
        Samples whose layer order is arbitrary (only for L = 2).
    overlap_weight : float
        Extra weight of the presence cross-entropy where particles of two layers overlap (a
        particle hidden behind another is the hard case), on top of 1.

    Returns
    -------
    torch.Tensor, scalar
    """
    import torch
    import torch.nn.functional as F

    L = masks.shape[1]
    lg = logits.float()
    wp = 1.0 + overlap_weight * (masks.sum(1, keepdim=True) > 1.5).float()   # (B, 1, H, W)

    def per_sample(m, c):
        pres, cen = lg[:, :L], lg[:, L:]
        bce = (F.binary_cross_entropy_with_logits(pres, m, reduction="none") * wp).sum(
            (1, 2, 3)) / (wp.sum((1, 2, 3)) * L)
        p = torch.sigmoid(pres)
        inter = (p * m).sum((2, 3))
        dice = (2 * inter + eps) / (p.sum((2, 3)) + m.sum((2, 3)) + eps)
        # the centre maps matter inside the particles (and just around them)
        w = 1.0 + 2.0 * m
        cbce = (F.binary_cross_entropy_with_logits(cen, c, reduction="none") * w).sum(
            (1, 2, 3)) / w.sum((1, 2, 3))
        return bce + (1 - dice.mean(1)) + cbce

    loss = per_sample(masks, centres)
    if swappable is not None and L == 2 and bool(swappable.any()):
        other = per_sample(masks.flip(1), centres.flip(1))
        loss = torch.where(swappable, torch.minimum(loss, other), loss)
    return loss.mean()
