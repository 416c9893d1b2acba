"""Checkpoints: safetensors weights plus a JSON model card, loaded without unpickling.

A checkpoint is a pair of files with the same stem::

    default.safetensors   the state dict (tensors only; safetensors never runs code)
    default.json          the model card

The card (``"format": "temstream-model-card-1"``) holds the architecture
(:class:`~temstream.models.arch.UNetConfig` fields), the class names, the decision threshold on
the foreground probability, the training configuration and data seed, validation metrics and the
sha256 of the weights file, which :func:`load_checkpoint` verifies before reading a byte of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from temstream.models.arch import DenoiseConfig, UNetConfig, architecture_from_dict

CARD_FORMAT = "temstream-model-card-1"
WEIGHTS_DIR = Path(__file__).parent / "weights"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupted, or does not match its model card."""


@dataclass
class ModelCard:
    """What a checkpoint says about itself.

    Attributes
    ----------
    name : str
        Model name (``default``, ``bilayer``, or what ``temstream train`` was given).
    architecture : UNetConfig or DenoiseConfig
        Network shape (a :class:`DenoiseConfig`: a denoiser, ``kind = "denoise"``).
    threshold : float
        Decision threshold on the foreground probability ``1 - P(background)``, chosen on
        validation data.
    training : dict
        Training configuration (preset, steps, seed, ...), enough to reproduce the weights.
    metrics : dict
        Validation metrics (simulated and real data).
    sha256 : str
        Hex digest of the weights file.
    extra : dict
        Anything else (versions, timings, command line).
    """

    name: str
    architecture: UNetConfig | DenoiseConfig
    threshold: float = 0.5
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    sha256: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.architecture.classes

    def to_json(self) -> str:
        d = {"format": CARD_FORMAT, "name": self.name,
             "classes": list(self.classes), "threshold": float(self.threshold),
             "architecture": self.architecture.to_dict(), "training": self.training,
             "metrics": self.metrics, "weights_sha256": self.sha256, **self.extra}
        return json.dumps(d, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> "ModelCard":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{source} is not valid JSON ({exc}); the file is damaged: "
                                  "restore it or retrain with `temstream train`") from None
        if not isinstance(d, dict) or d.get("format") != CARD_FORMAT:
            raise CheckpointError(f"{source} is not a temstream model card "
                                  f"(expected format {CARD_FORMAT!r})")
        try:
            arch = architecture_from_dict(d.pop("architecture"))
            classes = tuple(d.pop("classes"))
            card = cls(name=d.pop("name"), architecture=arch,
                       threshold=float(d.pop("threshold")), training=d.pop("training", {}),
                       metrics=d.pop("metrics", {}), sha256=d.pop("weights_sha256"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source} is incomplete or inconsistent: {exc}") from None
        d.pop("format")
        card.extra = d
        if classes != arch.classes:
            raise CheckpointError(f"{source}: classes {classes} differ from the architecture's "
                                  f"{arch.classes}")
        return card


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve(name_or_path: str | os.PathLike) -> tuple[Path, Path]:
    """Weights and card paths for a shipped model name or a checkpoint path.

    Parameters
    ----------
    name_or_path : str or path
        ``"default"``, ``"bilayer"`` (shipped), a ``.safetensors`` or ``.json`` file of a pair, or
        a directory holding ``model.safetensors`` + ``model.json`` (what ``temstream train``
        writes).

    Returns
    -------
    (Path, Path)
        ``(weights, card)``.
    """
    p = Path(name_or_path)
    if not p.exists() and (WEIGHTS_DIR / f"{name_or_path}.json").exists():
        p = WEIGHTS_DIR / f"{name_or_path}.json"
    if p.is_dir():
        p = p / "model.json"
    if not p.exists() and not p.with_suffix(".json").exists():
        shipped = sorted(q.stem for q in WEIGHTS_DIR.glob("*.json"))
        raise CheckpointError(f"no model {str(name_or_path)!r}: give a shipped name "
                              f"{shipped}, 'classical', or a checkpoint path "
                              "(.safetensors/.json pair or a `temstream train` output folder)")
    weights, card = p.with_suffix(".safetensors"), p.with_suffix(".json")
    for q in (weights, card):
        if not q.exists():
            raise CheckpointError(f"checkpoint {p.stem!r} is incomplete: {q} is missing "
                                  "(weights and card must sit side by side)")
    return weights, card


def read_card(name_or_path: str | os.PathLike) -> ModelCard:
    """The model card of a checkpoint (no torch needed)."""
    _, card = resolve(name_or_path)
    return ModelCard.from_json(card.read_text(), source=str(card))


def save_checkpoint(model, card: ModelCard, path: str | Path) -> Path:
    """Write ``model``'s weights and ``card`` as a checkpoint pair.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its ``state_dict`` is saved; tensors are made contiguous on the CPU).
    card : ModelCard
        Card; its ``sha256`` is filled in here.
    path : str or Path
        A directory (writes ``model.safetensors`` / ``model.json`` inside) or a file stem.

    Returns
    -------
    Path
        The card path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix in ("", ".") and not path.name.endswith((".json", ".safetensors")):
        path.mkdir(parents=True, exist_ok=True)
        path = path / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights, card_path = path.with_suffix(".safetensors"), path.with_suffix(".json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # one metadata key only: safetensors writes its metadata map in a random order, so two
    # keys would give the same weights two different files (and sha256s) from run to run
    save_file(state, str(weights), metadata={"format": "pt"})
    card.sha256 = sha256_file(weights)
    card_path.write_text(card.to_json())
    return card_path


def build_network(arch: UNetConfig | DenoiseConfig):
    """A freshly initialised network of ``arch``: a U-Net segmenter or a denoiser."""
    if isinstance(arch, DenoiseConfig):
        from temstream.models.denoise import build_denoiser

        return build_denoiser(arch)
    from temstream.models.unet import build_unet

    return build_unet(arch)


def load_checkpoint(name_or_path: str | os.PathLike):
    """Load a checkpoint into a fresh U-Net, verifying its integrity first.

    Parameters
    ----------
    name_or_path : str or path
        See :func:`resolve`.

    Returns
    -------
    (UNet or DenoiseNet, ModelCard)
        The network in eval mode on the CPU, and its card.

    Raises
    ------
    CheckpointError
        Missing file, sha256 mismatch (damaged or swapped weights), unreadable safetensors, or
        tensors that do not fit the card's architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights, card_path = resolve(name_or_path)
    card = ModelCard.from_json(card_path.read_text(), source=str(card_path))
    digest = sha256_file(weights)
    if digest != card.sha256:
        raise CheckpointError(f"{weights} does not match its model card (sha256 {digest[:12]}… "
                              f"vs {card.sha256[:12]}… in {card_path.name}): the weights are "
                              "damaged or belong to another model; restore the pair or retrain")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from None
    model = build_network(card.architecture)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{weights} does not fit the architecture in {card_path.name}: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
    model.load_state_dict(state)
    return model.eval(), card
