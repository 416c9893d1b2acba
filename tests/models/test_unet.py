"""The U-Net module: shapes, softmax, in-graph normalisation, presets."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from temstream.models.arch import PRESETS, UNetConfig, preset
from temstream.models.prep import frame_stats_np
from temstream.models.unet import (build_unet, count_parameters, fold_batchnorm, frame_stats,
                                   median3x3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_give_probabilities_of_the_right_shape(name):
    cfg = preset(name)
    net = build_unet(cfg).eval()
    x = torch.randint(0, 65535, (2, 1, 64, 48), dtype=torch.int32).to(torch.uint16)
    with torch.inference_mode():
        p = net(x)
    assert p.shape == (2, len(cfg.classes), 64, 48)
    assert p.dtype == torch.float32
    assert (p >= 0).all() and (p <= 1).all()
    if cfg.head == "softmax":
        torch.testing.assert_close(p.sum(1), torch.ones(2, 64, 48))
    else:  # independent layers; the background is the probability that none is there
        layers = list(cfg.layer_channels)
        torch.testing.assert_close(p[:, 0], torch.prod(1 - p[:, layers], 1))


def test_groschner_preset_matches_the_paper():
    cfg = PRESETS["groschner"]
    net = build_unet(cfg)
    convs = [m for m in net.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32]  # one conv per level
    assert cfg.dropout == 0.2 and cfg.median_prefilter and cfg.tile == 512
    assert 50_000 < count_parameters(net) < 80_000  # ~65 k in pyNanoFind


def test_median3x3_equals_scipy(rng):
    x = rng.normal(size=(2, 1, 33, 29)).astype(np.float32)
    got = median3x3(torch.from_numpy(x)).numpy()
    want = ndimage.median_filter(x, size=(1, 1, 3, 3), mode="nearest")
    np.testing.assert_array_equal(got, want)


def test_stats_torch_and_numpy_agree_and_ignore_hot_pixels(rng):
    x = rng.normal(1000, 30, size=(3, 1, 96, 80)).astype(np.float32)
    x[0, 0, :3, :3] = 65535  # hot pixels / X-ray spike
    t = frame_stats(torch.from_numpy(x)).numpy()
    n = frame_stats_np(x)
    np.testing.assert_allclose(t, n, rtol=0, atol=0)
    sparse = np.zeros((1, 1, 64, 64), np.float32)
    sparse[0, 0, ::8, ::8] = 3
    np.testing.assert_array_equal(frame_stats_np(sparse), [[0, 0.75]])
    np.testing.assert_array_equal(frame_stats(torch.from_numpy(sparse)).numpy(), [[0, 0.75]])
    # centre ~ median, scale ~ sigma for Gaussian noise (p99 - p1 = 4.65 sigma)
    np.testing.assert_allclose(t[:, 0], 1000, atol=10)
    np.testing.assert_allclose(t[:, 1], 30 * 4.65 / 4, rtol=0.15)


def test_sparse_frames_do_not_explode():
    # counting detector at very low dose: almost all zeros, p1 = p99 = 0
    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, ::9, ::7] = 1.0
    net = build_unet(preset("default", depth=2, base=4)).eval()
    y = net.normalise(x)
    assert torch.isfinite(y).all() and y.abs().max() <= 5
    with torch.inference_mode():
        assert torch.isfinite(net(x)).all()


def test_normalisation_makes_output_invariant_to_gain_and_offset(rng):
    net = build_unet(preset("default", depth=2, base=4)).eval()
    x = rng.poisson(400, size=(1, 1, 64, 64)).astype(np.float32)
    with torch.inference_mode():
        a = net(torch.from_numpy(x))
        b = net(torch.from_numpy(3.0 * x + 500.0))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_uint16_range_is_kept():
    # the top of the uint16 range must not wrap or saturate: 65535 > 65534 after normalisation
    net = build_unet(preset("default", depth=1, base=4))
    x = torch.full((1, 1, 16, 16), 65000, dtype=torch.int32)
    x[0, 0, 0, 0] = 65535
    x[0, 0, 0, 1] = 65534
    x[0, 0, 5:, :] = 10
    y = net.normalise(x.to(torch.uint16))
    assert y[0, 0, 0, 0] > y[0, 0, 0, 1] > y[0, 0, 0, 2]


def test_config_round_trip_and_errors():
    cfg = preset("bilayer", base=12)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown architecture keys"):
        UNetConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="norm must be"):
        UNetConfig(norm="layer")
    with pytest.raises(ValueError, match="unknown architecture preset"):
        preset("nope")


@pytest.mark.parametrize("norm", ["group", "none"])
def test_other_normalisations_train_mode_runs(norm):
    net = build_unet(preset("default", depth=2, base=8, norm=norm)).train()
    p = net(torch.rand(2, 1, 32, 32) * 100)
    p[:, 1].mean().backward()
    assert net.head.weight.grad is not None


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_fold_batchnorm_keeps_the_outputs(norm, rng):
    import copy

    torch.manual_seed(3)
    net = build_unet(preset("default", depth=2, base=4, norm=norm)).eval()
    g = torch.Generator().manual_seed(4)
    for m in net.modules():  # non-trivial statistics and affine parameters
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.3, 0.3, generator=g)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.3, 2.0, generator=g)
    x = torch.from_numpy(rng.normal(1000, 30, (2, 1, 64, 64)).astype(np.float32))
    with torch.no_grad():
        ref = net(x)
        folded = fold_batchnorm(copy.deepcopy(net))
        out = folded(x)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert (n_bn > 0) == (norm == "batch")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert count_parameters(folded) <= count_parameters(net)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(net.train())


def test_multilabel_head_lets_both_layers_be_on_and_derives_the_background():
    from temstream.models.arch import LAYER_CLASSES

    net = build_unet(UNetConfig(classes=LAYER_CLASSES, head="multilabel", depth=2, base=4)).eval()
    assert net.head.out_channels == 4 and net.config.layer_channels == (1, 2)
    with torch.no_grad():
        net.head.bias[:] = torch.tensor([3.0, 3.0, 0.0, 0.0])   # both layers likely everywhere
        p = net(torch.rand(2, 1, 32, 32) * 100)
    assert p.shape == (2, 5, 32, 32)
    assert (p[:, 1] > 0.5).all() and (p[:, 2] > 0.5).all()
    torch.testing.assert_close(p[:, 0], (1 - p[:, 1]) * (1 - p[:, 2]), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="multilabel head"):
        UNetConfig(classes=("background", "particle"), head="multilabel")
    with pytest.raises(ValueError, match="head must be"):
        UNetConfig(head="sigmoid")


def test_multilabel_head_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from temstream.models.arch import LAYER_CLASSES
    from temstream.models.export import export_onnx

    net = build_unet(UNetConfig(classes=LAYER_CLASSES, head="multilabel", depth=2, base=4)).eval()
    path = export_onnx(net, tmp_path / "m.onnx")
    x = (np.random.default_rng(0).random((1, 1, 32, 48)) * 1000).astype(np.uint16)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"frames": x, "stats": np.zeros((1, 2), np.float32)})[0]
    with torch.inference_mode():
        want = net(torch.from_numpy(x.astype(np.float32))).numpy()
    assert got.shape == (1, 5, 32, 48) and np.abs(got - want).max() < 1e-4
