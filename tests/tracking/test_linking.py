"""The numba linker against trackpy.link and the exact LAP optimum."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from temstream.tracking.linking import Linker, link

trackpy = pytest.importorskip("trackpy")
trackpy.quiet()


def same_partition(a, b):
    """True if two label arrays group the same rows together."""
    a = np.asarray(a)
    b = np.asarray(b)
    pairs = np.unique(np.stack([a, b]), axis=1).shape[1]
    return pairs == len(np.unique(a)) == len(np.unique(b))


def assert_like_trackpy(df, search_range, memory=0):
    df = df.reset_index(drop=True).assign(row=np.arange(len(df)))
    ours = link(df, search_range, memory=memory).sort_values("row")
    ref = trackpy.link(df.copy(), search_range, memory=memory).sort_values("row")
    assert same_partition(ours["particle"], ref["particle"])
    # ids are sequential from 0
    assert set(np.unique(ours["particle"])) == set(range(ours["particle"].nunique()))
    return ours


def walks(n, frames, spacing, sigma, seed, box=None):
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    g = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2)[:n]
    start = g * spacing + rng.uniform(0, spacing * 0.5, (n, 2))
    steps = rng.normal(0, sigma, (frames, n, 2))
    steps[0] = 0
    pos = start + np.cumsum(steps, axis=0)
    return pd.DataFrame({"frame": np.repeat(np.arange(frames), n),
                         "x": pos[..., 0].ravel(), "y": pos[..., 1].ravel(),
                         "truth": np.tile(np.arange(n), frames)})


def test_one_moving_particle():
    f = pd.DataFrame({"frame": np.arange(3, 8), "x": np.arange(5.0), "y": 1.0})
    out = assert_like_trackpy(f, 5)
    assert out["particle"].tolist() == [0] * 5


def test_blank_frame_breaks_track_without_memory():
    f = pd.DataFrame({"frame": [0, 1, 2, 4, 5], "x": np.arange(5.0), "y": 1.0})
    assert link(f, 5)["particle"].tolist() == [0, 0, 0, 1, 1]
    assert link(f, 5, memory=1)["particle"].tolist() == [0] * 5
    assert_like_trackpy(f, 5)
    assert_like_trackpy(f, 5, memory=1)


def test_two_particles_shuffled_rows():
    a = pd.DataFrame({"frame": np.arange(5), "x": np.arange(5.0), "y": 1.0})
    b = pd.DataFrame({"frame": np.arange(1, 5), "x": np.arange(1, 5.0), "y": 3.0})
    f = pd.concat([a, b]).sample(frac=1, random_state=0)
    out = assert_like_trackpy(f, 5)
    assert out["particle"].nunique() == 2


@pytest.mark.parametrize("eps,expected", [(1, {(0, 1), (1, 0)}), (-1, {(0, 0), (1, 1)})])
def test_quadrature_sum_not_linear_sum(eps, expected):
    # A(6,0) B(14+eps,8) -> C(8,0) D(0,8): squared distances decide (trackpy #18)
    f = pd.DataFrame({"frame": [0, 0, 1, 1], "x": [6, 14 + eps, 8, 0.0], "y": [0, 8, 0, 8.0]})
    out = link(f, 20)
    p = out["particle"].to_numpy()
    got = {(0, int(np.flatnonzero(p[2:] == p[0])[0])), (1, int(np.flatnonzero(p[2:] == p[1])[0]))}
    assert got == expected
    assert_like_trackpy(f, 20)


@pytest.mark.parametrize("sr,n_links", [(13, 2), (12, 1)])
def test_unlinked_penalty(sr, n_links):
    # (0,0),(8,0) -> (7,8),(15,8): 226 < 65 + 169 at sr 13; 65 + 144 < 226 at sr 12
    f = pd.DataFrame({"frame": [0, 0, 1, 1], "x": [0, 8, 7, 15.0], "y": [0, 0, 8, 8.0]})
    out = link(f, sr)
    assert 4 - out["particle"].nunique() == n_links
    assert_like_trackpy(f, sr)


def test_many_isolated_random_walks():
    f = walks(400, 20, spacing=30, sigma=1.0, seed=1)
    out = assert_like_trackpy(f, 5)
    assert same_partition(out["particle"], out["truth"])


def test_nearby_random_walks():
    f = walks(400, 15, spacing=8, sigma=1.0, seed=2)
    assert_like_trackpy(f, 4)


def test_dense_crowd():
    f = walks(600, 10, spacing=5.5, sigma=1.0, seed=3)
    out = assert_like_trackpy(f, 3.5)
    assert out["particle"].nunique() > 600      # some links are genuinely lost


def test_memory_relinking():
    f = walks(200, 25, spacing=25, sigma=1.0, seed=4)
    rng = np.random.default_rng(5)
    f = f[rng.random(len(f)) > 0.2]           # 20 % dropout
    for memory in (0, 2):
        out = assert_like_trackpy(f, 5, memory=memory)
    assert out["particle"].nunique() < assert_like_trackpy(f, 5)["particle"].nunique()
    # with memory 2 only runs of >= 3 missed frames (~0.8 % per step) still cut tracks
    assert out["particle"].nunique() <= 200 + 60


def test_memory_keeps_the_gap_positions():
    # trackpy #22: f0 (1,1),(4,1) f1 (1,1) f2 (1,1),(2,1) f3 (1,1),(2,1),(4,1); sr 5, memory 2
    f = pd.DataFrame({"frame": [0, 0, 1, 2, 2, 3, 3, 3],
                      "x": [1, 4, 1, 1, 2, 1, 2, 4.0], "y": 1.0})
    f["x"] += np.random.default_rng(0).normal(0, 1e-6, len(f))
    out = assert_like_trackpy(f, 5, memory=2)
    assert out["particle"].nunique() == 3


def test_appearing_and_disappearing():
    rng = np.random.default_rng(6)
    rows = []
    for p in range(300):
        t0 = rng.integers(0, 20)
        t1 = min(30, t0 + rng.integers(2, 15))
        xy = rng.uniform(0, 400, 2) + np.cumsum(rng.normal(0, 1, (t1 - t0, 2)), axis=0)
        rows.append(pd.DataFrame({"frame": np.arange(t0, t1), "x": xy[:, 0], "y": xy[:, 1]}))
    f = pd.concat(rows)
    assert_like_trackpy(f, 4)
    assert_like_trackpy(f, 4, memory=1)


def test_streaming_equals_batch():
    f = walks(300, 10, spacing=10, sigma=1.2, seed=7)
    batch = link(f, 4)["particle"].to_numpy()
    lk = Linker(4)
    ids = np.concatenate([lk.step(g) for _, g in f.groupby("frame")])
    assert np.array_equal(ids, batch)


def exact_lap_links(src, dst, sr):
    """Dense reference: scipy LSA on [d^2 | diag(sr^2)] with forbidden pairs."""
    ns, nd = len(src), len(dst)
    d2 = ((src[:, None, :] - dst[None, :, :]) ** 2).sum(-1)
    big = 1e12
    cost = np.full((ns, nd + ns), big)
    cost[:, :nd] = np.where(d2 <= sr * sr, d2, big)
    cost[np.arange(ns), nd + np.arange(ns)] = sr * sr
    r, c = linear_sum_assignment(cost)
    return {(int(i), int(j)) for i, j in zip(r, c) if j < nd}, cost[r, c].sum()


def contracting_grid(jitter_seed=0):
    g = np.stack(np.meshgrid(np.arange(-20, 21, 2.0), np.arange(-20, 21, 2.0)), -1).reshape(-1, 2)
    rng = np.random.default_rng(jitter_seed)
    a = g + 200 + rng.normal(0, 1e-6, g.shape)
    b = g * 0.9 + 200 + rng.normal(0, 1e-6, g.shape)
    return a, b


def test_contracting_grid_is_the_exact_optimum():
    a, b = contracting_grid()
    f = pd.DataFrame({"frame": np.repeat([0, 1], 441), "x": np.r_[a[:, 0], b[:, 0]],
                      "y": np.r_[a[:, 1], b[:, 1]]})
    lk = Linker(2.0)
    lk.step(f[f.frame == 0])
    ids = lk.step(f[f.frame == 1])
    assert lk.stats["largest"] > 30          # beyond trackpy's subnet limit
    ours = {(int(i), int(j)) for j, i in enumerate(ids) if i < 441}
    ref, ref_cost = exact_lap_links(a, b, 2.0)
    assert ours == ref
    assert len(ours) == 361
    d2 = sum(((a[i] - b[j]) ** 2).sum() for i, j in ours)
    assert d2 + 4.0 * (441 - len(ours)) == pytest.approx(ref_cost, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_random_groups_match_dense_lap(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 40, (150, 2))
    b = a[rng.permutation(150)[:130]] + rng.normal(0, 1.5, (130, 2))
    b = np.r_[b, rng.uniform(0, 40, (20, 2))]
    lk = Linker(3.0)
    lk.step({"x": a[:, 0], "y": a[:, 1]})
    ids = lk.step({"x": b[:, 0], "y": b[:, 1]})
    ours = {(int(i), int(j)) for j, i in enumerate(ids) if i < 150}
    ref, _ = exact_lap_links(a, b, 3.0)
    assert ours == ref


def test_orientation_unwrapping():
    rng = np.random.default_rng(8)
    n = 4
    period = 2 * np.pi / n
    true = np.cumsum(rng.normal(0, 0.15, (60, 3)), axis=0) + [0.1, 1.0, -2.0]
    wrapped = (true + period / 2) % period - period / 2
    lk = Linker(5, n_fold=n)
    out = []
    for t in range(60):
        lk.step({"x": [0.0, 20.0, 40.0], "y": [0.0, 0, 0], "angle": wrapped[t]})
        out.append(lk.unwrapped_angle.copy())
    out = np.array(out)
    offset = out[0] - true[0]
    assert np.allclose(np.round(offset / period) * period, offset)
    assert np.allclose(out - offset, true, atol=1e-12)
    assert np.allclose(out, np.unwrap(wrapped, period=period, axis=0))
    # without angles or n_fold there is no unwrapped angle
    assert Linker(5).step({"x": [0.0], "y": [0.0], "angle": [0.1]}) is not None
    lk = Linker(5)
    lk.step({"x": [0.0], "y": [0.0], "angle": [0.1]})
    assert lk.unwrapped_angle is None


def test_unwrapping_in_link_and_nan_angle():
    f = pd.DataFrame({"frame": range(5), "x": 0.0, "y": 0.0,
                      "angle": [0.7, -0.7, np.nan, -0.6, 0.75]})
    out = link(f, 5, n_fold=4)
    u = out["angle_unwrapped"].to_numpy()
    assert np.isnan(u[2])
    assert np.allclose(u[[0, 1, 3, 4]], [0.7, -0.7 + np.pi / 2, -0.6 + np.pi / 2,
                                         0.75], atol=1e-12)


def test_velocity_predictor():
    # 3x3 grid, spacing 100, accelerating to the right: steps 35, 50, 65, 80
    g = np.stack(np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0), -1).reshape(-1, 2)
    xs = np.cumsum([0, 35, 50, 65, 80])
    frames = [g + [x, 0] for x in xs]
    plain = Linker(45)
    pred = Linker(45, predictor="velocity")
    for fr in frames:
        a = plain.step({"x": fr[:, 0], "y": fr[:, 1]})
        b = pred.step({"x": fr[:, 0], "y": fr[:, 1]})
    assert np.array_equal(b, np.arange(9))
    assert not np.array_equal(a, np.arange(9))


def test_bad_input():
    lk = Linker(5)
    with pytest.raises(ValueError, match="NaN"):
        lk.step({"x": [0.0, np.nan], "y": [0.0, 1.0]})
    with pytest.raises(ValueError, match="rows"):
        lk.step({"x": [0.0, 1.0], "y": [0.0]})
    lk.step({"x": [0.0], "y": [0.0]}, frame=3)
    with pytest.raises(ValueError, match="increasing"):
        lk.step({"x": [0.0], "y": [0.0]}, frame=3)
    with pytest.raises(ValueError, match="search_range"):
        Linker(0)
    with pytest.raises(ValueError, match="memory"):
        Linker(5, memory=-1)
    with pytest.raises(ValueError, match="predictor"):
        Linker(5, predictor="kalman")
    with pytest.raises(ValueError, match="frame"):
        link(pd.DataFrame({"x": [0.0], "y": [0.0]}), 5)
    with pytest.raises(ValueError, match="integer"):
        link(pd.DataFrame({"frame": [0.5], "x": [0.0], "y": [0.0]}), 5)


def test_empty_frames_duplicates_and_order():
    lk = Linker(5)
    assert lk.step({"x": [], "y": []}).tolist() == []
    assert lk.step({"x": [1.0, 1.0], "y": [2.0, 2.0]}).tolist() == [0, 1]   # duplicates
    assert sorted(lk.step({"x": [1.0, 1.0], "y": [2.0, 2.0]}).tolist()) == [0, 1]
    assert lk.step({"x": [], "y": []}).tolist() == []
    # exact ties are broken by index: the lower-index source keeps the link ...
    lk = Linker(5)
    lk.step({"x": [1.0, 1.0, 9.0], "y": [1.0, 1.0, 1.0]})
    assert lk.step({"x": [2.0], "y": [1.0]}).tolist() == [0]
    # ... and the lower-index destination is taken
    lk = Linker(5)
    lk.step({"x": [1.0], "y": [1.0]})
    assert lk.step({"x": [2.0, 2.0], "y": [1.0, 1.0]}).tolist() == [0, 1]
    assert link(pd.DataFrame({"frame": [], "x": [], "y": []}), 5)["particle"].size == 0
    # frames out of order in link: sorted first, same result as sorted input
    f = walks(20, 6, spacing=20, sigma=1, seed=9)
    shuffled = f.sample(frac=1, random_state=1)
    a = link(f, 5).sort_index()["particle"]
    b = link(shuffled, 5).sort_index()["particle"]
    assert same_partition(a, b)
    # the input is not modified
    assert "particle" not in shuffled.columns


@pytest.mark.parametrize("sr,n_tracks", [(1.1, 1), (0.9, 5)])
def test_search_range_bounds_a_unit_stepper(sr, n_tracks):
    f = pd.DataFrame({"frame": np.arange(5), "x": np.arange(5.0), "y": 0.0})
    assert link(f, sr)["particle"].nunique() == n_tracks
    assert_like_trackpy(f, sr)


@pytest.mark.parametrize("step,sr", [((1.0, 0.0), 1.5), ((1.0, 1.0), 8.0)])
def test_column_of_particles_moving_together(step, sr):
    # trackpy's 16 particles 2 px apart moving in step; sr 8 gives every one ~8 candidates
    y0 = np.arange(0, 32, 2.0)
    rows = [pd.DataFrame({"frame": t, "x": step[0] * t, "y": y0 + step[1] * t}) for t in range(5)]
    f = pd.concat(rows, ignore_index=True)
    out = assert_like_trackpy(f, sr)
    assert out["particle"].nunique() == 16
    for _, g in out.groupby("particle"):
        assert np.allclose(np.diff(g["x"]), step[0]) and np.allclose(np.diff(g["y"]), step[1])


def test_walks_starting_at_different_frames():
    rng = np.random.default_rng(12)
    starts = [(10, 11), (10, 18), (14, 15), (20, 21), (13, 13), (10, 10), (17, 19)]
    rows = []
    for i, (x0, y0) in enumerate(starts):
        n = 30 - i
        xy = np.array([x0, y0]) * 10 + np.cumsum(rng.normal(0, 0.5, (n, 2)), axis=0)
        rows.append(pd.DataFrame({"frame": np.arange(i, 30), "x": xy[:, 0], "y": xy[:, 1],
                                  "truth": i}))
    f = pd.concat(rows, ignore_index=True).sample(frac=1, random_state=3)
    out = assert_like_trackpy(f, 5)
    assert same_partition(out["particle"], out["truth"])


def test_a_frame_not_committed_leaves_the_tracks_as_they_were():
    lk = Linker(5.0, memory=1)
    assert lk.step({"x": [0.0, 50.0], "y": [0.0, 0.0]}).tolist() == [0, 1]
    # a blurred frame: one smeared particle continues track 0, a speck would start a track
    peek = lk.step({"x": [1.0, 90.0], "y": [0.0, 0.0]}, frame=1, commit=False)
    assert peek.tolist() == [0, -1] and lk.frame == 0 and lk.n_tracks == 2
    # the next good frame links to the positions before the bad one; the bad frame was a gap
    assert lk.step({"x": [0.5, 51.0], "y": [0.0, 0.0]}, frame=2).tolist() == [0, 1]
    assert lk.step({"x": [60.0], "y": [0.0]}).tolist() == [2]  # ids go on from 2


def test_refresh_keeps_chosen_tracks_waiting():
    lk = Linker(5.0, memory=1)
    lk.step({"x": [0.0, 50.0], "y": [0.0, 0.0]})
    x, y, ids, last = lk.waiting
    assert ids.tolist() == [0, 1] and last.tolist() == [0, 0]
    for frame in range(1, 6):
        lk.refresh(lk.waiting[0] < 10)  # the first one is "out of view": it waits
        lk.step({"x": [], "y": []}, frame=frame)
    assert lk.waiting[2].tolist() == [0]
    assert lk.step({"x": [1.0], "y": [0.0]}).tolist() == [0]
    with pytest.raises(ValueError, match="one entry per waiting track"):
        lk.refresh([True, True, True])
