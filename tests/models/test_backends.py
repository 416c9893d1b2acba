"""Backends: ONNX Runtime equals torch, determinism, tiling, dtypes, the public loader."""

import numpy as np
import pytest

from temstream.models import Segmenter, confidence, load_segmenter
from temstream.models.tiling import tile_starts, tiled_apply

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def torch_seg(tiny_checkpoint):
    return load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def ort_seg(tiny_checkpoint, onnx_cache):
    return load_segmenter(tiny_checkpoint, backend="onnxruntime", device="cpu",
                          cache_dir=onnx_cache)


def test_interface(torch_seg, rng):
    assert isinstance(torch_seg, Segmenter)
    assert torch_seg.classes == ("background", "particle", "boundary")
    assert torch_seg.threshold == pytest.approx(0.42)
    f = rng.integers(0, 4000, (50, 70)).astype(np.uint16)  # not a multiple of 4: padded
    p = torch_seg(f)
    assert p.shape == (3, 50, 70) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(0), 1, atol=1e-5)
    c = confidence(p)
    assert c.shape == (50, 70) and (c >= 1 / 3 - 1e-6).all() and (c <= 1 + 1e-6).all()
    assert torch_seg.predict_batch(np.stack([f, f, f])).shape == (3, 3, 50, 70)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float32])
def test_onnxruntime_equals_torch_on_fresh_random_frames(torch_seg, ort_seg, dtype):
    rng = np.random.default_rng()  # fresh inputs on every run
    hi = 255 if dtype == np.uint8 else 60000
    frames = rng.integers(0, hi, (2, 96, 72)).astype(dtype)
    if dtype == np.float32:
        frames = frames * np.float32(0.013)  # gain-normalised data: sub-count values matter
    a = torch_seg.predict_batch(frames)
    b = ort_seg.predict_batch(frames)
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_deterministic(torch_seg, ort_seg, rng):
    f = rng.integers(0, 60000, (64, 64)).astype(np.uint16)
    for seg in (torch_seg, ort_seg):
        np.testing.assert_array_equal(seg(f), seg(f))


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.float32])
def test_read_only_frames_are_served_without_warnings(torch_seg, rng, dtype):
    """Frames decoded from a message or a PNG are read-only buffers."""
    import warnings

    f = rng.integers(0, 250, (64, 48)).astype(dtype)
    ro = np.frombuffer(f.tobytes(), dtype).reshape(f.shape)
    assert not ro.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = torch_seg(ro)
    np.testing.assert_array_equal(p, torch_seg(f))


def test_batch_equals_single_frames(ort_seg, rng):
    frames = rng.integers(0, 5000, (3, 64, 48)).astype(np.uint16)
    batch = ort_seg.predict_batch(frames)
    for i in range(3):
        np.testing.assert_allclose(batch[i], ort_seg(frames[i]), atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_tiled_equals_whole_frame_away_from_seams(tiny_checkpoint, onnx_cache, backend):
    rng = np.random.default_rng(7)
    f = rng.poisson(800, (320, 288)).astype(np.uint16)
    yy, xx = np.mgrid[:320, :288]
    f[(yy - 150) ** 2 + (xx - 140) ** 2 < 40 ** 2] //= 2  # a dark particle across seams
    opts = dict(backend=backend, device="cpu", cache_dir=onnx_cache)
    if backend == "torch":
        opts = dict(backend=backend, device="cpu", precision="fp32")
    whole = load_segmenter(tiny_checkpoint, tile=512, **opts)(f)
    tiled_seg = load_segmenter(tiny_checkpoint, tile=128, halo=24, **opts)
    tiled = tiled_seg(f)
    # the receptive radius of the depth-2 test net is < 24 px: a pixel at least that far from
    # the inner edges of every tile covering it sees exactly what the whole frame sees
    away = np.ones(f.shape, bool)
    ys, xs = (tile_starts(n, 128, 24, 4) for n in (320, 288))
    for y in ys:
        for x in xs:
            inner = np.zeros(f.shape, bool)
            inner[y:y + 128, x:x + 128] = True
            core = np.zeros(f.shape, bool)
            core[y + 24 * (y > 0):y + 128 - 24 * (y + 128 < 320),
                 x + 24 * (x > 0):x + 128 - 24 * (x + 128 < 288)] = True
            away &= ~(inner & ~core)
    assert away.mean() > 0.1
    np.testing.assert_allclose(tiled[:, away], whole[:, away], atol=1e-5)
    # and the seams themselves stay close (blended, no visible steps)
    np.testing.assert_allclose(tiled, whole, atol=5e-2)


def test_tiling_blends_seams_smoothly():
    # run() returns a constant per tile: the blend must be a convex combination everywhere
    calls = []

    def run(x, stats):
        calls.append(x.shape)
        return np.full((x.shape[0], 2, *x.shape[2:]), len(calls), np.float32)

    frames = np.zeros((1, 1, 256, 192), np.float32)
    out = tiled_apply(run, frames, np.zeros((1, 2), np.float32), tile=96, halo=16,
                      multiple=16, batch=1)
    assert out.shape == (1, 2, 256, 192)
    assert out.min() >= 1 and out.max() <= len(calls)
    # no jumps larger than one tile step between neighbouring pixels
    assert np.abs(np.diff(out[0, 0], axis=0)).max() < 1.0
    assert np.abs(np.diff(out[0, 0], axis=1)).max() < 1.0


@pytest.mark.parametrize("length,tile,halo", [(256, 64, 16), (4096, 1024, 64), (96, 128, 8),
                                              (208, 96, 16)])
def test_tile_starts_cover_with_overlap(length, tile, halo):
    starts = tile_starts(length, tile, halo, 16)
    assert starts[0] == 0 and all(s % 16 == 0 for s in starts)
    assert min(starts[-1] + tile, length) == length or tile >= length
    for a, b in zip(starts, starts[1:]):
        assert b - a <= tile - 2 * halo  # every seam has >= halo of context on both sides


def test_bad_inputs_give_clear_errors(torch_seg):
    with pytest.raises(ValueError, match="a frame is"):
        torch_seg(np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(TypeError, match="real numbers"):
        torch_seg.predict_batch(np.zeros((1, 8, 8), complex))
    with pytest.raises(ValueError, match="backend must be"):
        load_segmenter("default", backend="nope")


def test_classical_is_loaded_lazily_with_its_options():
    seg = load_segmenter("classical", sigma=2.0)
    assert seg.name == "classical" and seg.classes[0] == "background"


@pytest.mark.gpu
def test_cuda_fp16_graphs_match_cpu_fp32(tiny_checkpoint):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rng = np.random.default_rng()
    f = rng.integers(0, 60000, (2, 128, 128)).astype(np.uint16)
    ref = load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32")
    gpu = load_segmenter(tiny_checkpoint, backend="torch", device="cuda", precision="fp16",
                         cuda_graphs=True)
    np.testing.assert_allclose(gpu.predict_batch(f), ref.predict_batch(f), atol=2e-2)
    np.testing.assert_array_equal(gpu.predict_batch(f), gpu.predict_batch(f))


@pytest.mark.tensorrt
def test_tensorrt_matches_torch(tiny_checkpoint, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    rng = np.random.default_rng()
    f = rng.integers(0, 60000, (1, 128, 128)).astype(np.uint16)
    ref = load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32")
    trt = load_segmenter(tiny_checkpoint, backend="tensorrt", device="cuda", cache_dir=tmp_path)
    np.testing.assert_allclose(trt.predict_batch(f), ref.predict_batch(f), atol=2e-2)
    # second segmenter reuses the engine cache
    again = load_segmenter(tiny_checkpoint, backend="tensorrt", device="cuda",
                           cache_dir=tmp_path)
    np.testing.assert_allclose(again.predict_batch(f), trt.predict_batch(f), atol=1e-6)


def test_compiled_cpu_backend_equals_eager(tiny_checkpoint, torch_seg, rng):
    import shutil

    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("torch.compile on a CPU needs a C++ compiler")
    seg = load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32",
                         compile=True)
    f = rng.integers(0, 4000, (64, 96)).astype(np.uint16)
    np.testing.assert_allclose(seg(f), torch_seg(f), atol=1e-5)
    assert seg.backend.compiled and seg.backend.name.endswith("-compiled")


def test_a_failing_compile_falls_back_to_eager(tiny_checkpoint, torch_seg, rng, monkeypatch,
                                               caplog):
    import logging

    import torch

    def no_compiler(net, **options):
        def compiled(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\ndetails")
        return compiled

    monkeypatch.setattr(torch, "compile", no_compiler)
    seg = load_segmenter(tiny_checkpoint, backend="torch", device="cpu", precision="fp32",
                         compile=True)
    f = rng.integers(0, 4000, (64, 64)).astype(np.uint16)
    with caplog.at_level(logging.WARNING):
        p = seg(f)
    np.testing.assert_allclose(p, torch_seg(f), atol=1e-6)
    assert "torch.compile failed (InvalidCxxCompiler: No working C++ compiler found)" in caplog.text
    assert not seg.backend.compiled and seg.backend_name == "torch-cpu-fp32"
    caplog.clear()
    seg(f)  # said once
    assert "torch.compile failed" not in caplog.text


def test_onnxruntime_threads_do_not_spin_between_frames(tiny_checkpoint, onnx_cache, rng):
    f = rng.integers(0, 4000, (32, 32)).astype(np.uint16)
    for spin, flag in ((False, "0"), (True, "1")):
        seg = load_segmenter(tiny_checkpoint, backend="onnxruntime", device="cpu",
                             cache_dir=onnx_cache, spin=spin)
        seg(f)
        (session, _), = seg.backend._sessions.values()
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == flag
