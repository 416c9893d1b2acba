"""Metrics against hand-computed values, and the evaluation/report helpers."""

import numpy as np
import pytest

from temstream.config.schema import InstancesConfig
from temstream.evaluation import Model, evaluate_real, score_frames
from temstream.evaluation.scoring import snr
from temstream.pipeline.stages import Instances
from temstream.models.metrics import accumulate, instances, match_objects, pixel_scores
from temstream.evaluation.report import figure, markdown_table, summary_table


def as_model(name, segmenter):
    """A stand-in segmenter behind the pipeline's instance stage (outlines at 0.5)."""
    stage = Instances(InstancesConfig(outline="threshold", min_area=1, min_score=0.0),
                      classes=segmenter.classes, threshold=0.5)
    return Model(name, segmenter, lambda frame: frame, stage)


def test_pixel_scores_by_hand():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True  # 4 px
    pred = np.zeros((4, 4), bool)
    pred[:2, :3] = True  # 6 px, 4 overlap
    s = pixel_scores(pred, truth)
    assert s["dice"] == pytest.approx(2 * 4 / (6 + 4))
    assert s["iou"] == pytest.approx(4 / 6)
    assert s["accuracy"] == pytest.approx(14 / 16)
    assert pixel_scores(pred & False, truth & False)["dice"] == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        pixel_scores(pred, truth[:3])


def test_object_matching_iou_half_and_centroids():
    truth = np.zeros((20, 40), np.int32)
    truth[2:8, 2:8] = 1       # matched exactly
    truth[10:16, 10:16] = 2   # matched with a 1 px shift
    truth[2:6, 30:34] = 3     # missed
    pred = np.zeros_like(truth)
    pred[2:8, 2:8] = 5
    pred[10:16, 11:17] = 7
    pred[15:19, 30:34] = 9    # false positive
    m = match_objects(pred, truth)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    np.testing.assert_allclose(sorted(m["centroid_errors"]), [0.0, 1.0])
    # IoU below 0.5 is no match: 6x6 vs shifted by 3 px -> IoU = 18/54
    p2 = np.zeros_like(truth)
    p2[2:8, 5:11] = 1
    assert match_objects(p2, truth)["tp"] == 0


def test_true_instances_are_the_masks_components():
    mask = np.zeros((10, 30), bool)
    mask[2:8, 2:12] = True
    mask[2:8, 14:24] = True
    mask[0, 28] = True                      # below min_area
    lab = instances(mask, min_area=4)
    assert len(np.unique(lab)) == 3 and lab[0, 28] == 0 and (lab[2:8, 2:24] > 0).sum() == 120


class Perfect:
    """A segmenter that returns the truth (stand-in for testing the scorer)."""

    name = "perfect"
    classes = ("background", "particle")
    threshold = 0.5

    def __init__(self, masks):
        self.masks = masks
        self.i = 0

    def predict_batch(self, frames):
        out = []
        for _ in frames:
            m = self.masks[self.i]
            self.i += 1
            out.append(np.stack([~m, m]).astype(np.float32))
        return np.stack(out)


def test_scoring_a_perfect_segmenter_gives_ones(tmp_path):
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 32, 32), bool)
    masks[:, 5:12, 5:12] = True
    masks[1, 20:28, 20:30] = True
    frames = (rng.poisson(100, masks.shape) * np.where(masks, 0.5, 1)).astype(np.uint16)
    rows, first = score_frames(as_model("perfect", Perfect(masks)), frames, masks)
    s = accumulate(rows)
    assert s["dice"] == 1 and s["obj_f1"] == 1 and s["centroid_err_px"] == 0
    assert snr(frames, masks) > 3
    real_rows, ex = evaluate_real({"perfect": as_model("perfect", Perfect(masks))},
                                  [(f"im{i}", frames[i], masks[i]) for i in range(3)])
    assert real_rows[0]["dice"] == 1
    md = markdown_table(real_rows)
    assert "| real | msa-em-train |" in md and md.count("\n") == 3
    assert "perfect Dice" in summary_table(real_rows)
    png = figure(ex, tmp_path / "fig.png")
    assert png.stat().st_size > 1000


def test_layer_dice_of_a_perfect_bilayer_prediction():
    from temstream.evaluation.scoring import layer_dice

    layers = np.zeros((2, 2, 16, 16), bool)
    layers[:, 0, 2:8, 2:8] = True
    layers[:, 1, 5:12, 5:12] = True

    class Bilayer:
        classes = ("background", "layer_a", "layer_b", "both")

        def predict_batch(self, frames):
            cls = layers[:, 0].astype(int) + 2 * layers[:, 1]
            return np.moveaxis(np.eye(4, dtype=np.float32)[cls], -1, 1)

    model = as_model("bilayer", Bilayer())
    d = layer_dice(model, np.zeros((2, 16, 16), np.uint16), layers)
    assert d == {"layer_a_dice": 1.0, "layer_b_dice": 1.0}
    wrong = layer_dice(model, np.zeros((2, 16, 16), np.uint16), layers[:, ::-1])
    assert wrong["layer_a_dice"] < 0.5


def _random_rows(rng, n):
    """Per-frame score rows with random pixel and object counts."""
    rows = []
    for _ in range(n):
        tp, fp, fn = rng.integers(0, 500, 3)
        otp, ofp, ofn = rng.integers(0, 6, 3)
        rows.append({"pixel": {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": 1000},
                     "objects": {"tp": int(otp), "fp": int(ofp), "fn": int(ofn),
                                 "centroid_errors": np.zeros(int(otp))}})
    return rows


def test_pooled_scores_by_hand_and_in_accumulate(rng):
    from temstream.models.metrics import pooled_score, unit_counts

    for n in (1, 3, 7):
        rows = _random_rows(rng, n)
        acc = accumulate(rows)
        counts = unit_counts(rows)
        tp, fp, fn = (sum(r["pixel"][k] for r in rows) for k in ("tp", "fp", "fn"))
        otp, ofp, ofn = (sum(r["objects"][k] for r in rows) for k in ("tp", "fp", "fn"))
        prec, rec = otp / max(otp + ofp, 1), otp / max(otp + ofn, 1)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        assert pooled_score(counts, "dice") == pytest.approx(2 * tp / (2 * tp + fp + fn))
        assert pooled_score(counts, "obj_f1") == pytest.approx(f1) == acc["obj_f1"]
        assert acc["dice"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    empty = {"pixel": {"tp": 0, "fp": 0, "fn": 0, "tn": 9},
             "objects": {"tp": 0, "fp": 0, "fn": 0, "centroid_errors": np.zeros(0)}}
    assert pooled_score(unit_counts([empty]), "obj_f1") == accumulate([empty])["obj_f1"] == 1.0
    with pytest.raises(ValueError, match="score"):
        pooled_score(unit_counts([empty]), "iou")


def test_bootstrap_interval_matches_scipy_on_one_stratum(rng):
    """One stratum: the same percentile bootstrap of a ratio statistic as scipy's."""
    from scipy.stats import bootstrap

    from temstream.models.metrics import bootstrap_interval, pooled_score, unit_counts

    units = np.stack([unit_counts([r]) for r in _random_rows(rng, 12)])
    ours = bootstrap_interval([units], "dice", n_resamples=20000, seed=1)

    def dice(tp, fp, fn, axis=-1):
        return pooled_score(np.stack([tp.sum(axis), fp.sum(axis), fn.sum(axis)], -1), "dice")

    ref = bootstrap(tuple(units[:, :3].T), dice, paired=True, vectorized=True,
                    method="percentile", n_resamples=20000, random_state=2).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.01)
    assert ours[1] == pytest.approx(ref.high, abs=0.01)
    assert ours[0] < pooled_score(units.sum(0), "dice") < ours[1]


def test_bootstrap_interval_strata_pairing_and_width(rng):
    from temstream.models.metrics import bootstrap_interval, pooled_score, unit_counts

    strata = [np.stack([unit_counts([r]) for r in _random_rows(rng, 6)]) for _ in range(3)]
    lo, hi = bootstrap_interval(strata, "obj_f1")
    mean = np.mean([pooled_score(s.sum(0), "obj_f1") for s in strata])
    assert lo < mean < hi
    # four times the units (each repeated) -> about half the width
    lo4, hi4 = bootstrap_interval([np.repeat(s, 4, axis=0) for s in strata], "obj_f1")
    assert 0.35 < (hi4 - lo4) / (hi - lo) < 0.65
    # a model compared with itself differs by exactly nothing; a uniformly better one is ahead
    assert bootstrap_interval(strata, "dice", minus=strata) == (0.0, 0.0)
    better = [s + np.array([50, 0, 0, 0, 0, 0]) for s in strata]
    assert bootstrap_interval(better, "dice", minus=strata)[0] > 0
    assert np.isnan(bootstrap_interval([s[:1] for s in strata], "dice")[0])
    with pytest.raises(ValueError, match="same units"):
        bootstrap_interval(strata, "dice", minus=strata[:2])


def test_evaluate_simulated_pools_movies_and_resamples_them():
    """Several movies of one scenario: one row, one unit per movie, counts adding up to the
    pooled scores; a perfect segmenter is ahead of an empty one in the paired table."""
    from types import SimpleNamespace

    from temstream.evaluation import evaluate_simulated
    from temstream.evaluation.report import difference_table
    from temstream.models.metrics import pooled_score

    rng = np.random.default_rng(3)
    movies = []
    for _ in range(3):
        labels = np.zeros((2, 32, 32), np.int32)
        for f in range(2):
            y, x = rng.integers(4, 20, 2)
            labels[f, y:y + 8, x:x + 8] = 1
        frames = np.where(labels > 0, 50.0, 100.0) + rng.normal(0, 5, labels.shape)
        movies.append(SimpleNamespace(frames=frames.astype(np.float32), labels=labels))

    class Fixed:
        threshold = 0.5
        classes = ("background", "particle")

        def __init__(self, fill):
            self.fill = fill

        def predict_batch(self, frames):
            fg = (frames < 75) if self.fill else np.zeros(frames.shape, bool)
            return np.stack([1.0 - fg, fg * 1.0], axis=1)

    models = {"classical": as_model("classical", Fixed(False)),
              "perfect": as_model("perfect", Fixed(True))}
    rows, _ = evaluate_simulated(models, [("box", "moderate", 1.0, movies)])
    perfect = rows[1]
    assert perfect["unit"] == "movie" and perfect["units"].shape == (3, 6)
    assert pooled_score(perfect["units"].sum(0), "dice") == pytest.approx(perfect["dice"]) == 1.0
    assert perfect["dice_ci"] == (1.0, 1.0)
    one, _ = evaluate_simulated({"perfect": models["perfect"]},
                                [("box", "moderate", 1.0, movies[0])])
    assert one[0]["unit"] == "frame" and one[0]["units"].shape == (2, 6)
    table = difference_table(rows)
    assert "| sim | moderate | perfect | +1.000 | +1.000 to +1.000 |" in table
