"""Training a U-Net on an endless stream of simulated (image, target) pairs.

The data source is an argument (any iterator of ``(image (S, S) raw counts, target (S, S) uint8
class index)``); ``temstream train`` wires it to :func:`temstream.sim.training.training_pairs`.
Pairs are kept in a pool that is refreshed every step, augmented on the fly
(:mod:`temstream.models.training.augment`), and the loss is border-weighted cross-entropy plus soft Dice
(:mod:`temstream.models.training.losses`); Adam with a cosine learning-rate decay. Every
``eval_every`` steps the network is scored on a fixed simulated validation set (foreground
Dice) and, for the particle task, on the real msa-em images; the best state is kept (with
``patience`` > 0 training stops after that many evaluations without improvement; the presets
run their whole schedule), and the decision threshold is chosen on the simulated validation
set.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from dataclasses import dataclass
from itertools import islice

import numpy as np

from temstream.models.arch import preset as arch_preset
from temstream.models.training.augment import augment
from temstream.models.backends import cpu_has_amx_bf16
from temstream.models.checkpoints import ModelCard, save_checkpoint
from temstream.models.training.losses import border_weight_map
from temstream.models.metrics import pixel_scores

log = logging.getLogger(__name__)

THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in the model card).

    Attributes
    ----------
    name : str
        Model name written into the card.
    arch : str
        Architecture preset (:data:`temstream.models.arch.PRESETS`).
    task : {"particles", "bilayer", "denoise"}
        Simulator task (:func:`temstream.sim.training.training_pairs`; ``denoise``:
        :func:`temstream.sim.training.denoise_windows` and
        :func:`temstream.models.training.denoise.train_denoiser`).
    size : int
        Edge (px) of the simulated pairs.
    crop : int
        Edge (px) of the training crops after augmentation (multiple of 16).
    batch, steps : int
        Batch size and maximum number of optimiser steps.
    lr : float
        Adam learning rate (cosine decay to 5 % of it).
    loss : {"ce", "dice", "ce+dice"}
    w0, sigma : float
        Border weight map parameters (U-Net paper: 10, 5 px).
    pool, refresh : int
        Pairs kept in memory; new pairs drawn from the simulator per step.
    eval_every, patience : int
        Validation period (steps) and early-stopping patience (evaluations; 0 = never stop
        early, the whole schedule runs and the best evaluated state is kept).
    val_size : int
        Fixed simulated validation pairs.
    seed : int
        Seeds the simulator stream, the validation stream (``seed + 1000003``), augmentation
        and weight initialisation.
    threads : int
        torch threads (0: torch's default).
    bf16 : str
        ``auto`` (bf16 autocast only on a CPU with AMX), ``on``, ``off``.
    extra_noise : float
        Dose augmentation: added noise up to this multiple of the frame's own noise.
    class_weights : str
        Comma-separated cross-entropy weight per class (e.g. ``1,1,3,2``); empty: all 1.
    select : {"foreground", "layers"}
        What picks the best state: foreground Dice, or (bilayer task) the mean of the layer A and
        layer B Dice (:func:`layer_dice_score`; its best threshold becomes the card's).
    bubbles : float
        Fraction of the simulated pairs with a gas bubble (its dark rim is not a particle).
    overlap_weight : float
        Two-layer task: extra weight of the presence loss where particles of the two layers
        overlap (:func:`~temstream.models.training.losses.layer_loss`).
    init : str
        Fine-tuning: start from this checkpoint (name or path; its architecture is used and
        ``arch``, ``base``, ``depth`` are ignored). Empty: random initialisation.
    """

    name: str = "default"
    arch: str = "default"
    task: str = "particles"
    size: int = 256
    crop: int = 176
    batch: int = 6
    steps: int = 8000
    lr: float = 2e-3
    loss: str = "ce+dice"
    w0: float = 10.0
    sigma: float = 5.0
    pool: int = 256
    refresh: int = 1
    eval_every: int = 250
    patience: int = 0  # 0: the whole schedule (an early stop cuts the cosine decay short)
    val_size: int = 48
    seed: int = 0
    threads: int = 0
    bf16: str = "auto"
    extra_noise: float = 3.0
    class_weights: str = ""
    select: str = "foreground"
    bubbles: float = 0.15
    overlap_weight: float = 0.0
    init: str = ""

    def replace(self, **kw) -> "TrainConfig":
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        bad = set(kw) - set(fields)
        if bad:
            raise ValueError(f"unknown training options {sorted(bad)}; known: {sorted(fields)}")
        conv = {k: _convert(k, v, type(getattr(self, k))) for k, v in kw.items()}
        return dataclasses.replace(self, **conv)


def _convert(key: str, value, kind: type):
    """``value`` (often a command-line string) as the option's type; a clear error naming
    ``key`` otherwise."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"training option {key}: expected {kind.__name__}, "
                         f"not {value!r}") from None


#: ``temstream train --preset NAME``
TRAIN_PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    "bilayer": TrainConfig(name="bilayer", arch="bilayer", task="bilayer", size=192, crop=144,
                           steps=6000, eval_every=500, val_size=32, extra_noise=1.5,
                           select="layers"),
    "groschner": TrainConfig(name="groschner", arch="groschner", loss="ce", lr=1e-3, steps=3000),
    # a minute's check that training runs on this machine (a tiny network, a few steps)
    "smoke": TrainConfig(name="smoke", arch="smoke", size=64, crop=48, batch=2, steps=4, pool=4,
                         eval_every=2, val_size=2),
    # fine-tuning the shipped model on a user's labelled images (``temstream finetune``)
    "finetune": TrainConfig(name="finetune", init="default", steps=600, lr=3e-4, pool=64,
                            eval_every=100, patience=3, extra_noise=1.5),
    # low-dose denoising (``--denoise``): 3-frame windows at 0.3-25 counts/px, supervised by
    # the simulator's noise-free frames; one thread, about 15 minutes on this 2-core machine
    "denoise": TrainConfig(name="denoise", arch="denoise", task="denoise", size=128, crop=96,
                           loss="l2/noise", batch=8, steps=6000, lr=2e-3, pool=512, refresh=2,
                           eval_every=500,
                           val_size=48, threads=1),
}


def training_preset(name: str, **overrides) -> TrainConfig:
    """Training preset ``name`` with fields replaced by ``overrides``."""
    if name not in TRAIN_PRESETS:
        raise ValueError(f"unknown training preset {name!r}; choose one of {sorted(TRAIN_PRESETS)}")
    return TRAIN_PRESETS[name].replace(**overrides)


def _class_weights(cfg):
    if not cfg.class_weights:
        return None
    try:
        return [float(v) for v in cfg.class_weights.split(",")]
    except ValueError:
        raise ValueError(f"class_weights must be comma-separated numbers, not "
                         f"{cfg.class_weights!r}") from None


def _batch(pool, cfg, rng, torch):
    cw = _class_weights(cfg)
    idx = rng.integers(0, len(pool), cfg.batch)
    if len(pool[0]) == 3:
        return _layer_batch(pool, idx, cfg, rng, torch)
    xs, ts, ws = [], [], []
    for i in idx:
        x, t = augment(*pool[i], rng, crop=cfg.crop, max_extra_noise=cfg.extra_noise)
        xs.append(x)
        ts.append(t)
        ws.append(border_weight_map(t, w0=cfg.w0, sigma=cfg.sigma, class_weights=cw))
    x = torch.from_numpy(np.stack(xs)[:, None])
    return x, torch.from_numpy(np.stack(ts).astype(np.int64)), torch.from_numpy(np.stack(ws))


def _layer_batch(pool, idx, cfg, rng, torch):
    """A batch of two-layer pairs: images, presence and centre targets, which are swappable."""
    from temstream.models.training.losses import layer_targets

    xs, ms, cs, sw = [], [], [], []
    for i in idx:
        image, labels, swappable = pool[i]
        x, lab = augment(image, labels, rng, crop=cfg.crop, max_extra_noise=cfg.extra_noise)
        m, c = layer_targets(lab)
        xs.append(x)
        ms.append(m)
        cs.append(c)
        sw.append(bool(swappable))
    return (torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ms)),
            torch.from_numpy(np.stack(cs)), torch.tensor(sw))


def predict_foreground(model, images, torch, *, batch: int = 8, autocast: bool = False):
    """Foreground probability ``1 - P(background)`` of equally sized images, (N, H, W)."""
    mult = model.config.multiple
    out = []
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        for k in range(0, len(images), batch):
            x = np.stack(images[k:k + batch]).astype(np.float32)[:, None]
            H, W = x.shape[-2:]
            ph, pw = -H % mult, -W % mult
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
            p = model(torch.from_numpy(x)).float()[:, :, :H, :W]
            out.append((1 - p[:, 0]).numpy())
    return np.concatenate(out)


def predict_probabilities(model, images, torch, *, batch: int = 8):
    """Probabilities (N, C, H, W) of equally sized images."""
    mult = model.config.multiple
    out = []
    model.eval()
    with torch.inference_mode():
        for k in range(0, len(images), batch):
            x = np.stack(images[k:k + batch]).astype(np.float32)[:, None]
            H, W = x.shape[-2:]
            x = np.pad(x, ((0, 0), (0, 0), (0, -H % mult), (0, -W % mult)), mode="reflect")
            out.append(model(torch.from_numpy(x))[:, :, :H, :W].float().numpy())
    return np.concatenate(out)


def _layer_counts(pred, truth):
    """(tp, fp, fn) of each layer, (L, 3), of boolean (L, H, W) arrays."""
    return np.array([[np.count_nonzero(p & t), np.count_nonzero(p & ~t),
                      np.count_nonzero(~p & t)] for p, t in zip(pred, truth)], float)


def layer_dice_by_threshold(model, val, torch, thresholds=THRESHOLDS) -> dict:
    """Mean of the per-layer Dice (pooled over the pairs) at each threshold on each layer's
    presence probability, for two-layer pairs ``(image, labels (2, H, W), swappable)``; a
    swappable pair (equal-size layers) is scored under the better naming of its layers.
    Softmax (four-class) networks: layer A = arg-max classes 1|3, B = 2|3, one entry."""
    probs = predict_probabilities(model, [v[0] for v in val], torch)
    if model.config.head == "softmax":
        cls = probs.argmax(1)
        counts = np.zeros((2, 3))
        for c, v in zip(cls, val):
            t = v[1]
            truth = np.stack([np.isin(t, (1, 3)), np.isin(t, (2, 3))]) if t.ndim == 2 \
                else t > 0
            counts += _layer_counts(np.stack([np.isin(c, (1, 3)), np.isin(c, (2, 3))]), truth)
        return {0.5: _mean_dice(counts)}
    chans = list(model.config.layer_channels)
    out = {}
    for thr in thresholds:
        counts = np.zeros((len(chans), 3))
        for p, v in zip(probs, val):
            truth = v[1] > 0
            pred = p[chans] > thr
            c = _layer_counts(pred, truth)
            if len(v) > 2 and v[2] and len(chans) == 2:
                c2 = _layer_counts(pred[::-1], truth)
                if _mean_dice(c2) > _mean_dice(c):
                    c = c2
            counts += c
        out[float(thr)] = _mean_dice(counts)
    return out


def _mean_dice(counts) -> float:
    tp, fp, fn = counts.T
    return float(np.mean(2 * tp / np.maximum(2 * tp + fp + fn, 1)))


def layer_dice_score(model, val, torch) -> float:
    """Mean of the layer A and layer B Dice (the best threshold of
    :func:`layer_dice_by_threshold`)."""
    return max(layer_dice_by_threshold(model, val, torch).values())


def evaluate_sets(model, val, real, torch, autocast=False) -> dict:
    """Foreground Dice per threshold on the validation set (``"val"``: pairs (image, target))
    and the real images (``"real"``: (name, image, mask) triples)."""
    res = {}
    fg = predict_foreground(model, [v[0] for v in val], torch, autocast=autocast)
    truth = np.stack([v[1] > 0 if v[1].ndim == 2 else (v[1] > 0).any(0) for v in val])
    res["val"] = {float(t): pixel_scores(fg >= t, truth)["dice"] for t in THRESHOLDS}
    if real:
        fg = predict_foreground(model, [r[1] for r in real], torch, batch=4, autocast=autocast)
        truth = np.stack([r[2] for r in real])
        res["real"] = {float(t): pixel_scores(fg >= t, truth)["dice"] for t in THRESHOLDS}
    return res


def train(cfg: TrainConfig, pairs, val_pairs, *, real=None, out=None, progress: bool = True,
          val_name: str = "sim", command: str | None = None):
    """Train (or, with ``cfg.init``, fine-tune) a U-Net.

    Parameters
    ----------
    cfg : TrainConfig
        Run configuration.
    pairs : iterator of (ndarray (S, S), ndarray (S, S) uint8)
        Endless training stream (raw counts, class targets).
    val_pairs : list of (ndarray, ndarray)
        Fixed validation pairs (image, target): they select the best state and the threshold.
    real : list of (name, image (H, W), mask (H, W) bool), optional
        Real labelled images, scored at every evaluation (reported only: they select nothing).
    out : path, optional
        Where to write the checkpoint (``model.safetensors`` + ``model.json``).
    progress : bool
        Show a tqdm progress bar.
    val_name : str
        What the validation pairs are, for the card's metric names (``sim``: simulated;
        ``train_images``: fine-tuning images).
    command : str, optional
        The command line that reproduces the run, for the card (default ``temstream train
        --preset NAME``).

    Returns
    -------
    (UNet, ModelCard)
        The best network (eval mode) and its card.
    """
    if cfg.task == "denoise":
        from temstream.models.training.denoise import train_denoiser

        return train_denoiser(cfg, pairs, val_pairs, out=out, progress=progress,
                              command=command)
    import torch
    from tqdm import tqdm

    t0 = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)  # tiny gradients otherwise slow CPU training 3x
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.select not in ("foreground", "layers"):
        raise ValueError(f"select must be 'foreground' or 'layers', not {cfg.select!r}")
    _class_weights(cfg)
    model, arch = _network(cfg, torch)
    autocast = cfg.bf16 == "on" or (cfg.bf16 == "auto" and cpu_has_amx_bf16())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps, eta_min=0.05 * cfg.lr)
    pool = [next(pairs) for _ in range(cfg.pool)]
    best = (-1.0, None, 0)
    history = []
    bad_evals = 0
    bar = tqdm(range(1, cfg.steps + 1), disable=not progress, unit="step",
               desc=f"train {cfg.name}")
    loss_avg = None
    step = 0
    for step in bar:
        lv = _step(model, opt, sched, _batch(pool, cfg, rng, torch), cfg, len(arch.classes),
                   autocast, torch)
        for _ in range(cfg.refresh):
            pool[int(rng.integers(len(pool)))] = next(pairs)
        loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
        if step % cfg.eval_every == 0 or step == cfg.steps:
            entry, val_best = _validate(model, val_pairs, real, cfg, autocast, torch,
                                        step=step, loss=loss_avg, val_name=val_name)
            history.append(entry)
            if val_best > best[0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (val_best, state, step)
                bad_evals = 0
            else:
                bad_evals += 1
            bar.set_postfix(loss=f"{loss_avg:.3f}", dice=f"{val_best:.3f}",
                            real=f"{entry.get('real_dice', float('nan')):.3f}")
            if cfg.patience and bad_evals >= cfg.patience:
                log.info("early stop at step %d (best %d)", step, best[2])
                break
    bar.close()
    model.load_state_dict(best[1])
    model.eval()
    card = _card(model, arch, cfg, val_pairs, real, autocast, torch, val_name=val_name,
                 history=history, best_step=best[2], steps_run=step, t0=t0, command=command)
    if out is not None:
        save_checkpoint(model, card, out)
    return model, card


def _network(cfg: TrainConfig, torch):
    """The network to train (channels-last) and its architecture: a fresh one of
    ``cfg.arch``, or with ``cfg.init`` the checkpoint to fine-tune."""
    from temstream.models.unet import build_unet

    if cfg.init:
        from temstream.models.checkpoints import load_checkpoint

        model, init_card = load_checkpoint(cfg.init)
        arch = init_card.architecture
    else:
        arch = arch_preset(cfg.arch)
        model = build_unet(arch)
    return model.to(memory_format=torch.channels_last), arch


def _step(model, opt, sched, batch, cfg: TrainConfig, n_classes: int, autocast: bool,
          torch) -> float:
    """One optimiser step on ``batch`` (images, targets, weights); returns the loss."""
    from temstream.models.training.losses import segmentation_loss

    model.train()
    x, t = batch[0], batch[1]
    layered = len(batch) == 4
    if layered != (model.config.head == "multilabel"):
        raise ValueError(f"task {cfg.task!r} and a {model.config.head} head do not match: "
                         "train two-layer pairs on a multilabel architecture")
    if not layered and int(t.max()) >= n_classes:
        raise ValueError(f"target has class {int(t.max())} but the network has "
                         f"{n_classes} classes: task and architecture do not match")
    with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        logits = model.logits(model.normalise(x).contiguous(memory_format=torch.channels_last))
    if layered:
        from temstream.models.training.losses import layer_loss

        loss = layer_loss(logits.float(), t, batch[2], batch[3],
                          overlap_weight=cfg.overlap_weight)
    else:
        loss = segmentation_loss(cfg.loss, logits.float(), t, batch[2])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    sched.step()
    return loss.item()


def _validate(model, val_pairs, real, cfg: TrainConfig, autocast: bool, torch, *, step: int,
              loss: float, val_name: str) -> tuple[dict, float]:
    """The history entry of one evaluation, and the score that selects the best state."""
    scores = evaluate_sets(model, val_pairs, real, torch, autocast)
    val_best = max(scores["val"].values())
    entry = {"step": step, "loss": round(loss, 4), f"{val_name}_dice": round(val_best, 4)}
    if cfg.select == "layers":
        val_best = layer_dice_score(model, val_pairs, torch)
        entry["layer_dice"] = round(val_best, 4)
    if "real" in scores:
        entry["real_dice"] = round(max(scores["real"].values()), 4)
    log.info("step %d: %s", step, entry)
    return entry, val_best


def _card(model, arch, cfg: TrainConfig, val_pairs, real, autocast: bool, torch, *,
          val_name: str, history: list, best_step: int, steps_run: int, t0: float,
          command: str | None) -> ModelCard:
    """The trained network's card: the threshold chosen on the validation pairs (the best
    Dice, ties to the one nearest 0.5), its scores, and how to reproduce the run."""
    from temstream.models.unet import count_parameters

    scores = evaluate_sets(model, val_pairs, real, torch, autocast)
    val = scores["val"]
    thr = max(val, key=lambda k: (val[k], -abs(k - 0.5)))
    metrics = {f"{val_name}_val_dice": round(val[thr], 4), "threshold_grid": list(THRESHOLDS),
               f"{val_name}_val_dice_by_threshold": {str(k): round(v, 4) for k, v in val.items()}}
    if cfg.select == "layers":
        by_thr = layer_dice_by_threshold(model, val_pairs, torch)
        metrics[f"{val_name}_val_layer_dice"] = round(max(by_thr.values()), 4)
        if arch.head == "multilabel":  # the threshold applies to each layer's presence
            thr = max(by_thr, key=lambda k: (by_thr[k], -abs(k - 0.5)))
            metrics[f"{val_name}_val_layer_dice_by_threshold"] = {
                str(k): round(v, 4) for k, v in by_thr.items()}
    if "real" in scores:
        metrics["real_msa_em_dice"] = round(scores["real"][thr], 4)
        metrics["real_msa_em_dice_best_threshold"] = round(max(scores["real"].values()), 4)
    return ModelCard(
        name=cfg.name, architecture=arch, threshold=float(thr),
        training={**dataclasses.asdict(cfg), "data_seed": cfg.seed,
                  "val_seed": cfg.seed + 1000003, "best_step": best_step,
                  "steps_run": steps_run, "history": history},
        metrics=metrics,
        extra={"parameters": count_parameters(model), "torch": torch.__version__,
               "train_seconds": round(time.perf_counter() - t0, 1), "machine":
               f"{platform.machine()} {torch.get_num_threads()} threads, bf16={autocast}",
               "command": command or f"temstream train --preset {cfg.name}"},
    )


def simulated_validation(make_pairs, cfg: TrainConfig) -> list:
    """The fixed validation set: ``cfg.val_size`` pairs from ``make_pairs(seed + 1000003)``."""
    return list(islice(make_pairs(cfg.seed + 1000003), cfg.val_size))
