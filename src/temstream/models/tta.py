"""Test-time augmentation: average the network over rotations and mirrors of the frame.

A U-Net trained with rotation and mirror augmentation is nearly, but not exactly, equivariant;
averaging its probabilities over the symmetric copies of a frame removes the orientation-dependent
part of its errors. ``n`` copies cost ``n`` network passes, so this is for replay and reprocessing
(or a GPU with headroom), not for a 2-core live run.

The transforms act on the last two axes of numpy arrays and torch tensors alike, so every backend
(torch, ONNX Runtime, TensorRT) runs them on its own device without a copy to the host.
"""

from __future__ import annotations

#: allowed numbers of copies: identity; + 90 deg; all four rotations; rotations x mirror
TTA_CHOICES = (1, 2, 4, 8)


def transforms(n: int) -> list[tuple[int, bool]]:
    """The first ``n`` dihedral transforms as ``(quarter_turns, mirrored)``.

    Order: the four rotations, then the four mirrored rotations, so ``n = 2`` is identity +
    90 deg and ``n = 4`` the four rotations.
    """
    if n not in TTA_CHOICES:
        raise ValueError(f"tta must be one of {TTA_CHOICES}, not {n!r}")
    return [(k % 4, k >= 4) for k in range(n)]


def _is_numpy(a) -> bool:
    return type(a).__module__ == "numpy"


def forward(a, quarter_turns: int, mirrored: bool):
    """Apply a transform to ``a`` (..., H, W): mirror left-right, then rotate counter-clockwise.

    Returns a contiguous array/tensor (ONNX Runtime and CUDA graphs need one).
    """
    if _is_numpy(a):
        import numpy as np

        if mirrored:
            a = a[..., ::-1]
        return np.ascontiguousarray(np.rot90(a, quarter_turns, axes=(-2, -1)))
    import torch

    if mirrored:
        a = a.flip(-1)
    return torch.rot90(a, quarter_turns, dims=(-2, -1)).contiguous()


def inverse(a, quarter_turns: int, mirrored: bool):
    """Undo :func:`forward` on ``a`` (..., H', W') (a view where possible)."""
    if _is_numpy(a):
        import numpy as np

        a = np.rot90(a, -quarter_turns, axes=(-2, -1))
        return a[..., ::-1] if mirrored else a
    import torch

    a = torch.rot90(a, -quarter_turns, dims=(-2, -1))
    return a.flip(-1) if mirrored else a


def averaged(run, x, n: int):
    """Mean of ``inverse(run(forward(x)))`` over the first ``n`` transforms.

    Parameters
    ----------
    run : callable
        ``run(x) -> probs``, ``x`` (B, 1, H, W) -> (B, C, H, W); may return a buffer it reuses
        on the next call (CUDA graphs): every result is consumed before the next call.
    x : ndarray or torch.Tensor, shape (B, 1, H, W)
    n : int
        One of :data:`TTA_CHOICES`.

    Returns
    -------
    ndarray or torch.Tensor, shape (B, C, H, W)
    """
    if n == 1:
        return run(x)
    acc = None
    for t in transforms(n):
        p = inverse(run(forward(x, *t)), *t)
        acc = p / n if acc is None else acc + p / n
    return acc
