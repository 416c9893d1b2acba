"""ONNX Runtime backend: the exported graph (normalisation inside), CPU or GPU providers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from temstream.models.prep import frame_stats_np, pad_frames

log = logging.getLogger(__name__)


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where exported ONNX files and TensorRT engines are kept.

    ``explicit``, else ``$TEMSTREAM_CACHE``, else ``$XDG_CACHE_HOME/temstream`` (``~/.cache``).
    """
    if explicit:
        return Path(explicit)
    if os.environ.get("TEMSTREAM_CACHE"):
        return Path(os.environ["TEMSTREAM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "temstream"


def onnx_for(model, card, *, precision: str = "fp32", input_dtype: str = "uint16",
             graph_stats: bool = True, cache: str | os.PathLike | None = None) -> Path:
    """The cached ONNX export of ``model`` (exported on first use), keyed by weights hash."""
    from temstream.models.export import export_onnx

    key = (card.sha256 or "unhashed")[:16]
    tag = "" if graph_stats else "-givenstats"
    path = cache_dir(cache) / "onnx" / f"{card.name}-{key}-{precision}-{input_dtype}{tag}.onnx"
    if not path.exists() or not card.sha256:
        export_onnx(model, path, precision=precision, input_dtype=input_dtype,
                    graph_stats=graph_stats)
    return path


class OrtBackend:
    """Run the exported ONNX graph with ONNX Runtime.

    Parameters
    ----------
    model : UNet
        Network (exported once per input dtype, cached by weights hash).
    card : ModelCard
        Its card.
    device : str
        ``cpu``, or ``cuda[:N]`` (needs onnxruntime-gpu: CUDA provider).
    threads : int or None
        ``intra_op_num_threads`` (default: all cores).
    cache_dir : path, optional
        Export cache (see :func:`cache_dir`).
    spin : bool
        Let idle worker threads spin-wait for the next call (ONNX Runtime's default). Off here:
        spinning threads keep the cores busy between frames and slow down everything else in
        the process (on 2 cores, torch passes right after an ONNX Runtime call ran 1.6-2x
        slower), while ONNX Runtime itself measured no faster with it.
    """

    def __init__(self, model, card, *, device: str = "cpu", threads: int | None = None,
                 cache_dir: str | os.PathLike | None = None, spin: bool = False):
        import onnxruntime as ort

        self.model, self.card, self.cache = model, card, cache_dir
        self.config = model.config
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("onnxruntime has no CUDA provider here: install "
                                   "onnxruntime-gpu, or use backend='torch' on the GPU")
            idx = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": idx})] + providers
        self.providers = providers
        self.options = ort.SessionOptions()
        self.options.intra_op_num_threads = threads or os.cpu_count() or 1
        self.options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.options.add_session_config_entry("session.intra_op.allow_spinning",
                                              "1" if spin else "0")
        self._sessions: dict = {}
        self.name = "onnxruntime-" + ("cuda" if device.startswith("cuda") else "cpu")

    def _session(self, dtype: np.dtype):
        import onnxruntime as ort

        kind = {np.dtype(np.uint16): "uint16", np.dtype(np.uint8): "uint8"}.get(np.dtype(dtype),
                                                                               "float32")
        if kind not in self._sessions:
            path = onnx_for(self.model, self.card, input_dtype=kind, cache=self.cache)
            self._sessions[kind] = (ort.InferenceSession(str(path), self.options,
                                                         providers=self.providers), kind)
        return self._sessions[kind]

    def upload(self, a: np.ndarray) -> np.ndarray:
        return a

    def download(self, p: np.ndarray) -> np.ndarray:
        return p

    def pad(self, x: np.ndarray, multiple: int) -> np.ndarray:
        return pad_frames(x, multiple)

    def stats(self, x: np.ndarray) -> np.ndarray:
        return frame_stats_np(x, self.config.median_prefilter)

    def run(self, x: np.ndarray, stats: np.ndarray) -> np.ndarray:
        session, kind = self._session(x.dtype)
        x = np.ascontiguousarray(x, dtype=kind)
        return session.run(["probs"], {"frames": x, "stats": np.ascontiguousarray(stats,
                                                                              np.float32)})[0]
