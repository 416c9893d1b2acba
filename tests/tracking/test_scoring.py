"""Ground-truth scores on hand-built cases with known answers."""

import numpy as np
import pandas as pd
import pytest

from temstream.tracking.scoring import match_detections, score_tracks


def two_tracks(n=10):
    t = np.arange(n)
    return pd.DataFrame({"frame": np.r_[t, t], "particle": np.repeat([0, 1], n),
                         "x": np.r_[t * 1.0, t * 1.0], "y": np.repeat([0.0, 50.0], n)})


def test_perfect_prediction():
    truth = two_tracks()
    s = score_tracks(truth, truth.assign(particle=truth["particle"] + 10).sample(frac=1,
                                                                                random_state=0))
    for k in ("correct_link_fraction", "link_precision", "link_jaccard", "track_purity",
              "target_effectiveness", "alpha", "beta", "jsc", "detection_recall"):
        assert s[k] == pytest.approx(1.0), k
    assert s["rmse"] == pytest.approx(0.0)
    assert s["n_truth_links"] == 18


def test_identity_swap():
    truth = two_tracks()
    pred = truth.copy()
    late = pred["frame"] >= 5
    pred.loc[late, "particle"] = 1 - pred.loc[late, "particle"]
    s = score_tracks(truth, pred)
    assert s["correct_link_fraction"] == pytest.approx(16 / 18)
    assert s["link_precision"] == pytest.approx(16 / 18)
    assert s["track_purity"] == pytest.approx(0.5)
    # ISBI: each truth track is paired with a half-right track: d = 5 close + 5 x gate
    assert s["alpha"] == pytest.approx(0.5)


def test_broken_track_alpha_beta():
    t = np.arange(10)
    truth = pd.DataFrame({"frame": t, "particle": 0, "x": t * 1.0, "y": 0.0})
    pred = truth.assign(particle=(t >= 5).astype(int))
    s = score_tracks(truth, pred, gate=5.0)
    assert s["alpha"] == pytest.approx(0.5)                  # 1 - 25 / 50
    assert s["beta"] == pytest.approx((50 - 25) / (50 + 25))  # other half is spurious
    assert s["correct_link_fraction"] == pytest.approx(8 / 9)
    assert s["track_purity"] == pytest.approx(1.0)
    assert s["target_effectiveness"] == pytest.approx(0.5)


def test_offset_missing_and_spurious():
    truth = two_tracks()
    pred = truth.copy()
    pred.loc[pred["particle"] == 0, "x"] += 1.0              # 1 px off on 10 points
    pred = pred.drop(index=15)                               # one missed detection
    spur = pd.DataFrame({"frame": [0, 1, 2], "particle": 9, "x": 200.0, "y": 200.0})
    s = score_tracks(truth, pd.concat([pred, spur]), gate=5.0)
    d_x0 = 5.0 * 20
    assert s["alpha"] == pytest.approx(1 - (10 * 1.0 + 5.0) / d_x0)
    assert s["beta"] == pytest.approx((d_x0 - 15.0) / (d_x0 + 3 * 5.0))
    assert s["jsc"] == pytest.approx(19 / (20 + 22 - 19))
    assert s["rmse"] == pytest.approx(np.sqrt(10 / 19))
    assert s["detection_recall"] == pytest.approx(19 / 20)
    # the missing point cuts two truth links; the rest are correct
    assert s["correct_link_fraction"] == pytest.approx(16 / 18)


def test_match_detections_is_exact_and_gated():
    truth = pd.DataFrame({"frame": [0, 0], "x": [0.0, 4.0], "y": [0.0, 0.0]})
    pred = pd.DataFrame({"frame": [0, 0, 1], "x": [2.1, 6.5, 0.0], "y": [0.0, 0.0, 0.0]})
    # greedy nearest would take 2.1 for truth 1 (1.9 px) and leave truth 0 unmatched
    assert match_detections(truth, pred, gate=3.0).tolist() == [0, 1]
    assert match_detections(truth, pred, gate=1.0).tolist() == [-1, -1]


def test_bad_input():
    with pytest.raises(ValueError, match="particle"):
        score_tracks(pd.DataFrame({"frame": [0], "x": [0.0], "y": [0.0]}), two_tracks())
    bad = two_tracks()
    bad.loc[0, "x"] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        score_tracks(two_tracks(), bad)


def test_track_continuity_with_and_without_truth():
    import pandas as pd

    from temstream.tracking.scoring import track_continuity

    frames = np.arange(20)
    truth = pd.concat([pd.DataFrame({"frame": frames, "particle": k, "x": 10.0 + 30 * k,
                                     "y": 5.0 + 0.5 * frames}) for k in range(3)])
    pred = truth.copy()
    pred["particle"] = pred["particle"] + 10
    whole = track_continuity(pred, truth)
    assert whole["end_to_end"] == 1.0 and whole["tracks_per_true"] == 1.0
    assert whole["median_length_ratio"] == 1.0 and whole["spanning"] == 1.0
    # particle 1 cut in two at frame 8, particle 2 missed in frame 0 (still whole: ends=5),
    # and a speck of noise for one frame
    pred.loc[(pred["particle"] == 11) & (pred["frame"] >= 8), "particle"] = 21
    pred = pred[~((pred["particle"] == 12) & (pred["frame"] == 0))]
    speck = pd.DataFrame({"frame": [3], "particle": [30], "x": [200.0], "y": [200.0]})
    pred = pd.concat([pred, speck])
    c = track_continuity(pred, truth)
    assert c["end_to_end"] == pytest.approx(2 / 3)
    assert c["tracks"] == 5 and c["true_tracks"] == 3 and c["matched_tracks"] == 4
    assert c["tracks_per_true"] == pytest.approx(5 / 3)
    assert c["median_length"] == 12  # 20, 8, 12, 19 and 1 frames
    free = track_continuity(pred)  # what a real movie allows: frame 0's tracks at the end
    assert free["end_to_end"] == pytest.approx(1 / 2)
    unlinked = pred.assign(particle=-1)
    assert track_continuity(unlinked)["tracks"] == 0
    nothing = track_continuity(pred.iloc[:0], truth)  # a low-dose movie where nothing was found
    assert nothing["end_to_end"] == 0.0 and nothing["tracks"] == 0
