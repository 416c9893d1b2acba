"""Frame preparation shared by the backends (numpy; no torch)."""

from __future__ import annotations

import numpy as np

#: same constants as temstream.models.unet (kept torch-free here)
STATS_STRIDE = 4
SPREAD_TO_UNIT = 4.0


def as_batch(frames) -> np.ndarray:
    """``(H, W)`` or ``(B, H, W)`` frames -> ``(B, 1, H, W)`` array the backends accept.

    uint8, uint16 and float32 pass unchanged (no copy); other integer types become float32.
    """
    a = np.asarray(frames)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"frames must be (H, W) or (B, H, W), got shape {a.shape}")
    if a.dtype not in (np.uint8, np.uint16, np.float32):
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise TypeError(f"frames must be real numbers, got dtype {a.dtype}")
        a = a.astype(np.float32)
    return a[:, None]


def padded_size(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` >= ``n``."""
    return -(-n // multiple) * multiple


def pad_frames(x: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad (B, 1, H, W) at the bottom/right to multiples of ``multiple``."""
    H, W = x.shape[-2:]
    ph, pw = padded_size(H, multiple) - H, padded_size(W, multiple) - W
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < H and pw < W else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)


def frame_stats_np(x: np.ndarray, median_prefilter: bool = False) -> np.ndarray:
    """numpy twin of :func:`temstream.models.unet.frame_stats` (identical values).

    Parameters
    ----------
    x : ndarray, shape (B, 1, H, W)
        Raw counts.
    median_prefilter : bool
        Statistics of the 3x3-median-filtered frame (as the network computes them).

    Returns
    -------
    ndarray, shape (B, 2), float32
        Median and ``(p99 - p1) / 4`` (``(max - min) / 4`` where p99 = p1; counts, >= 1e-3).
    """
    x = x.astype(np.float32, copy=False)
    if median_prefilter:
        from scipy.ndimage import median_filter
        x = median_filter(x, size=(1, 1, 3, 3), mode="nearest")
    sub = x[:, :, ::STATS_STRIDE, ::STATS_STRIDE].reshape(x.shape[0], -1)
    n = sub.shape[1]
    k = [(n - 1) // 100, (n - 1) // 2, (n - 1) - (n - 1) // 100]
    part = np.partition(sub, k, axis=1)
    lo, mid, hi = part[:, k[0]], part[:, k[1]], part[:, k[2]]
    spread = hi - lo
    spread = np.where(spread > 0, spread, sub.max(1) - sub.min(1))  # sparse frames: full range
    scale = np.maximum(spread / SPREAD_TO_UNIT, 1e-3)
    return np.stack([mid, scale], axis=1).astype(np.float32)
