"""The linker gives trackpy's links (tie-free data) and the exact LAP optimum."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from temstream.tracking.linking import Linker, link

tp = pytest.importorskip("trackpy")
tp.quiet()

JITTER = 1e-6


def jitter(df, seed=0):
    rng = np.random.default_rng(seed)
    df = df.copy()
    df["x"] = df["x"] + rng.normal(0, JITTER, len(df))
    df["y"] = df["y"] + rng.normal(0, JITTER, len(df))
    return df


def partition(df):
    return {frozenset(g.index) for _, g in df.groupby("particle")}


def assert_same_links_as_trackpy(f, search_range, memory=0, **tpkw):
    f = f.reset_index(drop=True)
    ref = tp.link(f, search_range, memory=memory, **tpkw)
    ours = link(f, search_range, memory=memory)
    assert partition(ours) == partition(ref)
    # the per-frame API gives the same ids as the batch one
    lk = Linker(search_range, memory=memory)
    ids = pd.Series(-1, index=f.index)
    for t in range(int(f.frame.min()), int(f.frame.max()) + 1):
        g = f[f.frame == t]
        ids[g.index] = lk.step({"x": g.x.to_numpy(), "y": g.y.to_numpy()}, frame=t)
    np.testing.assert_array_equal(ids.sort_index(), ours.particle.sort_index())
    return ours


def random_walks(n, frames, spacing, sigma, seed, start=None, stop=None):
    rng = np.random.default_rng(seed)
    side = spacing * np.sqrt(n)
    p = rng.uniform(0, side, (n, 2))
    start = np.zeros(n, int) if start is None else start
    stop = np.full(n, frames) if stop is None else stop
    rows = []
    for t in range(frames):
        on = (start <= t) & (t < stop)
        rows.append(pd.DataFrame({"frame": t, "x": p[on, 0], "y": p[on, 1]}))
        p = p + rng.normal(0, sigma, p.shape)
    return jitter(pd.concat(rows, ignore_index=True), seed)


def test_one_moving_particle():
    for first in (0, 3):
        f = pd.DataFrame({"frame": np.arange(first, first + 5), "x": np.arange(5.0), "y": 1.0})
        out = assert_same_links_as_trackpy(f, 5)
        assert out.particle.tolist() == [0] * 5
        assert out.particle.dtype == np.int64


def test_blank_frame_breaks_track_without_memory():
    f = pd.DataFrame({"frame": [0, 1, 2, 4, 5], "x": np.arange(5.0), "y": 1.0})
    assert link(f, 5).particle.tolist() == [0, 0, 0, 1, 1]
    assert link(f, 5, memory=1).particle.tolist() == [0] * 5
    lk = Linker(5)
    got = [lk.step({"x": np.array([v]), "y": np.array([1.0])}).tolist() for v in (0.0, 1.0, 2.0)]
    got.append(lk.step({"x": np.zeros(0), "y": np.zeros(0)}).tolist())
    got.append(lk.step({"x": np.array([3.0]), "y": np.array([1.0])}).tolist())
    assert got == [[0], [0], [0], [], [1]]


def test_two_isolated_then_nearby_walks():
    # trackpy case: walkers far apart, each starting at a later frame
    rng = np.random.default_rng(0)
    rows = []
    starts = [(10, 11), (10, 18), (14, 15), (20, 21), (13, 13), (10, 10), (17, 19)]
    for i, (x0, y0) in enumerate(starts):
        steps = rng.normal(0, 0.5, (30 - i, 2)).cumsum(0)
        rows.append(pd.DataFrame({"frame": np.arange(i, 30), "x": x0 + 10 * i + steps[:, 0],
                                  "y": y0 + steps[:, 1]}))
    f = jitter(pd.concat(rows, ignore_index=True))
    out = assert_same_links_as_trackpy(f, 5)
    assert out.particle.nunique() == 7


def test_many_isolated_random_walks():
    f = random_walks(300, 15, spacing=25, sigma=1.0, seed=1)
    out = assert_same_links_as_trackpy(f, 5)
    assert out.particle.nunique() == 300


def test_nearby_random_walks():
    f = random_walks(400, 15, spacing=9, sigma=1.3, seed=2)
    assert_same_links_as_trackpy(f, 4)


@pytest.mark.parametrize("memory", [0, 1, 3])
def test_memory_relinking(memory):
    f = random_walks(150, 20, spacing=20, sigma=1.0, seed=3)
    f = f.sample(frac=0.85, random_state=memory).sort_index()
    out = assert_same_links_as_trackpy(f, 5, memory=memory)
    if memory:
        assert out.particle.nunique() < link(f, 5).particle.nunique()


def test_memory_cases_from_trackpy_suite():
    # f0 (1,1),(4,1); f1 (1,1); f2 (1,1),(2,1); f3 (1,1),(2,1),(4,1); sr 5, memory 2
    pts = [[(1, 1), (4, 1)], [(1, 1)], [(1, 1), (2, 1)], [(1, 1), (2, 1), (4, 1)]]
    f = jitter(pd.DataFrame([{"frame": t, "x": float(x), "y": float(y)}
                             for t, p in enumerate(pts) for x, y in p]))
    out = assert_same_links_as_trackpy(f, 5, memory=2)
    assert out.particle.nunique() == 3
    # a walker seen at frames 1 and 4 only: memory 1 -> 2 tracks, memory 2 -> 1
    g = jitter(pd.DataFrame({"frame": [0, 1, 4, 5], "x": [0.0, 1.0, 2.0, 3.0], "y": 0.0}))
    assert link(g, 5, memory=1).particle.nunique() == 2
    assert link(g, 5, memory=2).particle.nunique() == 1


def test_appearing_and_disappearing():
    rng = np.random.default_rng(4)
    n, frames = 250, 20
    start = rng.integers(0, frames - 2, n)
    stop = np.minimum(start + rng.integers(2, frames, n), frames)
    f = random_walks(n, frames, spacing=14, sigma=1.0, seed=4, start=start, stop=stop)
    assert_same_links_as_trackpy(f, 4, memory=1)


def test_dense_crowd():
    f = random_walks(600, 10, spacing=6, sigma=0.8, seed=5)
    assert_same_links_as_trackpy(f, 2.5, link_strategy="numba")


@pytest.mark.parametrize("eps,expected", [(1.0, {(0, 1), (1, 0)}), (-1.0, {(0, 0), (1, 1)})])
def test_quadrature_sum_not_linear_sum(eps, expected):
    # trackpy's test: minimise the sum of squares, not the sum of distances
    lk = Linker(20)
    lk.step({"x": np.array([6.0, 14.0 + eps]), "y": np.array([0.0, 8.0])})
    ids = lk.step({"x": np.array([8.0, 0.0]), "y": np.array([0.0, 8.0])})
    assert {(int(i), j) for j, i in enumerate(ids)} == expected


@pytest.mark.parametrize("sr,n_links", [(13, 2), (12, 1)])
def test_penalty_for_unlinked_source(sr, n_links):
    # 226 < 65 + 169 links both at sr 13; at sr 12, 65 + 144 = 209 < 226
    lk = Linker(sr)
    lk.step({"x": np.array([0.0, 8.0]), "y": np.array([0.0, 0.0])})
    ids = lk.step({"x": np.array([7.0, 15.0]), "y": np.array([8.0, 8.0])})
    assert int((ids < 2).sum()) == n_links


def lap_optimum(a, b, sr):
    """Exact links by scipy on the dense (n, m + n) cost matrix."""
    n, m = len(a), len(b)
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    big = 1e12
    c = np.full((n, m + n), big)
    c[:, :m] = np.where(d2 <= sr * sr, d2, big)
    c[np.arange(n), m + np.arange(n)] = sr * sr
    r, col = linear_sum_assignment(c)
    return {(int(i), int(j)) for i, j in zip(r, col) if j < m}, c[r, col].sum()


def test_contracting_grid_exact():
    g = np.mgrid[-20:21:2, -20:21:2].reshape(2, -1).T.astype(float)
    rng = np.random.default_rng(0)
    a = g + 200 + rng.normal(0, JITTER, g.shape)
    b = g * 0.9 + 200 + rng.normal(0, JITTER, g.shape)
    lk = Linker(2)
    lk.step({"x": a[:, 0], "y": a[:, 1]})
    ids = lk.step({"x": b[:, 0], "y": b[:, 1]})
    ref, cost = lap_optimum(a, b, 2)
    assert {(int(i), j) for j, i in enumerate(ids) if i < len(a)} == ref
    assert len(ref) == 361
    assert lk.last_cost == pytest.approx(cost, rel=1e-12)
    # the 80 lost particles are the outermost ring; 81 links keep their identity
    # (the same as trackpy's adaptive search, reference.md e.2)
    lost = np.setdiff1d(np.arange(len(a)), ids)
    assert len(lost) == 80 and np.all(np.abs(g[lost]).max(1) == 20)
    assert int((ids == np.arange(len(a))).sum()) == 81


@pytest.mark.parametrize("seed", range(6))
def test_random_frames_match_lap_optimum(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(20, 120, 2)
    a = rng.uniform(0, 40, (n, 2))
    b = rng.uniform(0, 40, (m, 2))
    sr = rng.uniform(2, 6)
    lk = Linker(sr)
    lk.step({"x": a[:, 0], "y": a[:, 1]})
    ids = lk.step({"x": b[:, 0], "y": b[:, 1]})
    ref, cost = lap_optimum(a, b, sr)
    assert lk.last_cost == pytest.approx(cost, rel=1e-12)
    assert {(int(i), j) for j, i in enumerate(ids) if i < n} == ref


def test_ids_sequential_from_zero_in_row_order():
    lk = Linker(1)
    assert lk.step({"x": np.array([0.0, 10.0, 20.0]), "y": np.zeros(3)}).tolist() == [0, 1, 2]
    assert lk.step({"x": np.array([50.0, 10.5, 60.0]), "y": np.zeros(3)}).tolist() == [3, 1, 4]


def test_angle_unwrapping():
    n = 4
    period = 2 * np.pi / n
    true = np.cumsum(np.r_[0.1, np.full(30, 0.3)])  # rotates through several periods
    raw = (true + period / 2) % period - period / 2
    f = pd.DataFrame({"frame": np.arange(len(true)), "x": 5.0, "y": 5.0, "angle": raw})
    out = link(f, 3, n_fold=n)
    np.testing.assert_allclose(out.angle.to_numpy(), true, atol=1e-12)
    lk = Linker(3, n_fold=n, memory=2)
    got = []
    for t in range(len(true)):
        if t == 10:  # a gap: unwrapping continues across it (0.6 rad < pi/4 in total)
            continue
        lk.step({"x": [5.0], "y": [5.0], "angle": [raw[t]]}, frame=t)
        got.append(lk.unwrapped_angle[0])
    np.testing.assert_allclose(got, np.delete(true, [10]), atol=1e-12)
    assert Linker(3).step({"x": [1.0], "y": [1.0]}) is not None
    lk = Linker(3)
    lk.step({"x": [1.0], "y": [1.0]})
    assert lk.unwrapped_angle is None


def test_velocity_predictor():
    x = np.cumsum(np.r_[0, 2, 3, 4, 5, 6, 7])
    f = pd.DataFrame({"frame": np.arange(len(x)), "x": x.astype(float), "y": 0.0})
    assert link(f, 2.5).particle.nunique() > 1
    assert link(f, 2.5, predictor="velocity").particle.nunique() == 1
    # two particles crossing at 3 px/frame: without prediction identities swap
    t = np.arange(8)
    a = pd.DataFrame({"frame": t, "x": 3.0 * t, "y": 10.0})
    b = pd.DataFrame({"frame": t, "x": 21.0 - 3.0 * t, "y": 10.5})
    f = jitter(pd.concat([a, b], ignore_index=True))
    truth = {frozenset(range(8)), frozenset(range(8, 16))}
    assert partition(link(f, 3.5, predictor="velocity")) == truth
    assert partition(link(f, 3.5)) != truth


def test_bad_input():
    lk = Linker(5)
    with pytest.raises(ValueError, match="non-finite"):
        lk.step({"x": np.array([0.0, np.nan]), "y": np.zeros(2)})
    with pytest.raises(ValueError, match="non-finite"):
        lk.step({"x": np.array([np.inf]), "y": np.zeros(1)})
    with pytest.raises(ValueError, match="'x' and 'y'"):
        lk.step({"x": np.zeros(2)})
    with pytest.raises(ValueError, match="rows"):
        lk.step({"x": np.zeros(2), "y": np.zeros(3)})
    lk.step({"x": np.zeros(1), "y": np.zeros(1)}, frame=5)
    with pytest.raises(ValueError, match="increasing order"):
        lk.step({"x": np.zeros(1), "y": np.zeros(1)}, frame=5)
    with pytest.raises(ValueError, match="search_range"):
        Linker(0)
    with pytest.raises(ValueError, match="search_range"):
        Linker(float("nan"))
    with pytest.raises(ValueError, match="memory"):
        Linker(1, memory=-1)
    with pytest.raises(ValueError, match="predictor"):
        Linker(1, predictor="kalman")
    with pytest.raises(ValueError, match="n_fold"):
        Linker(1, n_fold=0)
    with pytest.raises(ValueError, match="frame 1: non-finite"):
        link(pd.DataFrame({"frame": [0, 1], "x": [0.0, np.nan], "y": [0.0, 0.0]}), 5)
    with pytest.raises(ValueError, match="integers"):
        link(pd.DataFrame({"frame": [0, 0.5], "x": [0.0, 1.0], "y": [0.0, 0.0]}), 5)


def test_duplicates_empty_and_unsorted_frames():
    # duplicate points: deterministic, lowest row index wins the tie
    lk = Linker(5)
    lk.step({"x": [1.0], "y": [1.0]})
    assert lk.step({"x": [2.0, 2.0], "y": [1.0, 1.0]}).tolist() == [0, 1]
    lk = Linker(5)
    lk.step({"x": [1.0, 1.0], "y": [1.0, 1.0]})
    assert lk.step({"x": [2.0], "y": [1.0]}).tolist() == [0]
    # empty frames, empty table
    assert Linker(5).step({"x": [], "y": []}).tolist() == []
    empty = link(pd.DataFrame({"frame": [], "x": [], "y": []}), 5)
    assert len(empty) == 0 and "particle" in empty
    # link() sorts by frame (stable) and leaves its input alone
    f = pd.DataFrame({"frame": [1, 0, 1, 0], "x": [0.5, 0.0, 10.5, 10.0], "y": 0.0})
    before = f.copy()
    out = link(f, 2)
    pd.testing.assert_frame_equal(f, before)
    assert out.frame.tolist() == [0, 0, 1, 1]
    assert out.particle.tolist() == [0, 1, 0, 1]
