"""Overlapping tiles with seamless blending, for frames larger than a model's tile.

Tile origins are multiples of the network's down-sampling factor, so the pooling grid of every
tile coincides with the whole frame's. Each tile's output is weighted by a window that is 1 in
its core and ramps linearly to a small value over ``halo`` px at edges shared with another tile
(never at the frame border); the weighted sum divided by the summed weights is the blend. Where
a pixel lies in the core of exactly one tile, the result is that tile's output unchanged.
Works on numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, halo: int, multiple: int) -> list[int]:
    """Origins (px) of tiles of edge ``tile`` covering ``length`` px with >= ``2*halo`` overlap.

    ``length`` and ``tile`` must be multiples of ``multiple``; origins are multiples too.
    """
    if tile >= length:
        return [0]
    step = max(((tile - 2 * halo) // multiple) * multiple, multiple)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, halo: int, low: bool, high: bool) -> np.ndarray:
    w = np.ones(length, np.float32)
    if halo > 0:
        r = (np.arange(halo, dtype=np.float32) + 0.5) / halo * 0.999 + 1e-3
        if low:
            w[:halo] = r
        if high:
            w[length - halo:] = r[::-1]
    return w


def tiled_apply(run, frames, stats, *, tile: int, halo: int, multiple: int, batch: int = 4):
    """Apply ``run`` tile by tile and blend.

    Parameters
    ----------
    run : callable
        ``run(x, stats) -> probs`` with ``x`` (b, 1, t, t) and ``probs`` (b, C, t, t), same array
        type as ``frames`` (numpy or torch).
    frames : array, shape (B, 1, H, W)
        Frames already padded so that H and W are multiples of ``multiple``.
    stats : array, shape (B, 2)
        Whole-frame normalisation statistics, passed to every tile.
    tile, halo, multiple : int
        Tile edge (px, a multiple of ``multiple``), overlap margin (px) and alignment.
    batch : int
        Tiles per call of ``run``.

    Returns
    -------
    array, shape (B, C, H, W)
        Blended probabilities.
    """
    B, _, H, W = frames.shape
    th, tw = min(tile, H), min(tile, W)
    ys, xs = tile_starts(H, th, halo, multiple), tile_starts(W, tw, halo, multiple)
    boxes = [(y, x) for y in ys for x in xs]
    is_torch = not isinstance(frames, np.ndarray)
    out = acc = None
    for b in range(B):
        for k in range(0, len(boxes), batch):
            chunk = boxes[k:k + batch]
            x = _stack([frames[b, :, y:y + th, x0:x0 + tw] for y, x0 in chunk], is_torch)
            s = stats[b:b + 1].repeat(len(chunk), 0) if not is_torch else \
                stats[b:b + 1].expand(len(chunk), 2).contiguous()
            p = run(x, s)
            if out is None:
                out, acc = _zeros(frames, (B, p.shape[1], H, W)), _zeros(frames, (B, 1, H, W))
            for i, (y, x0) in enumerate(chunk):
                w = np.outer(_ramp(th, halo, y > 0, y + th < H), _ramp(tw, halo, x0 > 0, x0 + tw < W))
                if is_torch:
                    import torch
                    w = torch.as_tensor(w, device=p.device)
                out[b, :, y:y + th, x0:x0 + tw] += p[i] * w
                acc[b, :, y:y + th, x0:x0 + tw] += w
    return out / acc


def _stack(parts, is_torch):
    if is_torch:
        import torch
        return torch.stack(parts)
    return np.ascontiguousarray(np.stack(parts))


def _zeros(like, shape):
    if isinstance(like, np.ndarray):
        return np.zeros(shape, np.float32)
    import torch
    return torch.zeros(shape, dtype=torch.float32, device=like.device)
