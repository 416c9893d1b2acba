"""Low-dose denoising: the ``denoise`` model against raw frames, a temporal mean + Gaussian and
BM3D, on the same frames in one run (issue 25).

Test movies at 0.5, 2 and 8 detected counts per background pixel and frame (a counting
detector), from two renderers: ``temstream sim`` (scenarios dispersed, assembly, etching, with
seeds never used in training) and ``benchmarks/independent.py`` (no code shared with the
simulator: Beer-Lambert contrast, a Gaussian-plus-exponential PSF, particles moving by a
random walk). Every method sees frame t and the two before it (frames 2.. of each movie are
scored), and is scored against the noise-free frame (the mean counts) with PSNR and SSIM
(``skimage.metrics``, data range of the noise-free frame):

* ``raw``: frame t;
* ``mean3+gauss``: the mean of the three frames, Gaussian-smoothed with the sigma (px) that
  is best on the truth, chosen per renderer and dose from a grid (an oracle: it favours this
  baseline);
* ``bm3d``: BM3D (``pip install bm3d``) of the Anscombe transform of frame t, back with the
  exact unbiased inverse (Makitalo and Foi 2011); ``bm3d-sum3``: the same on the sum of the
  three frames (Poisson too), divided by three: the same frames the network sees;
* ``denoise``: the network (``--model``).

At the lowest dose each method's output (the network's, the baseline's) is segmented by the
``default`` U-Net and its instances are drawn with their contrast tests weighing the raw frame
or the method's output (what a live run with ``denoise.apply = segment`` does), giving object
F1 at IoU >= 0.5 against each renderer's truth. Speed: ms per
512x512 frame of the network alone, torch on this CPU.

    python benchmarks/eval_denoise.py [--model denoise] [--size 256] [--frames 6]
                                      [--out docs/eval_denoise.md] [--quick]

``--out`` writes the Markdown report; the figure goes to ``docs/denoise.png`` (``--figure``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

COUNTS = (0.5, 2.0, 8.0)
SCENARIOS = ("dispersed", "assembly", "etching")
SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
K = 3
SEED0 = 7100


def sim_movies(counts, size, frames, movies):
    """``temstream sim`` movies at ``counts``: [(raw (N, H, W), clean, labels)]."""
    from temstream.sim import simulate
    from temstream.sim.scenarios import scenario_params
    from temstream.sim.training import counts_to_dose

    out = []
    for k in range(movies):
        scen = SCENARIOS[k % len(SCENARIOS)]
        over = dict(detector="counting", gain=1.0, offset=0.0, read_noise=0.0)
        prm = scenario_params(scen, **over)
        m = simulate(prm, frames=frames, size=size, seed=SEED0 + k, noise_free=True,
                     dose_e_per_A2=counts_to_dose(counts, prm))
        out.append((m.frames.astype(np.float32), m.noise_free, m.labels))
    return out


def independent_movies(counts, size, frames, movies):
    """``benchmarks/independent.py`` movies: particles on a random walk (0.8 px per frame and
    axis), a static background, fresh noise each frame."""
    from independent import random_particles, render

    out = []
    for k in range(movies):
        rng = np.random.default_rng(SEED0 + 100 + k)
        parts = random_particles(rng, (size, size), 12)
        raw, clean, labels = [], [], []
        for t in range(frames):
            f, lab, mean = render((size, size), parts, dose=counts, seed=SEED0 + 100 + k,
                                  noise_seed=SEED0 + 1000 * k + t, return_expected=True)
            raw.append(f.astype(np.float32))
            clean.append(mean)
            labels.append(lab)
            for p in parts:
                p.x += rng.normal(0, 0.8)
                p.y += rng.normal(0, 0.8)
                p.angle += rng.normal(0, 0.05)
        out.append((np.stack(raw), np.stack(clean), np.stack(labels)))
    return out


def anscombe_bm3d(x: np.ndarray) -> np.ndarray:
    """BM3D of the Anscombe transform of Poisson counts ``x`` (sigma 1), back with the exact
    unbiased inverse's closed-form approximation (Makitalo and Foi 2011)."""
    import bm3d

    a = 2.0 * np.sqrt(np.maximum(x, 0) + 3.0 / 8.0)
    d = np.maximum(bm3d.bm3d(a.astype(np.float32), 1.0), 0.8)
    s = np.sqrt(1.5)
    return (0.25 * d ** 2 + 0.25 * s / d - 1.375 / d ** 2 + 0.625 * s / d ** 3
            - 0.125).astype(np.float32)


def windows(raw):
    """Causal windows (N - K + 1, K, H, W) of frames K - 1 .. N - 1."""
    return np.stack([raw[t - K + 1:t + 1] for t in range(K - 1, len(raw))])


def metrics(pred, clean):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = float(clean.max() - clean.min()) or 1.0
    return (peak_signal_noise_ratio(clean, pred, data_range=rng),
            structural_similarity(clean, pred, data_range=rng))


def run_set(movies, den, with_bm3d):
    """Outputs and per-frame (PSNR, SSIM) of every method on one (renderer, dose) set."""
    import cv2

    outs = {m: [] for m in ("raw", "mean3+gauss", "bm3d", "bm3d-sum3", "denoise")}
    clean_all, raw_all, lab_all = [], [], []
    for raw, clean, labels in movies:
        win = windows(raw)
        clean_all.append(clean[K - 1:])
        raw_all.append(raw[K - 1:])
        lab_all.append(labels[K - 1:])
        outs["raw"].append(raw[K - 1:])
        outs["mean3+gauss"].append(win.mean(1))
        outs["denoise"].append(den.predict_batch(win))
        if with_bm3d:
            outs["bm3d"].append(np.stack([anscombe_bm3d(w[-1]) for w in win]))
            outs["bm3d-sum3"].append(np.stack([anscombe_bm3d(w.sum(0)) / K for w in win]))
    outs = {k: np.concatenate(v) for k, v in outs.items() if v}
    clean = np.concatenate(clean_all)
    # the baseline's sigma is chosen on the truth: the best mean PSNR over the grid
    best = None
    for s in SIGMAS:
        sm = outs["mean3+gauss"] if s == 0 else np.stack(
            [cv2.GaussianBlur(f, (0, 0), s, borderType=cv2.BORDER_REFLECT)
             for f in outs["mean3+gauss"]])
        psnr = np.mean([metrics(p, c)[0] for p, c in zip(sm, clean)])
        if best is None or psnr > best[0]:
            best = (psnr, s, sm)
    outs["mean3+gauss"] = best[2]
    scores = {k: np.array([metrics(p, c) for p, c in zip(v, clean)]) for k, v in outs.items()}
    return outs, scores, best[1], clean, np.concatenate(raw_all), np.concatenate(lab_all)


def object_f1(model, frames, raw, labels):
    """Pooled object F1 (IoU >= 0.5) of ``model`` segmenting ``frames``, instances drawn with
    ``raw`` (the frames whose contrast the evidence test weighs: the raw ones, or ``frames``
    themselves, as the live pipeline does with ``denoise.apply = segment``)."""
    from temstream.models.metrics import match_objects

    tp = fp = fn = 0
    for k in range(0, len(frames), 4):
        probs = model.segmenter.predict_batch(frames[k:k + 4])
        for p, r, lab in zip(probs, raw[k:k + 4], labels[k:k + 4]):
            m = match_objects(model.instances(p, r)[0], lab)
            tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
    return 2 * tp / max(2 * tp + fp + fn, 1)


def speed_ms(den, threads_list=(1, 2), size=512, reps=10):
    import torch

    rng = np.random.default_rng(0)
    win = rng.poisson(2.0, (K, size, size)).astype(np.float32)
    out = {}
    before = torch.get_num_threads()
    for n in threads_list:
        torch.set_num_threads(n)
        den.predict_window(win)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            den.predict_window(win)
            ts.append(time.perf_counter() - t0)
        out[n] = 1e3 * float(np.median(ts))
    torch.set_num_threads(before)
    return out


def figure(path, examples):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 4, figsize=(12, 3.1 * len(examples)))
    for row, (title, panels) in zip(np.atleast_2d(axes), examples):
        lo, hi = np.percentile(panels[-1][1], [1, 99])
        for ax, (name, img) in zip(row, panels):
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{title}: {name}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="denoise")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=6, help="frames per movie (scored: 3..)")
    p.add_argument("--movies", type=int, default=3, help="temstream sim movies per dose")
    p.add_argument("--independent", type=int, default=2, help="independent movies per dose")
    p.add_argument("--no-bm3d", action="store_true")
    p.add_argument("--out", default=None, help="Markdown report to write")
    p.add_argument("--figure", default="docs/denoise.png")
    p.add_argument("--quick", action="store_true", help="128 px, 4 frames, one movie each")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.frames, args.movies, args.independent = 128, 4, 1, 1
    from temstream.config import load_config
    from temstream.evaluation import load_model
    from temstream.models.denoise import load_denoiser

    with_bm3d = not args.no_bm3d
    if with_bm3d:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            print("bm3d is not installed (pip install bm3d): its columns are left out")
            with_bm3d = False
    t_start = time.perf_counter()
    den = load_denoiser(args.model)
    seg = load_model("default", load_config())
    lines, f1_rows, examples = [], [], []
    renderers = {"temstream sim": lambda c: sim_movies(c, args.size, args.frames, args.movies),
                 "independent": lambda c: independent_movies(c, args.size, args.frames,
                                                             args.independent)}
    for rname, make in renderers.items():
        for counts in COUNTS:
            movies = make(counts)
            outs, scores, sigma, clean, raw, labels = run_set(movies, den, with_bm3d)
            for meth, sc in scores.items():
                note = f" (sigma {sigma:g} px)" if meth == "mean3+gauss" else ""
                lines.append(f"| {rname} | {counts:g} | {meth}{note} | {sc[:, 0].mean():.2f} | "
                             f"{sc[:, 1].mean():.3f} | {len(sc)} |")
            if counts == COUNTS[0]:
                for drawn in ("raw", "output"):
                    f1 = {meth: object_f1(seg, o, raw if drawn == "raw" else o, labels)
                          for meth, o in outs.items()}
                    f1["noise-free"] = object_f1(seg, clean, raw if drawn == "raw" else clean,
                                                 labels)
                    f1_rows.append((f"{rname}, instances on the {drawn} frame", f1))
            if counts in (0.5, 2.0):
                examples.append((f"{rname}, {counts:g} counts/px", [
                    ("noisy", raw[0]), ("mean3+gauss", outs["mean3+gauss"][0]),
                    ("denoise", outs["denoise"][0]), ("noise-free", clean[0])]))
            print(f"{rname} {counts:g}: done ({time.perf_counter() - t_start:.0f} s)",
                  flush=True)
    speed = speed_ms(den)
    text = report(args, lines, f1_rows, speed, with_bm3d, den,
                  time.perf_counter() - t_start)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.figure:
        figure(args.figure, examples)
    return 0


def report(args, lines, f1_rows, speed, with_bm3d, den, seconds) -> str:
    import torch

    cmd = "python benchmarks/eval_denoise.py" + (" --quick" if args.quick else "") + \
        (f" --out {args.out}" if args.out else "")
    methods = list(f1_rows[0][1]) if f1_rows else []
    out = [
        "# Low-dose denoising: evaluation", "",
        f"Made by `{cmd}` in {seconds:.0f} s (model `{args.model}`, "
        f"{den.card.extra.get('parameters', '?')} parameters; {args.size} px frames, "
        f"{args.frames} per movie, frames 3.. scored; {args.movies} `temstream sim` movies "
        f"(scenarios {', '.join(SCENARIOS[:args.movies])}) and {args.independent} independent "
        f"ones per dose; counting detector). "
        + ("" if with_bm3d else "BM3D was not installed: its rows are missing. ")
        + "`mean3+gauss`'s sigma is chosen on the truth (an oracle).", "",
        "PSNR (dB) and SSIM against the noise-free frame, means over the scored frames:", "",
        "| renderer | counts/px/frame | method | PSNR | SSIM | frames |", "|---|---|---|---|---|---|",
        *lines, "",
        f"Object F1 (IoU >= 0.5) of the `default` segmenter at {COUNTS[0]:g} counts/px on each "
        "method's output; its instances' evidence test (`instances.min_contrast_z`) weighs the "
        "raw frame or the method's output (what the live pipeline does with "
        "`denoise.apply = segment`):", "",
        "| renderer, evidence from | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|",
        *[f"| {r} | " + " | ".join(f"{f[m]:.3f}" for m in methods) + " |" for r, f in f1_rows],
        "",
        "Speed of the network alone, one 512x512 frame (3-frame window), torch "
        f"{torch.__version__} on this CPU: "
        + ", ".join(f"{v:.0f} ms with {n} thread{'s' if n > 1 else ''}"
                    for n, v in speed.items()) + ".", ""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
