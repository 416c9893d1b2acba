"""Test-time augmentation: the averaged network is exactly rotation/mirror equivariant, equals
the mean of the hand-rotated predictions, and runs the same on torch and ONNX Runtime."""

import numpy as np
import pytest

from temstream.models import load_segmenter
from temstream.models.tta import TTA_CHOICES, forward, inverse, transforms

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _blocky_frame(rng, h=64, w=96):
    """Counts constant on 4x4 blocks: the normalisation samples one pixel per block, so its
    statistics are the same for every rotation or mirror of the frame."""
    small = rng.poisson(rng.uniform(50, 400, (h // 4, w // 4))).astype(np.uint16)
    return np.kron(small, np.ones((4, 4), np.uint16))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_inverse_undoes_forward(kind, rng):
    a = rng.normal(size=(2, 3, 5, 7)).astype(np.float32)
    if kind == "torch":
        import torch

        a = torch.from_numpy(a)
    seen = set()
    for t in transforms(8):
        b = forward(a, *t)
        seen.add(bytes(np.asarray(b).tobytes()))
        np.testing.assert_array_equal(np.asarray(inverse(b, *t)), np.asarray(a))
    assert len(seen) == 8  # eight distinct transforms


def test_choices_and_errors():
    assert [len(transforms(n)) for n in TTA_CHOICES] == list(TTA_CHOICES)
    assert transforms(2) == [(0, False), (1, False)]
    with pytest.raises(ValueError, match="tta must be one of"):
        transforms(3)
    with pytest.raises(ValueError, match="tta must be one of"):
        load_segmenter("default", tta=5)
    with pytest.raises(ValueError, match="classical"):
        load_segmenter("classical", tta=4)


@pytest.fixture(scope="module")
def segs(tiny_checkpoint):
    return {n: load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32",
                              tta=n) for n in (1, 4, 8)}


def test_tta8_is_equivariant_and_plain_network_is_not(segs, rng):
    f = _blocky_frame(rng)
    ops = [lambda a: np.rot90(a, 1, axes=(-2, -1)), lambda a: a[..., ::-1]]
    for op in ops:
        g = np.ascontiguousarray(op(f))
        np.testing.assert_allclose(segs[8](g), op(segs[8](f)), atol=2e-6)
        # the check has teeth: the randomly initialised network alone is far from equivariant
        assert np.abs(segs[1](g) - op(segs[1](f))).max() > 1e-3


def test_tta4_is_the_mean_of_the_rotated_predictions(segs, rng):
    f = _blocky_frame(rng)
    manual = np.mean([np.rot90(segs[1](np.ascontiguousarray(np.rot90(f, k))), -k, axes=(1, 2))
                      for k in range(4)], axis=0)
    got = segs[4](f)
    np.testing.assert_allclose(got, manual, atol=2e-6)
    np.testing.assert_allclose(got.sum(0), 1, atol=1e-5)


def test_tta_on_onnxruntime_equals_torch_and_tiles(tiny_checkpoint, onnx_cache, rng):
    frames = rng.integers(0, 6000, (2, 48, 80)).astype(np.uint16)  # non-square, padded
    a = load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32", tta=8)
    b = load_segmenter(tiny_checkpoint, backend="onnxruntime", device="cpu",
                       cache_dir=onnx_cache, tta=8)
    np.testing.assert_allclose(a.predict_batch(frames), b.predict_batch(frames), atol=2e-5)
    big = rng.integers(0, 6000, (200, 136)).astype(np.uint16)  # > tile (128): tiled per copy
    p = a(big)
    assert p.shape == (3, 200, 136)
    np.testing.assert_allclose(p.sum(0), 1, atol=1e-5)
