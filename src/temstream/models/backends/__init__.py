"""Inference backends behind one interface.

A backend wraps one network and runs padded raw frames to probabilities::

    backend.name                      # e.g. "torch-cpu-fp32", "onnxruntime-cpu", "tensorrt-fp16"
    backend.stats(x)  -> (B, 2)       # whole-frame normalisation statistics
    backend.run(x, stats) -> probs    # x (B, 1, H, W) raw, H, W multiples of 2**depth
    backend.upload(a) / download(p)   # numpy <-> the backend's array type

``make_backend("auto", ...)`` picks the fastest available: TensorRT, then torch CUDA on a GPU;
torch on a CPU (channels_last fp32, bf16 autocast with AMX), which measured 1.2-1.45x faster than
ONNX Runtime's CPU provider at 256^2-1024^2 on a 2-core AVX-512 Xeon (benchmarks/bench_models.py).
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


@lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """True where /proc/cpuinfo lists ``amx_bf16`` (bf16 matrix units: bf16 pays off)."""
    try:
        return " amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def cuda_available() -> bool:
    """True if torch sees a CUDA device (imports torch)."""
    import torch

    return torch.cuda.is_available()


def tensorrt_available() -> bool:
    """TensorRT importable and a CUDA device present (never constructs a Runtime otherwise)."""
    return importlib.util.find_spec("tensorrt") is not None and cuda_available()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is checked."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise RuntimeError(f"device {device!r} requested but torch sees no CUDA GPU; "
                           "use device='cpu' (or 'auto')")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {device!r}")
    return device


def choose_backend(backend: str, device: str) -> str:
    """The concrete backend name for ``backend`` on ``device`` (``auto`` resolved)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if backend != "auto":
        return backend
    if device.startswith("cuda"):
        return "tensorrt" if tensorrt_available() else "torch"
    return "torch"


def make_backend(backend: str, model, card, *, device: str = "auto", **options):
    """Build a backend for a loaded U-Net.

    Parameters
    ----------
    backend : {"auto", "torch", "onnxruntime", "tensorrt"}
        Which runtime.
    model : temstream.models.unet.UNet
        The network (CPU, eval mode).
    card : temstream.models.checkpoints.ModelCard
        Its card (the ONNX/engine cache is keyed by ``card.sha256``).
    device : str
        ``auto``, ``cpu`` or ``cuda[:N]``.
    **options
        Backend-specific: ``precision`` (torch: ``auto|fp32|bf16|fp16``), ``cuda_graphs``,
        ``compile`` (torch), ``threads`` (CPU threads: onnxruntime's session; torch's
        process-wide intra-op pool), ``cache_dir`` (onnxruntime, tensorrt).
    """
    device = resolve_device(device)
    name = choose_backend(backend, device)
    if name == "torch":
        from temstream.models.backends.torch_backend import TorchBackend
        return TorchBackend(model, device=device, **options)
    if name == "onnxruntime":
        from temstream.models.backends.ort_backend import OrtBackend
        return OrtBackend(model, card, device=device, **options)
    from temstream.models.backends.trt_backend import TensorRTBackend
    return TensorRTBackend(model, card, device=device, **options)
