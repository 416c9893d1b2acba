"""The U-Net segmenter: frames in, class probabilities out, on any backend, any frame size."""

from __future__ import annotations

import numpy as np

from temstream.models.prep import as_batch
from temstream.models.tiling import tiled_apply
from temstream.models.tta import averaged, transforms


class UNetSegmenter:
    """A trained U-Net behind the :class:`~temstream.models.Segmenter` interface.

    Parameters
    ----------
    model : temstream.models.unet.UNet
        Network (CPU, eval mode).
    card : temstream.models.checkpoints.ModelCard
        Its model card.
    backend : object
        A backend from :func:`temstream.models.backends.make_backend`.
    threshold : float, optional
        Decision threshold on the foreground probability (default: the card's).
    tile : int, optional
        Frames with an edge longer than this (px) are processed in overlapping tiles
        (default: the card's ``architecture.tile``).
    halo : int, optional
        Tile overlap margin (px) (default: the card's ``architecture.halo``).
    tile_batch : int
        Tiles per backend call.
    tta : {1, 2, 4, 8}
        Test-time augmentation: average over this many rotations/mirrors of each frame
        (:mod:`temstream.models.tta`; costs ``tta`` network passes per frame).

    Attributes
    ----------
    name : str
    classes : tuple of str
    threshold : float
    backend_name : str
    tta : int
    """

    calibrated = True  # softmax probabilities (threshold chosen on validation data)

    def __init__(self, model, card, backend, *, threshold: float | None = None,
                 tile: int | None = None, halo: int | None = None, tile_batch: int = 4,
                 tta: int = 1):
        self.model, self.card, self.backend = model, card, backend
        self.name = card.name
        self.classes = tuple(card.classes)
        self.threshold = float(card.threshold if threshold is None else threshold)
        arch = card.architecture
        self.multiple = arch.multiple
        self.tile = int(tile or arch.tile)
        self.halo = int(arch.halo if halo is None else halo)
        if self.tile % self.multiple:
            raise ValueError(f"tile must be a multiple of {self.multiple} px, not {self.tile}")
        self.tile_batch = tile_batch
        transforms(tta)  # validates
        self.tta = int(tta)

    @property
    def backend_name(self) -> str:
        """The backend's current name (a compiled torch backend that fell back to eager says
        so)."""
        return self.backend.name

    def __repr__(self) -> str:
        return (f"UNetSegmenter(name={self.name!r}, backend={self.backend_name!r}, "
                f"classes={self.classes}, threshold={self.threshold:.3f}"
                + (f", tta={self.tta})" if self.tta > 1 else ")"))

    def __call__(self, frame) -> np.ndarray:
        """Class probabilities of one frame.

        Parameters
        ----------
        frame : ndarray, shape (H, W)
            Raw detector counts (uint8, uint16, float32; other real types become float32).

        Returns
        -------
        ndarray, shape (C, H, W), float32
            Softmax probabilities over ``self.classes``; they sum to 1 at every pixel.
        """
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"a frame is (H, W); got shape {frame.shape} (use predict_batch)")
        return self.predict_batch(frame[None])[0]

    def predict_batch(self, frames) -> np.ndarray:
        """Class probabilities of a batch, ``(B, H, W)`` -> ``(B, C, H, W)`` float32."""
        return self.backend.download(self.predict_device(frames))

    def predict_device(self, frames):
        """Like :meth:`predict_batch` but leaves the result on the backend's device (torch
        tensor for torch/TensorRT, numpy for ONNX Runtime)."""
        x = as_batch(frames)
        B, _, H, W = x.shape
        xb = self.backend.upload(x)
        stats = self.backend.stats(xb)
        xp = self.backend.pad(xb, self.multiple)
        probs = averaged(lambda xt: self._run_padded(xt, stats), xp, self.tta)
        return probs[:, :, :H, :W]

    def _run_padded(self, xp, stats):
        """Probabilities of padded frames, in tiles when they exceed :attr:`tile`."""
        if max(xp.shape[-2:]) > self.tile:
            return tiled_apply(self.backend.run, xp, stats, tile=self.tile, halo=self.halo,
                               multiple=self.multiple, batch=self.tile_batch)
        return self.backend.run(xp, stats)

    def foreground(self, probs: np.ndarray) -> np.ndarray:
        """Foreground probability ``1 - P(background)``, ``(..., C, H, W)`` -> ``(..., H, W)``."""
        return 1.0 - probs[..., 0, :, :]
