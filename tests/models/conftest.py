"""Fixtures for the models tests: tiny U-Nets saved as real checkpoints."""

from __future__ import annotations

import numpy as np
import pytest


def _randomise_bn(net, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A depth-2, base-4 U-Net with random weights and BN statistics, saved as a checkpoint."""
    import torch

    from temstream.models.arch import preset
    from temstream.models.checkpoints import ModelCard, save_checkpoint
    from temstream.models.unet import build_unet

    torch.manual_seed(0)
    cfg = preset("default", depth=2, base=4, halo=32, tile=128)
    net = build_unet(cfg).eval()
    _randomise_bn(net, 1)
    path = tmp_path_factory.mktemp("ck") / "tiny"
    save_checkpoint(net, ModelCard("tiny", cfg, threshold=0.42), path)
    return path


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
