"""Low-dose denoising: K consecutive frames in counts -> the expected counts of the last one.

The network (:class:`DenoiseNet`) is a small U-Net over a causal window of frames
``t - K + 1 .. t``, trained on simulated movies against the simulator's noise-free frames
(``temstream train --preset denoise``). Its input is standardised per window with the mean
``m`` and the noise ``s`` of frame t (estimated from neighbouring-pixel differences, which
shot noise dominates at low dose), so one network covers 0.3-25 counts/px and any detector
offset; its output ``s * softplus(m / s + r)`` is non-negative counts::

    from temstream.models.denoise import load_denoiser
    den = load_denoiser("denoise")                # shipped weights, or a checkpoint path
    clean = den.predict_window(frames[t - 2:t + 1])  # (3, H, W) counts -> (H, W) float32
    stream = den.stream()                        # causal, one frame at a time
    out = [stream(f) for f in frames]            # stream.reset() at a new series
"""

from __future__ import annotations

import os
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from temstream.models.arch import DenoiseConfig

#: standardised inputs z become COMPRESS * asinh(z / COMPRESS): linear over the noise range,
#: logarithmic for bright bubbles and hot pixels
COMPRESS = 4.0
#: the smallest noise scale (counts), for blank or constant frames
MIN_NOISE = 1e-2


def window_stats(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and noise of the last frame of each window.

    Parameters
    ----------
    raw : torch.Tensor, shape (B, K, H, W), float32 counts

    Returns
    -------
    (m, s) : torch.Tensor, each (B, 1, 1, 1), counts
        ``m`` the mean of frame t; ``s`` its noise, ``sqrt(mean(dx^2) / 2)`` of the
        horizontal neighbour differences (white noise: exact; edges add a little), at least
        :data:`MIN_NOISE`.
    """
    last = raw[:, -1:]
    m = last.mean(dim=(2, 3), keepdim=True)
    dx = last[..., :, 1:] - last[..., :, :-1]
    s = torch.sqrt(torch.clamp((dx * dx).mean(dim=(2, 3), keepdim=True) / 2, min=MIN_NOISE**2))
    return m, s


def _level(cin: int, cout: int, n: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class DenoiseNet(nn.Module):
    """Small U-Net denoiser with the standardisation inside the graph.

    Parameters
    ----------
    config : DenoiseConfig

    Notes
    -----
    ``forward(raw)``: ``raw`` (B, K, H, W) counts (any real dtype), H and W multiples of
    ``config.multiple``; returns expected counts (B, 1, H, W) float32, >= 0. No batch norm, so
    training and inference compute the same function.
    """

    def __init__(self, config: DenoiseConfig):
        super().__init__()
        self.config = c = config
        widths = [c.base * 2 ** i for i in range(c.depth + 1)]
        self.down = nn.ModuleList()
        cin = c.frames * c.shuffle ** 2
        for w in widths:
            self.down.append(_level(cin, w, c.convs))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.dec.append(_level(2 * w, w, c.convs))
            cin = w
        self.head = nn.Conv2d(cin, c.shuffle ** 2, 1)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        x = raw.to(torch.float32)
        m, s = window_stats(x)
        z = (x - m) / s
        h = F.pixel_unshuffle(COMPRESS * torch.asinh(z / COMPRESS), self.config.shuffle)
        skips = []
        for i, level in enumerate(self.down):
            if i:
                h = F.max_pool2d(h, 2)
            h = level(h)
            skips.append(h)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            h = dec(torch.cat([up(h), skips.pop()], dim=1))
        r = F.pixel_shuffle(self.head(h), self.config.shuffle)
        return s * F.softplus(m / s + r)


def build_denoiser(config: DenoiseConfig) -> DenoiseNet:
    """A freshly initialised :class:`DenoiseNet`."""
    return DenoiseNet(config)


class Denoiser:
    """A trained denoiser: windows of frames in, expected counts out, any frame size.

    Parameters
    ----------
    model : DenoiseNet
        In eval mode, on the CPU.
    card : temstream.models.checkpoints.ModelCard

    Attributes
    ----------
    name : str
    frames : int
        Window length K.
    """

    def __init__(self, model: DenoiseNet, card):
        self.model, self.card = model, card
        self.name = card.name
        self.frames = model.config.frames
        self.multiple = model.config.multiple

    def predict_batch(self, windows: np.ndarray) -> np.ndarray:
        """Windows (B, K, H, W) counts, oldest frame first -> (B, H, W) float32 counts."""
        x = np.asarray(windows, np.float32)
        if x.ndim != 4 or x.shape[1] != self.frames:
            raise ValueError(f"expected windows (B, {self.frames}, H, W), got {x.shape}")
        H, W = x.shape[-2:]
        # reflect padding needs more than the pad: tiny frames are padded by edge repetition
        mode = "reflect" if min(H, W) > self.multiple else "edge"
        x = np.pad(x, ((0, 0), (0, 0), (0, -H % self.multiple), (0, -W % self.multiple)),
                   mode=mode)
        with torch.inference_mode():
            y = self.model(torch.from_numpy(x))
        return y[:, 0, :H, :W].numpy()

    def predict_window(self, window: np.ndarray) -> np.ndarray:
        """One window (K, H, W) -> (H, W) float32 expected counts of its last frame."""
        return self.predict_batch(np.asarray(window)[None])[0]

    def stream(self) -> "StreamDenoiser":
        """A causal frame-by-frame denoiser with its own history."""
        return StreamDenoiser(self)


class StreamDenoiser:
    """Causal denoising of a stream: each frame with the K - 1 frames before it.

    Until K frames of a series have arrived the window repeats its first frame (as in
    training). :meth:`reset` starts a new series; a frame of another shape does too.
    """

    def __init__(self, denoiser: Denoiser):
        self.denoiser = denoiser
        self.history: deque = deque(maxlen=denoiser.frames)

    def reset(self) -> None:
        """Forget the history (a new series)."""
        self.history.clear()

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Frame t (H, W) counts -> (H, W) float32 expected counts."""
        frame = np.asarray(frame)
        if self.history and self.history[-1].shape != frame.shape:
            self.reset()
        self.history.append(frame)
        window = list(self.history)
        window = [window[0]] * (self.denoiser.frames - len(window)) + window
        return self.denoiser.predict_window(np.stack(window))


def load_denoiser(name: str | os.PathLike = "denoise", *, threads: int = 0) -> Denoiser:
    """Load a denoiser checkpoint (``"denoise"``: the shipped one; or a path).

    Parameters
    ----------
    name : str or path
        See :func:`temstream.models.checkpoints.resolve`.
    threads : int
        torch threads (0: leave torch's setting).

    Raises
    ------
    temstream.models.checkpoints.CheckpointError
        If the checkpoint is missing, damaged, or a segmenter.
    """
    from temstream.models.checkpoints import CheckpointError, load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    model, card = load_checkpoint(name)
    if not isinstance(card.architecture, DenoiseConfig):
        raise CheckpointError(f"{str(name)!r} is a segmentation model, not a denoiser "
                              "(train one with `temstream train --preset denoise`)")
    return Denoiser(model, card)


def denoise_frames(frames, denoiser: Denoiser, *, progress=None) -> np.ndarray:
    """Denoise a movie causally, frame by frame.

    Parameters
    ----------
    frames : sequence of (H, W) arrays, e.g. (N, H, W)
        One series, in order.
    denoiser : Denoiser
    progress : callable, optional
        Wraps the frame iterator (e.g. ``tqdm``).

    Returns
    -------
    (N, H, W) float32 expected counts.
    """
    stream = denoiser.stream()
    it = range(len(frames))
    if progress is not None:
        it = progress(it)
    return np.stack([stream(np.asarray(frames[i])) for i in it])
