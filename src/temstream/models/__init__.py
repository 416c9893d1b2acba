"""Segmenters: the classical baseline and the U-Nets, with their inference backends.

Only this subpackage imports torch, and only when a U-Net is loaded::

    from temstream.models import load_segmenter
    seg = load_segmenter("default")            # or "bilayer", "classical", a checkpoint path
    probs = seg(frame)                          # (H, W) raw counts -> (C, H, W) float32
    found = 1 - probs[0] >= seg.threshold       # foreground at the model card's threshold

Every segmenter has ``name``, ``classes`` (``classes[0]`` is background), ``threshold`` (on the
foreground probability ``1 - P(background)``), ``calibrated``, ``__call__(frame)`` and
``predict_batch(frames)``. Particles and their outlines come from the instance stage
(:mod:`temstream.tracking.instances`).
"""

from __future__ import annotations

import os
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Segmenter", "load_segmenter", "confidence", "SHIPPED_MODELS"]

#: models whose weights ship inside the package
SHIPPED_MODELS = ("default", "bilayer")


@runtime_checkable
class Segmenter(Protocol):
    """What the pipeline calls: frames in, class probabilities out."""

    name: str
    classes: tuple[str, ...]
    threshold: float
    #: whether the probabilities are calibrated (a network's softmax), so that rules built on
    #: them, such as the expected-Dice outline, apply
    calibrated: bool

    def __call__(self, frame: np.ndarray) -> np.ndarray: ...

    def predict_batch(self, frames: np.ndarray) -> np.ndarray: ...


def confidence(probs: np.ndarray) -> np.ndarray:
    """Per-pixel confidence (largest class probability), ``(..., C, H, W)`` -> ``(..., H, W)``."""
    return np.asarray(probs).max(axis=-3)


def load_segmenter(name: str | os.PathLike, *, backend: str = "auto", device: str = "auto",
                   threshold: float | None = None, tta: int = 1, **kwargs) -> Segmenter:
    """Load a segmenter by name or checkpoint path.

    Parameters
    ----------
    name : str or path
        ``"classical"`` (no network), ``"default"`` / ``"bilayer"`` (shipped U-Nets), or a
        checkpoint: a ``.safetensors``/``.json`` pair or a ``temstream train`` output folder.
    backend : {"auto", "torch", "onnxruntime", "tensorrt"}
        Inference runtime for U-Nets; ``auto`` picks the fastest available.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        Where U-Nets run.
    threshold : float, optional
        Override the model card's decision threshold.
    tta : {1, 2, 4, 8}
        U-Nets: average over this many rotations/mirrors of each frame (test-time
        augmentation, ``tta`` network passes per frame). The classical baseline is
        rotation-invariant already and accepts only 1.
    **kwargs
        For ``classical``: :class:`~temstream.models.classical.ClassicalSegmenter` options.
        For U-Nets: ``tile``, ``halo``, ``tile_batch`` (see
        :class:`~temstream.models.segmenter.UNetSegmenter`) and backend options
        (``precision``, ``cuda_graphs``, ``compile``, ``threads``, ``cache_dir``).

    Returns
    -------
    Segmenter
    """
    if str(name) == "classical":
        from temstream.models.classical import ClassicalSegmenter

        if tta != 1:
            raise ValueError(f"tta = {tta} applies to U-Nets; the classical segmenter takes 1")
        seg = ClassicalSegmenter(**kwargs)
        if threshold is not None:
            seg.threshold = float(threshold)
        return seg
    from temstream.models.backends import BACKENDS, make_backend
    from temstream.models.tta import transforms

    transforms(tta)  # a bad value fails before the network is loaded

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    from temstream.models.checkpoints import load_checkpoint
    from temstream.models.segmenter import UNetSegmenter

    seg_opts = {k: kwargs.pop(k) for k in ("tile", "halo", "tile_batch") if k in kwargs}
    model, card = load_checkpoint(name)
    from temstream.models.arch import DenoiseConfig

    if isinstance(card.architecture, DenoiseConfig):
        raise ValueError(f"{str(name)!r} is a denoiser, not a segmenter: give it as "
                         "--denoise (denoise.model), not as the model")
    be = make_backend(backend, model, card, device=device, **kwargs)
    return UNetSegmenter(model, card, be, threshold=threshold, tta=tta, **seg_opts)
