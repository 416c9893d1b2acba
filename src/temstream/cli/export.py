"""``temstream export``: write a model as ONNX (and a TensorRT engine where TensorRT exists), or
(``--layers REC.h5``) a two-layer recording as one movie per layer."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import new_parser


def add_parser(sub):
    parser = new_parser(
        sub, "export", "export a model to ONNX (normalisation inside the graph) or TensorRT",
        "temstream export --model default --out default.onnx\n"
        "  temstream export --layers moire.h5 --out moire_layers",
        description="Export a U-Net as one ONNX file with inputs 'frames' (B,1,H,W; uint16, "
                    "uint8 or float32) and 'stats' (B,2; zeros = computed in the graph) and "
                    "output 'probs' (B,C,H,W), batch/height/width dynamic. --precision fp16 "
                    "gives the float16 graph (float32 frames) that TensorRT strongly typed "
                    "networks need; --engine HxW also builds a TensorRT engine (needs a GPU). "
                    "With --layers REC.h5 (a recording made with a two-layer model) --out is a "
                    "folder that receives each layer's label movie and overlay movie "
                    "(layer_A_labels.tif, layer_A_overlay.tif, ...), its particle table "
                    "(particles_layer_A.csv, ...) and figure.png (input | layer A | layer B).")
    parser.add_argument("--model", default="default", help="model name or checkpoint path")
    parser.add_argument("--out", required=True,
                        help="output .onnx file (with --layers: output folder)")
    parser.add_argument("--layers", metavar="REC.h5", default=None,
                        help="export a two-layer recording as per-layer movies and tables")
    parser.add_argument("--frame", type=int, default=None,
                        help="with --layers: the figure's frame (default: the middle one)")
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--input-dtype", choices=["uint16", "uint8", "float32"], default=None,
                        help="frames element type (default: uint16 for fp32, float32 for fp16)")
    parser.add_argument("--check", action="store_true",
                        help="run the export with ONNX Runtime and compare it with torch")
    parser.add_argument("--engine", metavar="HxW", default=None,
                        help="also build (and cache) a TensorRT engine for this frame size")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    import numpy as np

    if args.layers:
        from temstream.cli.layers_export import export_layers

        for path in export_layers(args.layers, args.out, frame=args.frame):
            print(f"wrote {path}")
        return 0

    from temstream.models.checkpoints import load_checkpoint
    from temstream.models.export import export_onnx

    model, card = load_checkpoint(args.model)
    dtype = args.input_dtype or ("uint16" if args.precision == "fp32" else "float32")
    path = export_onnx(model, args.out, precision=args.precision, input_dtype=dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {args.precision}, frames {dtype})")
    if args.check:
        import onnxruntime as ort
        import torch

        rng = np.random.default_rng()
        x = rng.integers(0, 255 if dtype == "uint8" else 60000, (1, 1, 128, 128)).astype(dtype)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"frames": x, "stats": np.zeros((1, 2), np.float32)})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(x.astype(np.float32))).numpy()
        print(f"max |onnxruntime - torch| = {np.abs(got - want).max():.2e}")
    if args.engine:
        from temstream.models.backends.trt_backend import TensorRTBackend

        h, w = (int(v) for v in args.engine.lower().split("x"))
        be = TensorRTBackend(model, card, device="cuda")
        be._context((1, 1, h, w))
        print(f"TensorRT engine for {h}x{w} cached under {Path(be._dir())}")
    return 0
