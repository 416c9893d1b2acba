"""PyTorch backend: CPU (channels_last, bf16 autocast with AMX, optional ``torch.compile``)
and CUDA (fp16, CUDA graphs)."""

from __future__ import annotations

import contextlib
import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F

from temstream.models.backends import cpu_has_amx_bf16
from temstream.models.unet import fold_batchnorm, frame_stats, median3x3

log = logging.getLogger(__name__)


class TorchTensorIO:
    """Frame transfer and statistics shared by the backends that compute on torch tensors
    (they set ``self.device`` and ``self.config``)."""

    def upload(self, a: np.ndarray) -> torch.Tensor:
        """(B, 1, H, W) numpy -> float32 tensor on the device (uint16 converted there)."""
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # frames decoded from messages or files are read-only;
            a = a.copy()           # torch warns on those (a 0.5 MB copy at 512², ~0.1 % of a pass)
        if a.dtype == np.uint16:  # torch has no uint16 arithmetic: view as int16, widen, mask
            t = torch.from_numpy(a.view(np.int16)).to(self.device)
            return (t.to(torch.int32) & 0xFFFF).to(torch.float32)
        return torch.from_numpy(a).to(self.device).to(torch.float32)

    def download(self, p: torch.Tensor) -> np.ndarray:
        return p.float().cpu().numpy()

    def pad(self, x: torch.Tensor, multiple: int) -> torch.Tensor:
        """Pad H and W at the far edges up to a multiple of ``multiple`` (reflect when possible)."""
        H, W = x.shape[-2:]
        ph, pw = -H % multiple, -W % multiple
        if ph == 0 and pw == 0:
            return x
        mode = "reflect" if ph < H and pw < W else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    @torch.inference_mode()
    def stats(self, x: torch.Tensor) -> torch.Tensor:
        """Whole-frame statistics (B, 2), after the median prefilter if the model has one
        (``self.config`` is the model's architecture)."""
        if self.config.median_prefilter:
            x = median3x3(x)
        return frame_stats(x)


class TorchBackend(TorchTensorIO):
    """Run a :class:`~temstream.models.unet.UNet` with torch.

    Parameters
    ----------
    model : UNet
        Network (copied; the caller's module is untouched).
    device : str
        ``cpu`` or ``cuda[:N]``.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``auto``: fp16 on CUDA, bf16 autocast on a CPU with AMX, else fp32.
    cuda_graphs : bool
        On CUDA, capture one CUDA graph per input shape and replay it (removes the launch cost
        of the ~40 kernels of a forward pass; worth it for small frames).
    compile : bool
        Wrap the network in ``torch.compile`` (on a CPU with Inductor's weight freezing, which
        lets oneDNN pre-pack the convolutions: 1.1-1.4x over eager here). Needs a C++
        compiler; the first call per frame shape takes seconds (cached on disk by torch). If
        compilation fails the backend says so once and runs eager.

    Notes
    -----
    Batch norms are folded into the convolutions (:func:`~temstream.models.unet.fold_batchnorm`)
    before anything else: the same outputs to float32 rounding, one pass less per layer.
    """

    def __init__(self, model, *, device: str = "cpu", precision: str = "auto",
                 cuda_graphs: bool = True, compile: bool = False, threads: int | None = None):
        if threads:  # process-wide: torch has one intra-op pool (segment.threads)
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if precision == "auto":
            precision = "fp16" if cuda else ("bf16" if cpu_has_amx_bf16() else "fp32")
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {precision!r}")
        if precision == "fp16" and not cuda:
            raise ValueError("fp16 is for CUDA; on a CPU use precision='bf16' (with AMX) or 'fp32'")
        self.precision = precision
        self.config = model.config
        net = fold_batchnorm(copy.deepcopy(model).eval()).to(self.device)
        if precision == "fp16":
            net = net.half()  # forward keeps normalisation and softmax in float32
        self.net = net.to(memory_format=torch.channels_last)
        self.autocast = precision == "bf16" and not cuda
        self.cuda_graphs = bool(cuda_graphs and cuda)
        self._graphs: dict = {}
        self._eager = self.net
        self.compiled = bool(compile)
        if compile:
            self.net = torch.compile(self.net, dynamic=False)
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.name = (f"torch-{self.device.type}-{precision}"
                     + ("-compiled" if self.compiled else "")
                     + ("-graphs" if self.cuda_graphs else ""))

    # -- compute ----------------------------------------------------------------------------
    @torch.inference_mode()
    def run(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) float32 raw + (B, 2) stats -> (B, C, H, W) float32 probabilities."""
        if self.cuda_graphs:
            return self._run_graph(x, stats)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            return self._forward(x.contiguous(memory_format=torch.channels_last), stats).float()

    def _forward(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        if not self.compiled:
            return self.net(x, stats)
        try:
            with self._compile_settings():
                return self.net(x, stats)
        except Exception as exc:  # no C++ compiler, an unsupported op...: eager always works
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("torch.compile failed (%s); running eager", first[:200])
            self.net, self.compiled = self._eager, False
            self.name = self.name.replace("-compiled", "")
            return self.net(x, stats)

    def _compile_settings(self):
        """Inductor settings in force while the compiled network runs (and compiles): weight
        freezing on a CPU (constant-folds the weights into pre-packed oneDNN convolutions)."""
        if self.device.type != "cpu":
            return contextlib.nullcontext()
        import torch._inductor.config as inductor_config

        return inductor_config.patch(freezing=True)

    def _run_graph(self, x: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.device)
        entry = self._graphs.get(key)
        if entry is None:
            static_x = x.clone().contiguous(memory_format=torch.channels_last)
            static_s = stats.clone()
            stream = torch.cuda.Stream(device=x.device)
            stream.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up: cuDNN autotuning and allocator, outside capture
                    self.net(static_x, static_s)
            torch.cuda.current_stream(x.device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.net(static_x, static_s)
            entry = self._graphs[key] = (graph, static_x, static_s, static_out)
            log.debug("captured a CUDA graph for %s", key)
        graph, static_x, static_s, static_out = entry
        static_x.copy_(x)
        static_s.copy_(stats)
        graph.replay()
        return static_out.clone()
