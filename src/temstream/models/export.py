"""ONNX export of a U-Net with the normalisation inside the graph.

The exported graph has two inputs and one output:

- ``frames``: (B, 1, H, W) raw counts, uint16 (fp32 export) or float16 (fp16 export, for
  TensorRT, which has no uint16), H and W multiples of ``2**depth``;
- ``stats``: (B, 2) float32 centre and scale from :func:`temstream.models.unet.frame_stats`;
  rows whose scale is <= 0 (e.g. all zeros) make the graph compute them from ``frames``;
- ``probs``: (B, C, H, W) float32 class probabilities (softmax).

Batch, height and width are dynamic.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def export_onnx(model, path: str | Path, *, precision: str = "fp32", input_dtype: str = "uint16",
                graph_stats: bool = True, opset: int = 18, example_size: int = 64) -> Path:
    """Write ``model`` as one self-contained ONNX file.

    Parameters
    ----------
    model : temstream.models.unet.UNet
        Network (put in eval mode and moved to CPU here; the caller's module is not changed).
    path : str or Path
        Output file (``.onnx``); written atomically.
    precision : {"fp32", "fp16"}
        ``fp32``: float32 weights (ONNX Runtime CPU). ``fp16``: float16 convolutions with float32
        normalisation and softmax (TensorRT strongly typed networks take their precision from
        the graph).
    input_dtype : {"uint16", "float32", "uint8"}
        Element type of ``frames``. TensorRT has no uint16: use ``float32`` there (counts up to
        65535 are exact in float32, not in float16).
    graph_stats : bool
        True: rows of ``stats`` with scale <= 0 are computed in the graph (a sort of the
        subsampled frame). False: ``stats`` are required and used as given (no TopK; for
        TensorRT, whose TopK is limited to K <= 3840).
    opset : int
        ONNX opset.
    example_size : int
        Edge (px) of the dummy frame used to trace; any multiple of ``2**depth``.

    Returns
    -------
    Path
        ``path``.
    """
    import copy

    import torch

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"precision must be 'fp32' or 'fp16', not {precision!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval().float()
    net.stats_fallback = bool(graph_stats)
    mult = net.config.multiple
    size = max(example_size // mult, 2) * mult
    dtypes = {"uint16": torch.uint16, "float32": torch.float32, "uint8": torch.uint8}
    if input_dtype not in dtypes:
        raise ValueError(f"input_dtype must be one of {sorted(dtypes)}, not {input_dtype!r}")
    if precision == "fp16":
        net = net.half()  # forward keeps normalisation and softmax in float32
    frames = torch.zeros(1, 1, size, size, dtype=dtypes[input_dtype])
    stats = torch.zeros(1, 2, dtype=torch.float32)
    tmp = path.with_suffix(".onnx.part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = torch.export.Dim("batch", min=1, max=256)
        auto = torch.export.Dim.AUTO
        program = torch.onnx.export(
            net, (frames, stats), dynamo=True, opset_version=opset, verbose=False,
            input_names=["frames", "stats"], output_names=["probs"],
            dynamic_shapes=({0: batch, 2: auto, 3: auto}, {0: batch}),
        )
        program.save(str(tmp), external_data=False)
    tmp.replace(path)
    log.info("exported %s (%s) to %s", type(model).__name__, precision, path)
    return path
