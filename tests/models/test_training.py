"""Training pieces and a tiny end-to-end training run on a synthetic stand-in."""

from itertools import islice

import numpy as np
import pytest
import torch
from scipy import ndimage

from temstream.models.training.augment import augment
from temstream.models.checkpoints import load_checkpoint
from temstream.models.training.losses import border_weight_map, soft_dice_loss, weighted_ce
from temstream.models.training.train import train, training_preset


def disks(seed, size=64):
    """Stand-in for temstream.sim.training.training_pairs: dark disks, Poisson noise,
    a boundary class where two disks touch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    while True:
        lab = np.zeros((size, size), np.int32)
        for k in range(1, rng.integers(2, 6)):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(4, 10)
            lab[((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (lab == 0)] = k
        dose = rng.uniform(50, 500)
        img = rng.poisson(dose * np.where(lab > 0, 0.5, 1.0)).astype(np.uint16)
        t = (lab > 0).astype(np.uint8)
        edge = (ndimage.maximum_filter(lab, 3) != ndimage.minimum_filter(
            np.where(lab > 0, lab, 99), 3)) & (lab > 0) & (ndimage.minimum_filter(
                np.where(lab > 0, lab, 99), 3) < 99)
        t[edge] = 2
        yield img, t


def test_border_weights_peak_in_narrow_gaps():
    t = np.zeros((40, 60), np.uint8)
    yy, xx = np.mgrid[:40, :60]
    t[(yy - 20) ** 2 + (xx - 15) ** 2 < 64] = 1
    t[(yy - 20) ** 2 + (xx - 34) ** 2 < 64] = 1  # gap of ~3 px at x ~ 23..26
    w = border_weight_map(t, w0=10, sigma=5)
    assert w.dtype == np.float32 and w.min() >= 1
    assert w[20, 24] > 5  # in the gap
    assert w[2, 58] < 1.01  # far away
    assert np.allclose(w[t == 1], 1)
    single = np.zeros((30, 30), np.uint8)
    single[10:15, 10:15] = 1
    assert np.allclose(border_weight_map(single), 1)


def test_losses_reward_the_right_answer():
    t = torch.from_numpy(np.random.default_rng(0).integers(0, 3, (2, 16, 16)))
    good = torch.nn.functional.one_hot(t, 3).permute(0, 3, 1, 2).float() * 20
    bad = torch.roll(good, 1, dims=1)
    w = torch.ones(2, 16, 16)
    assert soft_dice_loss(good, t) < 0.01 < 0.6 < soft_dice_loss(bad, t)
    assert weighted_ce(good, t, w) < 1e-3 < 10 < weighted_ce(bad, t, w)


def test_augment_keeps_image_and_target_aligned():
    rng = np.random.default_rng(0)
    img, t = next(disks(3, 96))
    for _ in range(10):
        x, y = augment(img, t, rng, crop=64, p_defocus=0, p_contrast=0, p_dose=0)
        assert x.shape == y.shape == (64, 64) and x.dtype == np.float32
        assert set(np.unique(y)) <= {0, 1, 2}
        # particles are dark: the mean inside the target stays well below the background
        if (y > 0).sum() > 20 and (y == 0).sum() > 20:
            assert x[y > 0].mean() < 0.8 * x[y == 0].mean()


def test_tiny_training_run_learns_and_is_reproducible(tmp_path):
    cfg = training_preset("smoke", size=64, crop=48, batch=4, steps=40,
                          pool=16, eval_every=20, val_size=4, lr=1e-2, patience=5)
    val = [p for _, p in zip(range(4), disks(99))]
    model, card = train(cfg, disks(1), val, out=tmp_path / "a", progress=False)
    assert card.metrics["sim_val_dice"] > 0.8  # learned the disks (untrained: ~0.3)
    assert 0.2 <= card.threshold <= 0.8
    assert card.training["seed"] == 0 and card.training["steps"] == 40
    loaded, card2 = load_checkpoint(tmp_path / "a")
    assert card2.metrics == card.metrics
    model_b, again = train(cfg, disks(1), val, out=tmp_path / "b", progress=False)
    # same command, same weights (up to float rounding of multi-threaded reductions)
    assert again.training["best_step"] == card.training["best_step"]
    for (k, a), b in zip(model.state_dict().items(), model_b.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3, msg=k)


def test_task_architecture_mismatch_is_a_clear_error():
    cfg = training_preset("smoke", arch="groschner", steps=2, pool=2,
                          val_size=1)

    def four_classes():
        for img, t in disks(0, 64):
            yield img, (t * 0 + 3).astype(np.uint8)

    with pytest.raises(ValueError, match="task and architecture do not match"):
        train(cfg, four_classes(), [next(disks(5))], progress=False)


class _Oracle(torch.nn.Module):
    """Stands in for a network: one-hot logits of given class maps (to test the scorer)."""

    def __init__(self, classes):
        super().__init__()
        self.classes = torch.from_numpy(classes)
        self.config = type("cfg", (), {"multiple": 1, "head": "softmax"})()

    def forward(self, x):
        onehot = torch.nn.functional.one_hot(self.classes.long(), 4).permute(0, 3, 1, 2)
        return onehot.float()


def test_layer_dice_score_of_the_bilayer_selection():
    from temstream.models.training.train import layer_dice_score

    t = np.zeros((2, 16, 16), np.uint8)
    t[:, 2:6, 2:6], t[:, 8:12, 8:12], t[:, 4:9, 4:9] = 1, 2, 3
    val = [(np.zeros((16, 16), np.uint16), t[k]) for k in range(2)]
    assert layer_dice_score(_Oracle(t), val, torch) == pytest.approx(1.0)
    swapped = np.choose(t, [0, 2, 1, 3]).astype(np.uint8)   # layers A and B exchanged
    a = np.isin(t, (1, 3))
    b = np.isin(t, (2, 3))
    expected = 2 * np.count_nonzero(a & b) / (a.sum() + b.sum())   # only "both" agrees
    assert layer_dice_score(_Oracle(swapped), val, torch) == pytest.approx(expected)


def test_bad_class_weights_and_selection_are_clear_errors():
    for bad, match in ((dict(class_weights="1,x"), "class_weights"),
                       (dict(select="best"), "select")):
        cfg = training_preset("smoke", steps=1, pool=1, val_size=1, **bad)
        with pytest.raises(ValueError, match=match):
            train(cfg, disks(0, 64), [next(disks(5))], progress=False)


def test_labelled_image_pairs_crop_images_and_targets_together():
    from temstream.models.training.realdata import labelled_image_pairs
    from temstream.sim.training import particle_target

    image = np.arange(100 * 120, dtype=np.uint16).reshape(100, 120)  # every pixel unique
    mask = np.zeros((100, 120), bool)
    mask[20:40, 20:40] = mask[20:40, 40:60] = True     # one blob: a single component
    mask[70:90, 80:100] = True
    pairs = [("a", image, mask)]
    for crop, target in islice(labelled_image_pairs(pairs, 0, size=64,
                                                    target_fn=particle_target), 6):
        y, x = divmod(int(crop[0, 0]), 120)
        assert crop.shape == target.shape == (64, 64)
        np.testing.assert_array_equal(target > 0, mask[y:y + 64, x:x + 64])
        assert set(np.unique(target)) <= {0, 1}  # touching in the mask = one particle
    with pytest.raises(ValueError, match="smaller than"):
        next(labelled_image_pairs(pairs, 0, size=128, target_fn=particle_target))


def test_patience_zero_runs_the_whole_schedule():
    """With the weights frozen (lr 0; only the batch-norm statistics move) validation soon
    stops improving: patience 1 ends the run early, patience 0 never does."""
    cfg = training_preset("smoke", size=64, crop=48, batch=2, steps=6,
                          pool=4, eval_every=1, val_size=2, lr=0.0, patience=1)
    val = [p for _, p in zip(range(2), disks(99))]
    _, stopped = train(cfg, disks(1), val, progress=False)
    _, full = train(cfg.replace(patience=0), disks(1), val, progress=False)
    assert stopped.training["steps_run"] < 6
    assert full.training["steps_run"] == 6


def test_option_strings_convert_by_type_and_bad_ones_name_the_key():
    from temstream.models.training.train import training_preset

    cfg = training_preset("default", bubbles="0.05", steps="12", bf16="off")
    assert cfg.bubbles == 0.05 and cfg.steps == 12 and cfg.bf16 == "off"
    for key, value in (("bubbles", "lots"), ("steps", "many")):
        with pytest.raises(ValueError, match=f"training option {key}"):
            training_preset("default", **{key: value})


def two_layer_disks(seed, size=64):
    """Stand-in for the bilayer training pairs: disks of two layers (B smaller), overlapping."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    while True:
        lab = np.zeros((2, size, size), np.uint16)
        for k, r in ((0, 7.0), (1, 4.5)):
            for i in range(1, 5):
                cy, cx = rng.uniform(0, size, 2)
                lab[k][((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (lab[k] == 0)] = i + 10 * k
        tau = 0.5 * (lab[0] > 0) + 0.3 * (lab[1] > 0)
        img = rng.poisson(300 * np.exp(-tau)).astype(np.uint16)
        yield img, lab, False


def test_layer_loss_takes_the_better_naming_of_equal_size_layers():
    from temstream.models.training.losses import layer_loss, layer_targets

    _, lab, _ = next(two_layer_disks(3))
    m, c = (torch.from_numpy(a)[None] for a in layer_targets(lab))
    good = torch.cat([m, c], 1) * 20 - 10      # confident logits of the truth
    swapped = torch.cat([m.flip(1), c.flip(1)], 1) * 20 - 10
    fixed = layer_loss(swapped, m, c, torch.tensor([False]))
    free = layer_loss(swapped, m, c, torch.tensor([True]))
    assert float(free) == pytest.approx(float(layer_loss(good, m, c)), rel=1e-5)
    assert float(fixed) > float(free) + 0.5


def test_tiny_two_layer_training_run(tmp_path):
    from temstream.models.arch import LAYER_CLASSES

    cfg = training_preset("bilayer", arch="smoke-bilayer", size=64, crop=48, batch=4, steps=30,
                          pool=8, eval_every=15, val_size=3, lr=1e-2)
    val = [p for _, p in zip(range(3), two_layer_disks(99))]
    model, card = train(cfg, two_layer_disks(1), val, out=tmp_path / "m", progress=False)
    assert card.architecture.classes == LAYER_CLASSES
    assert "sim_val_layer_dice_by_threshold" in card.metrics
    by = card.metrics["sim_val_layer_dice_by_threshold"]
    assert by[str(card.threshold)] == max(by.values())
    assert card.metrics["sim_val_layer_dice"] > 0.3   # learning (untrained: ~0.1)
    loaded, _ = load_checkpoint(tmp_path / "m")
    p = loaded(torch.from_numpy(val[0][0][None, None].astype(np.float32)))
    assert p.shape == (1, 5, 64, 64)


def test_layer_dice_by_threshold_scores_swappable_pairs_under_the_better_naming():
    from temstream.models.arch import LAYER_CLASSES, UNetConfig
    from temstream.models.training.train import layer_dice_by_threshold

    _, lab, _ = next(two_layer_disks(4))

    class Oracle(torch.nn.Module):
        config = UNetConfig(classes=LAYER_CLASSES, head="multilabel", depth=1)

        def forward(self, x):
            m = torch.from_numpy((lab[::-1] > 0).astype(np.float32))[None]  # names swapped
            return torch.cat([(1 - m).prod(1, keepdim=True), m, m], 1)

    img = np.zeros((64, 64), np.uint16)
    fixed = layer_dice_by_threshold(Oracle(), [(img, lab, False)], torch, [0.5])
    free = layer_dice_by_threshold(Oracle(), [(img, lab, True)], torch, [0.5])
    assert free[0.5] == pytest.approx(1.0) and fixed[0.5] < 0.5
