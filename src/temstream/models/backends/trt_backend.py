"""TensorRT backend (10.x and 11.x): strongly typed fp16 engine built from the ONNX export.

Not verified on hardware in this project (TensorRT could not be installed where the code was
written); it follows the TensorRT 10/11 Python API: no ``EXPLICIT_BATCH``, ``STRONGLY_TYPED`` set
on 10.x only (default and ignored on 11.x), fp16 carried by the ONNX graph itself, name-based
tensors and ``execute_async_v3`` on torch CUDA tensors and torch's current stream.

Engines are built lazily, one per input shape (min = opt = max profile), and cached on disk under
``<cache>/trt/`` keyed by TensorRT version, GPU name and compute capability, ONNX sha256,
precision and shape; the timing cache is kept next to them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from temstream.models.backends.ort_backend import cache_dir, onnx_for
from temstream.models.backends.torch_backend import TorchTensorIO
from temstream.models.checkpoints import sha256_file

log = logging.getLogger(__name__)


def _trt():
    if not torch.cuda.is_available():
        raise RuntimeError("TensorRT needs a CUDA GPU and torch sees none; use backend='torch' "
                           "or 'onnxruntime'")
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise RuntimeError(f"TensorRT is not importable ({exc}); install the extra "
                           "`pip install temstream[tensorrt]` matching your CUDA, or use "
                           "backend='torch'") from None
    return trt


class TensorRTBackend(TorchTensorIO):
    """Run a U-Net as a TensorRT engine on torch CUDA tensors.

    Parameters
    ----------
    model : UNet
        Network (exported to fp16 ONNX with float32 frames input, cached).
    card : ModelCard
        Its card.
    device : str
        ``cuda`` or ``cuda:N``.
    cache_dir : path, optional
        ONNX / engine cache root.
    workspace_gib : int
        Builder workspace limit.
    opt_level : int
        ``builder_optimization_level`` (0-5).
    """

    def __init__(self, model, card, *, device: str = "cuda", cache_dir: str | None = None,
                 workspace_gib: int = 4, opt_level: int = 3, threads: int | None = None):
        del threads  # segment.threads is for CPU runtimes: the engine runs on the GPU
        trt = _trt()
        if not device.startswith("cuda"):
            raise ValueError("backend='tensorrt' runs on a GPU: pass device='cuda'")
        self.trt = trt
        self.device = torch.device(device)
        torch.cuda.set_device(self.device)
        torch.cuda.init()
        self.config = model.config
        self.cache = cache_dir
        self.onnx = onnx_for(model, card, precision="fp16", input_dtype="float32",
                             graph_stats=False, cache=cache_dir)
        self.onnx_sha = sha256_file(self.onnx)
        self.workspace_gib, self.opt_level = workspace_gib, opt_level
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)  # only constructed with CUDA present
        self._contexts: dict = {}
        self.name = f"tensorrt{trt.__version__.split('.')[0]}-fp16"

    # -- engine cache -----------------------------------------------------------------------
    def _key(self, shape) -> str:
        props = torch.cuda.get_device_properties(self.device)
        raw = "|".join([self.trt.__version__, props.name, f"{props.major}.{props.minor}",
                        self.onnx_sha, "fp16", "x".join(map(str, shape))])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def _build(self, shape) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        flags = 0
        if int(trt.__version__.split(".")[0]) < 11:  # opt-in on 10.x; default (ignored) on 11.x
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(self.onnx)):
            errors = "\n".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {self.onnx}:\n{errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_gib << 30)
        config.builder_optimization_level = self.opt_level
        profile = builder.create_optimization_profile()
        B = shape[0]
        profile.set_shape("frames", shape, shape, shape)
        profile.set_shape("stats", (B, 2), (B, 2), (B, 2))
        config.add_optimization_profile(profile)
        tc_path = self._dir() / f"timing-{self.trt.__version__}.cache"
        cache = config.create_timing_cache(tc_path.read_bytes() if tc_path.exists() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"TensorRT failed to build an engine for shape {shape}")
        tc_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
        return bytes(memoryview(plan))

    def _dir(self) -> Path:
        d = cache_dir(self.cache) / "trt"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _context(self, shape):
        shape = tuple(int(s) for s in shape)
        if shape in self._contexts:
            return self._contexts[shape]
        path = self._dir() / f"{self._key(shape)}.engine"
        engine = None
        if path.exists():
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                log.warning("cached engine %s could not be deserialised; rebuilding", path)
        if engine is None:
            plan = self._build(shape)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(plan)
            os.replace(tmp, path)
            engine = self.runtime.deserialize_cuda_engine(plan)
            if engine is None:
                raise RuntimeError("TensorRT built an engine it cannot deserialise")
        ctx = engine.create_execution_context()
        ctx.set_input_shape("frames", shape)
        ctx.set_input_shape("stats", (shape[0], 2))
        out_shape = tuple(ctx.get_tensor_shape("probs"))
        self._contexts[shape] = (engine, ctx, out_shape)
        return self._contexts[shape]

    # -- interface --------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        x = x.contiguous().float()
        stats = stats.contiguous().float()
        _, ctx, out_shape = self._context(x.shape)
        out = torch.empty(out_shape, dtype=torch.float32, device=x.device)
        ctx.set_tensor_address("frames", x.data_ptr())
        ctx.set_tensor_address("stats", stats.data_ptr())
        ctx.set_tensor_address("probs", out.data_ptr())
        stream = torch.cuda.current_stream(x.device)
        if not ctx.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return out
