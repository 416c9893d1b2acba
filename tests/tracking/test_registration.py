"""Registration: shifts through stage jumps, bad frames flagged, the particles' vote."""

import numpy as np
import pytest

from temstream.sim import simulate
from temstream.tracking.registration import Registrar, vote_shift


@pytest.fixture(scope="module")
def jumpy_movie():
    # a vibrating lattice, a stage jump of (20, -7) px at frame 6, the beam off in frame 9 and
    # the field smeared by a 10 px move during frame 11
    return simulate("hex-lattice", frames=14, size=128, seed=3, stage_jumps=[[6, 20, -7]],
                    blank_frames=[9], blurred_frames=[[11, 10, 0]])


def _visible(movie, i):
    t = movie.truth[movie.truth["frame"] == i]
    return t[["x", "y"]].to_numpy()


@pytest.mark.parametrize("with_particles", [False, True])
def test_registration_follows_the_stage_through_a_jump(jumpy_movie, with_particles):
    reg = Registrar()
    out = [reg(f, _visible(jumpy_movie, i) if with_particles else None)
           for i, f in enumerate(jumpy_movie.frames)]
    true = jumpy_movie.offsets - jumpy_movie.offsets[0]
    shift = np.array([[r.shift_x, r.shift_y] for r in out])
    good = [i for i, e in enumerate(jumpy_movie.events) if not e]
    err = np.hypot(*(shift - true)[good].T)
    assert err.max() < 1.5, err  # the stage also jitters by ~0.4 px a frame
    assert [i for i, r in enumerate(out) if r.jump] == [6]
    assert out[6].step_x == pytest.approx(20, abs=1.5) and out[6].step_y == pytest.approx(-7, abs=1.5)


def test_blank_and_blurred_frames_are_flagged_and_keep_the_shift(jumpy_movie):
    reg = Registrar()
    out = [reg(f) for f in jumpy_movie.frames]
    assert [(i, r.quality) for i, r in enumerate(out) if r.quality] == [(9, "blank"),
                                                                      (11, "blurred")]
    assert not out[9].registered
    assert (out[9].shift_x, out[9].shift_y) == (out[8].shift_x, out[8].shift_y)
    assert out[9].bad and out[11].bad and not out[10].bad


def test_constant_and_saturated_frames():
    rng = np.random.default_rng(0)
    reg = Registrar()
    assert reg(np.full((64, 64), 7, np.uint16)).quality == "blank"
    frame = rng.poisson(500, (64, 64)).astype(np.uint16)
    frame[:20] = 65535
    assert "saturated" in reg(frame).quality
    assert reg(rng.poisson(500, (64, 64)).astype(np.uint16)).quality == ""


def test_an_image_shifted_by_a_known_amount():
    rng = np.random.default_rng(1)
    big = rng.normal(0, 1, (300, 300)).astype(np.float32)
    import cv2
    big = cv2.GaussianBlur(big, (0, 0), 2.0)
    reg = Registrar(max_side=128)  # 256 px frames are measured at half size
    reg(big[20:276, 20:276])
    r = reg(big[11:267, 33:289])  # the field moved by (-13, +9) px on the detector
    assert r.registered
    assert r.shift_x == pytest.approx(-13, abs=0.5) and r.shift_y == pytest.approx(9, abs=0.5)
    assert r.jump  # the first step is measured against standing still


def test_vote_shift_ignores_particles_moving_on_their_own():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 400, (300, 2))
    b = a + [-9.0, 8.0] + rng.normal(0, 0.7, a.shape)
    b[:100] = rng.uniform(0, 400, (100, 2))  # a third went somewhere else entirely
    assert vote_shift(a, b) == pytest.approx([-9.0, 8.0], abs=0.3)
    assert vote_shift(a, b, expect=(-9, 8), radius=5) == pytest.approx([-9.0, 8.0], abs=0.3)
    assert vote_shift(a[:0], b) is None
    unrelated = rng.uniform(0, 400, (300, 2))
    assert vote_shift(a, unrelated) is None


def test_reset_starts_a_new_origin(jumpy_movie):
    reg = Registrar()
    for f in jumpy_movie.frames[:8]:
        reg(f)
    reg.reset()
    assert reg(jumpy_movie.frames[8]).shift_x == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_side"):
        Registrar(max_side=4)
    with pytest.raises(ValueError, match="2-D"):
        Registrar()(np.zeros((2, 3, 4)))


def test_frames_dropped_in_a_drift_are_not_a_jump():
    import cv2

    rng = np.random.default_rng(5)
    field = cv2.GaussianBlur(rng.normal(0, 1, (200, 400)).astype(np.float32), (0, 0), 2.0)
    shown = [i for i in range(20) if not 8 <= i < 12]  # four frames dropped under load
    frames = [field[40:168, 3 * i:3 * i + 128] for i in shown]  # drifting 3 px a frame

    def jumps(with_index):
        reg = Registrar()
        return [i for i, f in zip(shown, frames)
                if reg(f, None, i if with_index else None).jump]

    assert jumps(True) == []
    assert jumps(False) == [12]  # without the index the 15 px step looks like a jump
