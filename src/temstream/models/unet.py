"""The U-Net family in torch, with frame normalisation inside the network.

The module maps raw detector counts ``(B, 1, H, W)`` (uint8/uint16/float) to class
probabilities ``(B, C, H, W)``. Normalisation happens in the graph so that it exports to ONNX
and runs on the device: optional 3x3 median, then a robust per-frame standardisation that keeps
the full 16-bit range (no 8-bit quantisation, no min-max clipping):

    z = (raw - p50) / max((p99 - p1) / 4, eps);   x = 2 asinh(z / 2)

computed from a strided subsample of the frame (every 4th pixel in each direction). Percentiles
come from one sort, so the statistics ignore up to 1 % hot pixels or X-ray spikes. The statistics
can also be passed in (``stats``), which the tiling code uses so that every tile of a large frame
is normalised with the statistics of the whole frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from temstream.models.arch import UNetConfig

#: subsample stride used for the frame statistics
STATS_STRIDE = 4
#: (p99 - p1) / SPREAD_TO_UNIT ~ the standard deviation of Gaussian noise
SPREAD_TO_UNIT = 4.0
#: standardised values z become COMPRESS * asinh(z / COMPRESS): linear within about
#: +-COMPRESS (the noise and weak-contrast range), logarithmic beyond, so saturated bubbles, hot
#: pixels and very high doses give bounded inputs while darker stays darker
COMPRESS = 2.0


def frame_stats(raw: torch.Tensor) -> torch.Tensor:
    """Robust centre and scale of each frame.

    Parameters
    ----------
    raw : torch.Tensor, shape (B, 1, H, W)
        Raw counts, any real dtype (converted to float32).

    Returns
    -------
    torch.Tensor, shape (B, 2), float32
        ``[:, 0]`` the median (counts), ``[:, 1]`` the scale ``(p99 - p1) / 4`` (counts); where
        p99 = p1 (sparse frames, e.g. a counting detector at very low dose) ``(max - min) / 4``;
        at least 1e-3.
    """
    sub = raw[:, :, ::STATS_STRIDE, ::STATS_STRIDE].to(torch.float32).flatten(1)
    s, _ = torch.sort(sub, dim=1)
    n = s.shape[1]
    lo = s[:, (n - 1) // 100]
    mid = s[:, (n - 1) // 2]
    hi = s[:, (n - 1) - (n - 1) // 100]
    spread = hi - lo
    spread = torch.where(spread > 0, spread, s[:, -1] - s[:, 0])  # sparse frames: full range
    scale = torch.clamp(spread / SPREAD_TO_UNIT, min=1e-3)
    return torch.stack([mid, scale], dim=1)


def median3x3(x: torch.Tensor) -> torch.Tensor:
    """3x3 median filter with edge replication, ``(B, 1, H, W)`` float -> same.

    A min/max sorting network over the nine shifted views (exports to every ONNX runtime).
    """
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h, w = x.shape[-2], x.shape[-1]
    v = [p[..., i:i + h, j:j + w] for i in range(3) for j in range(3)]

    def sort2(a, b):
        return torch.minimum(a, b), torch.maximum(a, b)

    # Paeth's 19-exchange median-of-9 network
    for a, b in ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8),
                 (0, 3), (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)):
        v[a], v[b] = sort2(v[a], v[b])
    return v[4]


def normalise_frames(raw: torch.Tensor, stats: torch.Tensor | None = None, *,
                     median_prefilter: bool = False, fallback: bool = True) -> torch.Tensor:
    """Robust per-frame standardisation, in float32.

    Parameters
    ----------
    raw : torch.Tensor, shape (B, 1, H, W)
        Raw counts, any real dtype.
    stats : torch.Tensor, shape (B, 2), optional
        Centre and scale (counts) to use instead of the frame's own :func:`frame_stats`; rows
        with scale <= 0 fall back to the frame's own. Statistics are taken after the median
        prefilter.
    median_prefilter : bool
        Apply :func:`median3x3` first.
    fallback : bool
        Compute the frame's own statistics for rows of ``stats`` with scale <= 0. False: use
        ``stats`` as given (no sort in the graph; TensorRT's TopK is limited to K <= 3840).

    Returns
    -------
    torch.Tensor, shape (B, 1, H, W), float32
        ``2 asinh(z / 2)`` of ``z = (x - centre) / scale``.
    """
    x = raw.to(torch.float32)
    if median_prefilter:
        x = median3x3(x)
    if stats is None:
        stats = frame_stats(x)
    elif fallback:
        stats = torch.where(stats[:, 1:2] > 0, stats.to(torch.float32), frame_stats(x))
    z = (x - stats[:, 0, None, None, None]) / stats[:, 1, None, None, None]
    return COMPRESS * torch.asinh(z / COMPRESS)


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch, eps=1e-4)
    if kind == "group":
        return nn.GroupNorm(4, ch)
    return nn.Identity()


def _block(cin: int, cout: int, n: int, norm: str, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=norm == "none"),
                   _norm(norm, cout), nn.ReLU(inplace=True)]
        if dropout and i == 0 and n > 1:
            layers.append(nn.Dropout2d(dropout))
    if dropout and n == 1:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net with in-graph normalisation and a softmax (or multi-label sigmoid) head.

    Parameters
    ----------
    config : UNetConfig
        Architecture.

    Notes
    -----
    ``forward(raw, stats=None)``: ``raw`` (B, 1, H, W) with H, W multiples of
    ``config.multiple``; ``stats`` (B, 2) float32 centre/scale or None (computed from ``raw``;
    rows whose scale is <= 0 are also computed). Returns probabilities (B, C, H, W) float32.
    ``logits(x)`` runs the core network on an already normalised float input.
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        c = config
        widths = [c.base * 2 ** i for i in range(c.depth)]
        bott = c.bottleneck or c.base * 2 ** c.depth
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(_block(cin, w, c.enc_convs, c.norm, 0.0))
            cin = w
        self.bottom = _block(cin, bott, 2, c.norm, c.dropout)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cin = bott
        for w in reversed(widths):
            if c.upsample == "transpose":
                self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
                cat = 2 * w
            else:
                self.up.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
                cat = cin + w
            self.dec.append(_block(cat, w, c.dec_convs, c.norm, c.dropout))
            cin = w
        self.head = nn.Conv2d(cin, c.outputs, 1)
        if c.head == "multilabel":
            self.register_buffer("_layer_mask", torch.tensor(
                [float(i + 1 in c.layer_channels) for i in range(c.outputs)]),
                persistent=False)

    #: False: ``stats`` are used as given (set by the TensorRT export)
    stats_fallback = True

    def normalise(self, raw: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        """Raw counts (B, 1, H, W) -> standardised float32 (B, 1, H, W)."""
        return normalise_frames(raw, stats, median_prefilter=self.config.median_prefilter,
                                fallback=self.stats_fallback)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Core network: normalised (B, 1, H, W) -> logits (B, C, H, W)."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)

    def forward(self, raw: torch.Tensor, stats: torch.Tensor | None = None) -> torch.Tensor:
        x = self.normalise(raw, stats)
        return self.probabilities(self.logits(x.to(self.head.weight.dtype)).float())

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (B, outputs, H, W) -> probabilities (B, C, H, W) over ``config.classes``:
        a softmax, or for a multilabel head the sigmoids behind the derived background."""
        if self.config.head == "softmax":
            return torch.softmax(logits, dim=1)
        p = torch.sigmoid(logits)
        # log(1 - p) of the layer channels summed: the probability that no layer is present
        m = self._layer_mask.view(1, -1, 1, 1)
        none = torch.exp((F.logsigmoid(-logits) * m).sum(dim=1, keepdim=True))
        return torch.cat([none, p], dim=1)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ``Conv2d -> BatchNorm2d`` pair into one convolution, in place, for inference.

    In eval mode a batch norm is an affine map per channel, so it can be carried by the
    preceding convolution's weights and bias; this saves one pass over every activation map
    (about 1.2x at 512² on a CPU). The outputs agree with the unfolded network to float32
    rounding. Training-mode modules must not be folded (their statistics still change).

    Parameters
    ----------
    model : nn.Module
        A network in eval mode (e.g. a :class:`UNet`).

    Returns
    -------
    nn.Module
        ``model``, with each folded pair replaced by the fused convolution.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            layers, fused, i = list(child), [], 0
            while i < len(layers):
                if (isinstance(layers[i], nn.Conv2d) and i + 1 < len(layers)
                        and isinstance(layers[i + 1], nn.BatchNorm2d)):
                    fused.append(fuse_conv_bn_eval(layers[i], layers[i + 1]))
                    i += 2
                else:
                    fused.append(fold_batchnorm(layers[i]))
                    i += 1
            setattr(model, name, nn.Sequential(*fused))
        else:
            fold_batchnorm(child)
    return model


def build_unet(config: UNetConfig) -> UNet:
    """A freshly initialised :class:`UNet` for ``config``."""
    return UNet(config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
