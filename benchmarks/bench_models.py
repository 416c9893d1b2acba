"""Segmentation speed: ms/frame per backend and frame size, against plain PyTorch.

Plain script (no pytest). Prints Markdown tables. The peer is plain PyTorch eager fp32 in the
default NCHW layout under ``torch.no_grad`` on the same network, measured in the same run;
"speed-up" is peer time / backend time. Variants are interleaved round-robin (``--rounds``
rounds of ``--calls`` calls each) and the median per call is reported, so load from other
processes hits all variants alike.

    python benchmarks/bench_models.py                       # CPU table, GPU table if CUDA
    python benchmarks/bench_models.py --sizes 256 512 --rounds 5 --model default
    python benchmarks/bench_models.py --sizes 512 --tta 4 8        # test-time augmentation cost
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import numpy as np


def _frames(size, n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.poisson(800, (n, size, size)).astype(np.uint16)


def _peer(model, torch):
    """Plain PyTorch: eager fp32, NCHW, no_grad, normalisation included."""
    net = model.eval()

    def run(frame):
        with torch.no_grad():
            x = torch.from_numpy(frame.astype(np.float32))[None, None]
            return net(x).numpy()

    return run


def _unfolded(model, torch):
    """The torch backend's path without the batch-norm folding: channels_last fp32 under
    inference_mode, normalisation included (what the backend ran before folding)."""
    net = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)

    def run(frame):
        with torch.inference_mode():
            x = torch.from_numpy(frame.astype(np.float32))[None, None]
            return net(x.contiguous(memory_format=torch.channels_last)).numpy()

    return run


def measure(variants: dict, frames, rounds: int, calls: int) -> dict:
    """Median seconds per call for each variant, interleaved round-robin."""
    times = {k: [] for k in variants}
    for fn in variants.values():  # warm-up (exports, sessions, graph capture, autotuning)
        fn(frames[0])
        fn(frames[1])
    for _ in range(rounds):
        for k, fn in variants.items():
            for i in range(calls):
                t = time.perf_counter()
                fn(frames[i % len(frames)])
                times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def cpu_section(args, model, card, torch):
    from temstream.models import load_segmenter
    from temstream.models.backends import cpu_has_amx_bf16, make_backend
    from temstream.models.segmenter import UNetSegmenter

    def seg(backend, tta=1, **kw):
        return UNetSegmenter(model, card, make_backend(backend, model, card, device="cpu", **kw),
                             tile=4096, tta=tta)

    variants = {
        "plain PyTorch (peer: eager fp32 NCHW)": _peer(model, torch),
        "torch fp32 channels_last, BN not folded": _unfolded(model, torch),
        "torch fp32 channels_last, BN folded": seg("torch", precision="fp32"),
        "onnxruntime CPU EP (uint16 in, fp32)": seg("onnxruntime"),
    }
    if cpu_has_amx_bf16():
        variants["torch bf16 autocast (AMX)"] = seg("torch", precision="bf16")
    if args.compile:
        variants["torch.compile fp32 (Inductor freezing)"] = seg("torch", precision="fp32",
                                                                 compile=True)
    tta_name = "torch fp32 channels_last, tta={} (replay)".format
    for n in args.tta:
        variants[tta_name(n)] = seg("torch", tta=n, precision="fp32")
    variants["classical (baseline, not a U-Net)"] = load_segmenter("classical")
    auto = load_segmenter(args.model if card.sha256 else "classical", backend="auto",
                          device="cpu") if card.sha256 else None
    print(f"\n### CPU: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, AMX bf16: {cpu_has_amx_bf16()}, "
          f"auto backend -> {auto.backend_name if auto else 'n/a'}\n")
    print("| backend | " + " | ".join(f"{s}² ms/frame (fps) | speed-up" for s in args.sizes) + " |")
    print("|---|" + "---|---|" * len(args.sizes))
    results = {}
    for s in args.sizes:
        results[s] = measure(variants, _frames(s), args.rounds, args.calls)
    peer = next(iter(variants))
    for k in variants:
        cells = []
        for s in args.sizes:
            t = results[s][k]
            cells.append(f"{t * 1e3:.1f} ({1 / t:.1f}) | {results[s][peer] / t:.2f}×")
        print(f"| {k} | " + " | ".join(cells) + " |")
    single = "torch fp32 channels_last, BN folded"
    for n in args.tta:
        print(f"\ntta={n} costs " + ", ".join(
            f"{results[s][tta_name(n)] / (n * results[s][single]):.2f}× of {n} single passes "
            f"at {s}²"
            for s in args.sizes))


def spin_section(args, model, card, torch):
    """What ONNX Runtime's spinning worker threads cost the work that follows them: a torch
    pass timed right after an ONNX Runtime call, spinning (ONNX Runtime's default) or not."""
    from temstream.models.backends import make_backend
    from temstream.models.segmenter import UNetSegmenter

    def seg(backend, **kw):
        return UNetSegmenter(model, card, make_backend(backend, model, card, device="cpu", **kw),
                             tile=4096)

    torch_seg = seg("torch", precision="fp32")
    print("\n### ONNX Runtime thread spinning (torch pass timed right after an ONNX Runtime "
          "call)\n")
    print("| size | ORT spinning: ORT ms | torch ms after it | ORT not spinning: ORT ms | "
          "torch ms after it |")
    print("|---|---|---|---|---|")
    ort = {spin: seg("onnxruntime", spin=spin) for spin in (True, False)}
    for s in args.sizes:
        frames = _frames(s)
        times = {(spin, k): [] for spin in ort for k in ("ort", "torch")}
        for spin in ort:  # warm-up
            ort[spin](frames[0])
        torch_seg(frames[0])
        for _ in range(args.rounds):
            for spin, o in ort.items():
                for i in range(args.calls):
                    t0 = time.perf_counter()
                    o(frames[i % 2])
                    t1 = time.perf_counter()
                    torch_seg(frames[i % 2])
                    t2 = time.perf_counter()
                    times[(spin, "ort")].append(t1 - t0)
                    times[(spin, "torch")].append(t2 - t1)
        cells = [f"{np.median(times[(spin, k)]) * 1e3:.1f}" for spin in (True, False)
                 for k in ("ort", "torch")]
        print(f"| {s}² | " + " | ".join(cells) + " |")


def gpu_section(args, model, card, torch):
    from temstream.models.backends import make_backend
    from temstream.models.segmenter import UNetSegmenter

    def seg(tta=1, **kw):
        return UNetSegmenter(model, card, make_backend("torch", model, card, device="cuda", **kw),
                             tile=8192, tta=tta)

    def timed(fn):
        def run(frame):
            out = fn(frame)
            torch.cuda.synchronize()
            return out
        return run

    variants = {
        "torch CUDA eager fp32 (peer)": timed(seg(precision="fp32", cuda_graphs=False)),
        "torch CUDA fp16 channels_last": timed(seg(precision="fp16", cuda_graphs=False)),
        "torch CUDA fp16 + CUDA graphs": timed(seg(precision="fp16", cuda_graphs=True)),
        **{f"torch CUDA fp16 + CUDA graphs, tta={n}": timed(seg(n, precision="fp16",
                                                                cuda_graphs=True))
           for n in args.tta},
    }
    sizes = args.gpu_sizes
    print(f"\n### GPU: {torch.cuda.get_device_name()} (end to end: host uint16 frame -> "
          "host probabilities)\n")
    print("| backend | " + " | ".join(f"{s}² ms/frame (fps) | speed-up" for s in sizes) + " |")
    print("|---|" + "---|---|" * len(sizes))
    res = {s: measure(variants, _frames(s), args.rounds, args.calls) for s in sizes}
    peer = next(iter(variants))
    for k in variants:
        print(f"| {k} | " + " | ".join(
            f"{res[s][k] * 1e3:.2f} ({1 / res[s][k]:.0f}) | {res[s][peer] / res[s][k]:.2f}×"
            for s in sizes) + " |")
    # device-only throughput (frames already on the GPU, batch 1, graphs): the compute ceiling
    print("\n| device-only, batch 1, fp16 + graphs | " + " | ".join(f"{s}²" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    cells = []
    for s in sizes:
        be = make_backend("torch", model, card, device="cuda", precision="fp16", cuda_graphs=True)
        x = torch.rand(1, 1, s, s, device="cuda") * 1000
        st = be.stats(x)
        for _ in range(3):
            be.run(x, st)
        torch.cuda.synchronize()
        n = max(10, int(2e8 // (s * s)))
        t = time.perf_counter()
        for _ in range(n):
            be.run(x, st)
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / n
        cells.append(f"{dt * 1e3:.3f} ms ({1 / dt:.0f} fps)")
    print("| ms/frame | " + " | ".join(cells) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="model name or checkpoint")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--gpu-sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--tta", type=int, nargs="*", default=[4, 8], choices=[2, 4, 8],
                    help="test-time augmentation variants to time (torch, CPU and GPU)")
    ap.add_argument("--compile", action="store_true", help="include torch.compile (slow start)")
    ap.add_argument("--no-gpu", action="store_true")
    ap.add_argument("--spin-check", action="store_true",
                    help="also time torch right after ONNX Runtime, its threads spinning or not")
    ap.add_argument("--quick", action="store_true",
                    help="256² and 512² only, 2 rounds of 2 calls, no tta (for temstream bench)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.rounds, args.calls, args.tta = [256, 512], 2, 2, []
        args.gpu_sizes = [512, 1024]
    import torch

    from temstream.models.arch import preset
    from temstream.models.checkpoints import CheckpointError, ModelCard, load_checkpoint
    from temstream.models.unet import build_unet, count_parameters

    try:
        model, card = load_checkpoint(args.model)
    except CheckpointError:
        print(f"(no checkpoint {args.model!r}: timing the untrained 'default' architecture)")
        model = build_unet(preset("default")).eval()
        card = ModelCard("default-untrained", preset("default"))
    print(f"## Segmentation speed: model {card.name!r}, {count_parameters(model):,} parameters, "
          f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    cpu_section(args, model, card, torch)
    if args.spin_check:
        spin_section(args, model, card, torch)
    if torch.cuda.is_available() and not args.no_gpu:
        gpu_section(args, model, card, torch)
    else:
        print("\n(GPU section skipped: no CUDA device)")


if __name__ == "__main__":
    main()
