"""Metrics against hand-computed values, and the evaluation/report helpers."""

import numpy as np
import pytest

from temstream.models.evaluate import evaluate_real, score_frames, snr
from temstream.models.metrics import accumulate, instances, match_objects, pixel_scores
from temstream.models.report import figure, markdown_table, summary_table


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


def test_instances_split_touching_particles_at_the_boundary_class():
    mask = np.zeros((10, 21), bool)
    mask[2:8, 2:19] = True
    interior = mask.astype(float)
    interior[:, 10] = 0  # the boundary column
    assert instances(mask).max() == 1
    lab = instances(mask, interior)
    assert len(np.unique(lab[lab > 0])) == 2 and (lab[mask] > 0).all()
    # a component without any seed (interior probability low everywhere) is kept whole
    mask3 = np.pad(mask, ((0, 0), (0, 12)))
    mask3[3:7, 24:31] = True
    lab3 = instances(mask3, np.pad(interior, ((0, 0), (0, 12))))
    assert len(np.unique(lab3[lab3 > 0])) == 3 and (lab3[mask3] > 0).all()


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
    rows, first = score_frames(Perfect(masks), frames, masks)
    s = accumulate(rows)
    assert s["dice"] == 1 and s["obj_f1"] == 1 and s["centroid_err_px"] == 0
    assert snr(frames, masks) > 3
    real_rows, ex = evaluate_real({"perfect": Perfect(masks)},
                                  [(f"im{i}", frames[i], masks[i]) for i in range(3)])
    assert real_rows[0]["dice"] == 1
    md = markdown_table(real_rows)
    assert "| real | msa-em-train |" in md and md.count("\n") == 3
    assert "perfect Dice" in summary_table(real_rows)
    png = figure(ex, tmp_path / "fig.png")
    assert png.stat().st_size > 1000


def test_layer_dice_of_a_perfect_bilayer_prediction():
    from temstream.models.evaluate import layer_dice

    layers = np.zeros((2, 2, 16, 16), bool)
    layers[:, 0, 2:8, 2:8] = True
    layers[:, 1, 5:12, 5:12] = True

    class Bilayer:
        classes = ("background", "layer_a", "layer_b", "both")

        def predict_batch(self, frames):
            cls = layers[:, 0].astype(int) + 2 * layers[:, 1]
            return np.moveaxis(np.eye(4, dtype=np.float32)[cls], -1, 1)

    d = layer_dice(Bilayer(), np.zeros((2, 16, 16), np.uint16), layers)
    assert d == {"layer_a_dice": 1.0, "layer_b_dice": 1.0}
    wrong = layer_dice(Bilayer(), np.zeros((2, 16, 16), np.uint16), layers[:, ::-1])
    assert wrong["layer_a_dice"] < 0.5


def test_default_instancer_seeds_core_models_from_their_cores():
    from types import SimpleNamespace

    from temstream.models.evaluate import default_instancer

    yy, xx = np.mgrid[:50, :80]
    a = (yy - 25) ** 2 + (xx - 25) ** 2 < 14 ** 2
    b = (yy - 25) ** 2 + (xx - 45) ** 2 < 14 ** 2      # overlaps a, no contact line
    cores = ((yy - 25) ** 2 + (xx - 25) ** 2 < 36) | ((yy - 25) ** 2 + (xx - 45) ** 2 < 36)
    p = np.zeros((4, 50, 80), np.float32)
    p[0] = 1
    p[:, a | b] = np.array([0.02, 0.93, 0.03, 0.02], np.float32)[:, None]
    p[:, cores] = np.array([0.02, 0.06, 0.02, 0.9], np.float32)[:, None]
    core_seg = SimpleNamespace(classes=("background", "particle", "boundary", "core"),
                               threshold=0.35)
    lab = default_instancer(p, core_seg)
    assert lab.max() == 2 and ((lab > 0) == (a | b)).all()
    # the same map read as a boundary model (core folded into particle) is one particle
    three = np.concatenate([p[:1], p[1:2] + p[3:4], p[2:3]])
    plain = SimpleNamespace(classes=("background", "particle", "boundary"), threshold=0.35)
    assert default_instancer(three, plain).max() == 1


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

    from temstream.models.evaluate import evaluate_simulated
    from temstream.models.metrics import pooled_score
    from temstream.models.report import difference_table

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

    rows, _ = evaluate_simulated({"classical": Fixed(False), "perfect": Fixed(True)},
                                 [("box", "moderate", 1.0, movies)])
    perfect = rows[1]
    assert perfect["unit"] == "movie" and perfect["units"].shape == (3, 6)
    assert pooled_score(perfect["units"].sum(0), "dice") == pytest.approx(perfect["dice"]) == 1.0
    assert perfect["dice_ci"] == (1.0, 1.0)
    one, _ = evaluate_simulated({"perfect": Fixed(True)}, [("box", "moderate", 1.0, movies[0])])
    assert one[0]["unit"] == "frame" and one[0]["units"].shape == (2, 6)
    table = difference_table(rows)
    assert "| sim | moderate | perfect | +1.000 | +1.000 to +1.000 |" in table
