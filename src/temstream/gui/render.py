"""Qt-free conversions of the latest frame into what the display items draw cheaply.

- :func:`to_display_uint8`: raw frame + fixed levels -> uint8 (one numba pass), so
  the image item wraps the buffer in a QImage without its own rescaling;
- :func:`label_indices` / :func:`label_outlines`: int32 instance labels -> uint8 colour indices
  (0 = transparent) for a lookup-table overlay; one numba pass each;
- :func:`label_lut`: the RGBA lookup table (index 0 transparent).
"""

from __future__ import annotations

import functools

import numba
import numpy as np

#: colour indices 1..N_COLOURS are used for labels (label l -> 1 + (l - 1) % N_COLOURS)
N_COLOURS = 255


def to_display_uint8(image: np.ndarray, levels: tuple[float, float],
                     out: np.ndarray | None = None) -> np.ndarray:
    """Map ``levels[0] -> 0`` and ``levels[1] -> 255`` with saturation (one numba pass).

    8- and 16-bit integer frames go through a lookup table of all their values (2.6 ms at
    2048^2 on one core); other types are scaled pixel by pixel.

    Parameters
    ----------
    image : (H, W) ndarray
        Any real dtype.
    levels : (lo, hi)
    out : (H, W) uint8 ndarray, optional
        Reused when its shape matches.

    Returns
    -------
    (H, W) uint8 ndarray
    """
    lo, hi = float(levels[0]), float(levels[1])
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    img = np.ascontiguousarray(image)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D frame, got shape {img.shape}")
    if out is None or out.shape != img.shape:
        out = np.empty(img.shape, np.uint8)
    if img.dtype in (np.uint8, np.uint16):
        _lut_map(img, _level_lut(img.dtype.itemsize, lo, scale), out)
    else:
        if img.dtype not in (np.float32, np.float64):
            img = img.astype(np.float32)
        _scale_map(img, lo, scale, out)
    return out


@functools.lru_cache(maxsize=8)
def _level_lut(itemsize: int, lo: float, scale: float) -> np.ndarray:
    values = np.arange(1 << (8 * itemsize), dtype=np.float64)
    return np.clip(np.round((values - lo) * scale), 0, 255).astype(np.uint8)


@numba.njit(cache=True, nogil=True)
def _lut_map(img, lut, out):
    h, w = img.shape
    for i in range(h):
        for j in range(w):
            out[i, j] = lut[img[i, j]]


@numba.njit(cache=True, nogil=True)
def _scale_map(img, lo, scale, out):
    h, w = img.shape
    for i in range(h):
        for j in range(w):
            v = (img[i, j] - lo) * scale
            if v != v or v <= 0:  # NaN shows black
                out[i, j] = 0
            elif v >= 255:
                out[i, j] = 255
            else:
                out[i, j] = np.uint8(v + 0.5)


@numba.njit(cache=True, nogil=True)
def _indices(labels, out, n):
    h, w = labels.shape
    for i in range(h):
        for j in range(w):
            v = labels[i, j]
            out[i, j] = 0 if v <= 0 else 1 + (v - 1) % n


@numba.njit(cache=True, nogil=True)
def _outlines(labels, out, n):
    h, w = labels.shape
    for i in range(h):
        for j in range(w):
            v = labels[i, j]
            edge = False
            if v > 0:
                if i == 0 or i == h - 1 or j == 0 or j == w - 1:
                    edge = True
                elif (labels[i - 1, j] != v or labels[i + 1, j] != v
                      or labels[i, j - 1] != v or labels[i, j + 1] != v):
                    edge = True
            out[i, j] = 1 + (v - 1) % n if edge else 0


def _prepare(labels: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    lab = np.ascontiguousarray(labels)
    if lab.dtype not in (np.int32, np.int64, np.uint16, np.uint8):
        lab = lab.astype(np.int32)
    if out is None or out.shape != lab.shape:
        out = np.empty(lab.shape, np.uint8)
    return lab, out


def label_indices(labels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Filled overlay: label ``l > 0`` -> colour index ``1 + (l - 1) % 255``, background -> 0."""
    lab, out = _prepare(labels, out)
    _indices(lab, out, N_COLOURS)
    return out


def label_outlines(labels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Outline overlay: only pixels of a label with a 4-neighbour of another label are coloured."""
    lab, out = _prepare(labels, out)
    _outlines(lab, out, N_COLOURS)
    return out


def label_lut(alpha: int = 110, seed: int = 7) -> np.ndarray:
    """A (256, 4) uint8 RGBA table: index 0 transparent, others saturated random hues.

    Parameters
    ----------
    alpha : int
        Opacity of the label colours (0-255).
    seed : int
        Colour order (fixed, so a label keeps its colour from frame to frame).
    """
    rng = np.random.default_rng(seed)
    hue = rng.permutation(np.linspace(0.0, 1.0, N_COLOURS, endpoint=False))
    # HSV -> RGB with s = 1, v = 1
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None] * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    lut = np.zeros((256, 4), np.uint8)
    lut[1:, :3] = np.round(255 * rgb).astype(np.uint8)
    lut[1:, 3] = alpha
    return lut


#: colour indices of two-layer overlays: layer A, layer B, both (see :func:`layer_lut`)
LAYER_A, LAYER_B, LAYER_BOTH = 1, 2, 3
#: RGB of layer A and layer B (the colours of ``temstream export --layers``)
LAYER_RGB = ((255, 150, 40), (40, 200, 255))


@numba.njit(cache=True, nogil=True)
def _layer_indices(planes, outlines, out):
    n_layers, h, w = planes.shape
    for i in range(h):
        for j in range(w):
            code = 0
            for k in range(min(n_layers, 2)):
                v = planes[k, i, j]
                if v <= 0:
                    continue
                if outlines:
                    if not (i == 0 or i == h - 1 or j == 0 or j == w - 1
                            or planes[k, i - 1, j] != v or planes[k, i + 1, j] != v
                            or planes[k, i, j - 1] != v or planes[k, i, j + 1] != v):
                        continue
                code |= 1 << k
            out[i, j] = code


def layer_indices(layer_labels: np.ndarray, *, outlines: bool = False,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Two-layer overlay: (L, H, W) per-layer labels -> uint8 colour indices, 0 transparent,
    :data:`LAYER_A` where only layer A is (its outline with ``outlines``), :data:`LAYER_B`
    only B, :data:`LAYER_BOTH` both (one numba pass)."""
    planes = np.ascontiguousarray(layer_labels)
    if planes.dtype not in (np.int32, np.int64, np.uint32):
        planes = planes.astype(np.int32)
    shape = planes.shape[1:]
    if out is None or out.shape != shape:
        out = np.empty(shape, np.uint8)
    _layer_indices(planes, bool(outlines), out)
    return out


def layer_lut(alpha: int = 120) -> np.ndarray:
    """The (256, 4) uint8 RGBA table of :func:`layer_indices`: A orange, B cyan, both white."""
    lut = np.zeros((256, 4), np.uint8)
    lut[LAYER_A, :3], lut[LAYER_B, :3] = LAYER_RGB
    lut[LAYER_BOTH, :3] = (255, 255, 255)
    lut[1:4, 3] = alpha
    return lut
