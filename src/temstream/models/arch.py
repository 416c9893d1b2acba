"""U-Net architecture descriptions and presets (plain data, no torch).

A :class:`UNetConfig` is what a model card stores under ``"architecture"``; :func:`build_unet`
in :mod:`temstream.models.unet` turns it into a torch module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

PARTICLE_CLASSES = ("background", "particle", "boundary")
#: the four-class softmax of the first two-layer model (kept for its checkpoints)
BILAYER_CLASSES = ("background", "layer_a", "layer_b", "both")
#: the two-layer model's multi-label outputs: each layer's presence (both may be on at a pixel)
#: and each layer's centre map (the normalised distance to the particle's edge, 1 at its
#: centre), which keeps touching particles of one layer apart; ``background`` is derived
LAYER_CLASSES = ("background", "layer_a", "layer_b", "centre_a", "centre_b")


@dataclass(frozen=True)
class UNetConfig:
    """Shape of a U-Net.

    Parameters
    ----------
    classes : tuple of str
        Output class names; ``classes[0]`` is ``"background"``.
    head : {"softmax", "multilabel"}
        ``softmax``: the network ends in a softmax over ``len(classes)`` channels.
        ``multilabel``: ``len(classes) - 1`` independent sigmoids (several may be on at a
        pixel), and the ``background`` channel is the probability that none of the
        ``layer_*`` channels is on, ``prod(1 - p_layer)``.
    depth : int
        Number of 2x2 poolings; frames are padded to a multiple of ``2**depth`` px.
    base : int
        Channels of the first level; level ``i`` has ``base * 2**i``.
    bottleneck : int or None
        Channels of the bottleneck (default ``base * 2**depth``).
    enc_convs, dec_convs : int
        3x3 conv + norm + ReLU layers per encoder / decoder level.
    dropout : float
        Dropout probability in the decoder blocks and the bottleneck.
    norm : {"batch", "group", "none"}
        Normalisation after each convolution.
    upsample : {"transpose", "bilinear"}
        2x up-sampling in the decoder.
    median_prefilter : bool
        Apply a 3x3 median filter to the raw frame before normalisation (pyNanoFind).
    tile : int
        Preferred tile edge (px) for frames larger than it; tiles overlap by ``halo`` px.
    halo : int
        Overlap margin (px) on each side of a tile, about half the receptive field.
    """

    classes: tuple[str, ...] = PARTICLE_CLASSES
    head: str = "softmax"
    depth: int = 4
    base: int = 8
    bottleneck: int | None = None
    enc_convs: int = 2
    dec_convs: int = 1
    dropout: float = 0.1
    norm: str = "batch"
    upsample: str = "transpose"
    median_prefilter: bool = False
    tile: int = 1024
    halo: int = 64

    def __post_init__(self):
        if self.norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be 'batch', 'group' or 'none', not {self.norm!r}")
        if self.head not in ("softmax", "multilabel"):
            raise ValueError(f"head must be 'softmax' or 'multilabel', not {self.head!r}")
        if self.head == "multilabel" and (self.classes[0] != "background" or not any(
                c.startswith("layer_") for c in self.classes)):
            raise ValueError("a multilabel head needs classes ('background', 'layer_...', ...)")
        if self.upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', not {self.upsample!r}")
        if self.depth < 1 or self.base < 1 or len(self.classes) < 2:
            raise ValueError("need depth >= 1, base >= 1 and at least two classes")
        if self.norm == "group" and self.base % 4:
            raise ValueError("norm='group' uses 4 groups: base must be a multiple of 4")
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def outputs(self) -> int:
        """Channels of the last convolution (the derived background is not one of them)."""
        return len(self.classes) - (self.head == "multilabel")

    @property
    def layer_channels(self) -> tuple[int, ...]:
        """Multilabel heads: the output channels (indices into ``classes``) of the layers."""
        return tuple(i for i, c in enumerate(self.classes) if c.startswith("layer_"))

    @property
    def multiple(self) -> int:
        """Frame edges must be a multiple of this (px); the segmenter pads to it."""
        return 2 ** self.depth

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the model card's ``architecture``)."""
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}; "
                             f"this temstream knows {sorted(names)} (upgrade temstream?)")
        return cls(**d)


#: Named architectures. ``default``: 4 levels, base 8, two convs per encoder level and one per
#: decoder level (>= 20 frames/s at 512^2 on two CPU cores);
#: ``groschner``: the pyNanoFind 512^2 shallow U-Net (filters 4-8-16-32, one conv per
#: encoder level, dropout 0.2, 3x3 median prefilter); ``bilayer``: default with the multi-label
#: two-layer head (:data:`LAYER_CLASSES`);
#: ``smoke`` (``smoke-bilayer``): a tiny network (with the two-layer head) for checking that
#: training runs.
PRESETS: dict[str, UNetConfig] = {
    "default": UNetConfig(),
    "groschner": UNetConfig(classes=("background", "particle"), depth=4, base=4, bottleneck=32,
                            enc_convs=1, dec_convs=2, dropout=0.2, median_prefilter=True,
                            upsample="bilinear", tile=512),
    "bilayer": UNetConfig(classes=LAYER_CLASSES, head="multilabel"),
    "smoke": UNetConfig(base=4, depth=2),
    "smoke-bilayer": UNetConfig(classes=LAYER_CLASSES, head="multilabel", base=4, depth=2),
}


def preset(name: str, **overrides) -> UNetConfig:
    """Architecture preset ``name`` with fields replaced by ``overrides``."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown architecture preset {name!r}; choose one of "
                         f"{sorted(PRESETS)}") from None
    return dataclasses.replace(base, **overrides)


@dataclass(frozen=True)
class DenoiseConfig:
    """Shape of the denoiser (:mod:`temstream.models.denoise`): a small U-Net from ``frames``
    consecutive frames to the expected counts of the last one.

    Parameters
    ----------
    frames : int
        Window length K (frames ``t - K + 1 .. t``, causal).
    depth : int
        Number of 2x2 poolings; frames are padded to a multiple of ``2**depth`` px.
    base : int
        Channels of the first level; level ``i`` has ``base * 2**i``.
    convs : int
        3x3 conv + ReLU layers per level.
    shuffle : int
        The network runs at 1/shuffle of the resolution, each ``shuffle x shuffle`` block of
        pixels folded into channels and unfolded at the end (pixel (un)shuffle): the noise-free
        frame is smooth (detector MTF), and the cost per pixel falls by ``shuffle**2``.
    """

    frames: int = 3
    depth: int = 2
    base: int = 16
    convs: int = 2
    shuffle: int = 2

    #: the card's class list: one output, expected counts (not a segmentation)
    classes = ("expected_counts",)
    kind = "denoise"

    def __post_init__(self):
        if min(self.frames, self.depth, self.base, self.convs, self.shuffle) < 1:
            raise ValueError("need frames, depth, base, convs and shuffle >= 1")

    @property
    def multiple(self) -> int:
        """Frame edges are padded to a multiple of this (px)."""
        return self.shuffle * 2 ** self.depth

    def to_dict(self) -> dict:
        """JSON-ready dictionary (the model card's ``architecture``, with ``kind``)."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "DenoiseConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = {k: v for k, v in d.items() if k != "kind"}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown denoiser architecture keys {sorted(unknown)}")
        return cls(**d)


def architecture_from_dict(d: dict) -> "UNetConfig | DenoiseConfig":
    """A model card's ``architecture``: a :class:`DenoiseConfig` where ``kind`` is
    ``"denoise"``, else a :class:`UNetConfig`."""
    if d.get("kind") == DenoiseConfig.kind:
        return DenoiseConfig.from_dict(d)
    return UNetConfig.from_dict(d)


#: the shipped denoiser's shape
DENOISE_PRESETS = {"denoise": DenoiseConfig()}
