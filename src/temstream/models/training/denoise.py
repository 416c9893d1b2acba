"""Training the denoiser on simulated windows against the simulator's noise-free frames.

Supervised: the loss is the squared error to the noise-free frame in units of each window's
own noise (``window_stats``), so that 0.3 and 25 counts/px weigh alike. Windows are kept in a
pool refreshed every step, cropped at random and turned by a random one of the eight
rotations/mirrors (the same for all K frames and the truth). The state with the best mean
PSNR gain over the raw frame on a fixed simulated validation set is kept.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time

import numpy as np

from temstream.models.checkpoints import ModelCard, save_checkpoint

log = logging.getLogger(__name__)


def _augment(window, clean, rng, crop: int):
    """A random crop (``crop`` px) of a window and its truth, in one of 8 orientations."""
    H, W = clean.shape
    y, x = rng.integers(0, H - crop + 1), rng.integers(0, W - crop + 1)
    w, c = window[:, y:y + crop, x:x + crop], clean[y:y + crop, x:x + crop]
    k = int(rng.integers(4))
    w, c = np.rot90(w, k, axes=(1, 2)), np.rot90(c, k)
    if rng.random() < 0.5:
        w, c = w[:, :, ::-1], c[:, ::-1]
    return np.ascontiguousarray(w), np.ascontiguousarray(c)


def psnr_gain(pred: np.ndarray, clean: np.ndarray, raw: np.ndarray) -> float:
    """PSNR gain (dB) of ``pred`` over ``raw``, both against ``clean`` (any equal shapes):
    ``10 log10(MSE(raw) / MSE(pred))``."""
    return float(10 * np.log10(np.mean((raw - clean) ** 2) / max(np.mean((pred - clean) ** 2),
                                                                  1e-12)))


def validate(model, val, torch) -> float:
    """Mean :func:`psnr_gain` over the validation windows ``[(window, clean)]``."""
    model.eval()
    gains = []
    with torch.inference_mode():
        for window, clean in val:
            mult = model.config.multiple
            H, W = clean.shape
            x = np.pad(window, ((0, 0), (0, -H % mult), (0, -W % mult)), mode="reflect")
            pred = model(torch.from_numpy(x[None]))[0, 0, :H, :W].numpy()
            gains.append(psnr_gain(pred, clean, window[-1]))
    return float(np.mean(gains))


def train_denoiser(cfg, windows, val, *, out=None, progress: bool = True,
                   command: str | None = None):
    """Train a denoiser.

    Parameters
    ----------
    cfg : temstream.models.training.train.TrainConfig
        ``arch`` names a :data:`~temstream.models.arch.DENOISE_PRESETS` entry; ``size``,
        ``crop``, ``batch``, ``steps``, ``lr``, ``pool``, ``refresh``, ``eval_every``,
        ``seed``, ``threads`` are used.
    windows : iterator of ((K, S, S) float32, (S, S) float32)
        Endless training stream (:func:`temstream.sim.training.denoise_windows`).
    val : list of ((K, S, S), (S, S))
        Fixed validation windows; they select the best state.
    out : path, optional
        Where to write the checkpoint (``model.safetensors`` + ``model.json``).
    progress : bool
        Show a progress bar.
    command : str, optional
        The command line that reproduces the run, for the card.

    Returns
    -------
    (DenoiseNet, ModelCard)
    """
    import torch
    from tqdm import tqdm

    from temstream.models.arch import DENOISE_PRESETS
    from temstream.models.denoise import build_denoiser, window_stats

    t0 = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.arch not in DENOISE_PRESETS:
        raise ValueError(f"task 'denoise' needs a denoiser architecture "
                         f"{sorted(DENOISE_PRESETS)}, not {cfg.arch!r}")
    arch = DENOISE_PRESETS[cfg.arch]
    model = build_denoiser(arch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=0.05 * cfg.lr)
    pool = [next(windows) for _ in range(cfg.pool)]
    best, history, loss_avg, step = (-np.inf, None, 0), [], None, 0
    bar = tqdm(range(1, cfg.steps + 1), disable=not progress, unit="step",
               desc=f"train {cfg.name}")
    for step in bar:
        model.train()
        pairs = [_augment(*pool[int(i)], rng, cfg.crop)
                 for i in rng.integers(0, len(pool), cfg.batch)]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        t = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None]
        _, s = window_stats(x)
        loss = (((model(x) - t) / s) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        for _ in range(cfg.refresh):
            pool[int(rng.integers(len(pool)))] = next(windows)
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
        if step % cfg.eval_every == 0 or step == cfg.steps:
            gain = validate(model, val, torch)
            history.append({"step": step, "loss": round(loss_avg, 4),
                            "sim_psnr_gain_db": round(gain, 3)})
            if gain > best[0]:
                best = (gain, {k: v.detach().clone() for k, v in model.state_dict().items()},
                        step)
            bar.set_postfix(loss=f"{loss_avg:.3f}", gain=f"{gain:.2f}dB")
    bar.close()
    model.load_state_dict(best[1])
    model.eval()
    card = ModelCard(
        name=cfg.name, architecture=arch, threshold=0.5,
        training={**dataclasses.asdict(cfg), "data_seed": cfg.seed,
                  "val_seed": cfg.seed + 1000003, "best_step": best[2], "steps_run": step,
                  "history": history},
        metrics={"sim_val_psnr_gain_db": round(best[0], 3), "val_windows": len(val)},
        extra={"parameters": sum(p.numel() for p in model.parameters()),
               "torch": torch.__version__, "train_seconds": round(time.perf_counter() - t0, 1),
               "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
               "command": command or f"temstream train --preset {cfg.name}"})
    if out is not None:
        save_checkpoint(model, card, out)
    return model, card
