"""Online registration of a movie and the quality of each frame (numpy / OpenCV only).

:class:`Registrar` takes the frames of a movie one at a time and says, for each, how far the
field has moved on the detector since the first frame (stage drift and jumps) and whether the
frame can be trusted.

**Shift.** Phase correlation: frames are reduced to at most ``max_side`` px (area average),
windowed (Hann), and the cross-power spectrum of two frames is whitened (divided by its
magnitude, so edges and texture count and brightness does not) and low-pass weighted (a
Gaussian of ``lowpass`` cycles per working px: shot noise does not correlate between frames,
so frequencies above the signal's only add scatter). The correlation peak, refined to a
fraction of a pixel by a parabola through the logarithms of its neighbours (exact for the
Gaussian peak the low-pass makes), is the displacement between the two frames.

Each frame is measured twice:

1. against the **last good frame**, in which little has moved on its own, so the true peak is
   strong: this one decides jumps. The peak within ``jump_px`` of the expected shift (the last
   shift plus the recent steps' median) wins unless it is weaker than ``min_peak`` and another
   is ``jump_margin`` times sharper: a jump moves all of the frame, leaving nothing to
   correlate near the expected shift, while particles of one size correlate with each other at
   the vectors between them, and particles that flow together over the support correlate at
   their flow, making peaks elsewhere as high as the true one or higher;
2. against a **key frame**, near the first answer (within ``key_tolerance_px``), so that the
   small errors of frame-to-frame steps do not add up over a movie. The key frame is kept while
   its peak stays at least ``rekey`` times as sharp as when it was chosen; then the last good
   frame becomes the key frame. Against an older frame, particles that move on their own have
   decorrelated and what moves with the stage (the support, the window's texture, particles
   that sit still) dominates the peak: the shift is the stage's.

Particles that flow as a whole over a featureless background look to any image registration
like a moving stage; linking in registered coordinates is then still right, but ``x_reg`` is
not the lab frame.

**Jumps.** A step that differs from the recent steps' median by more than ``jump_px``.

**Quality.** The power of the frame in a mid band (0.04–0.2 cycles per working px), in four
orientation sectors, is compared with its running median over the recent frames that were not
blank, in units of its own scatter there (median absolute deviation of the logarithm, at least
``min_scatter``):

- ``blank``: every sector below ``blank_ratio`` of its median (the beam off, the shutter
  closed), or a constant frame;
- ``blurred``: some sector more than ``blur_z`` scatters below its median, below
  ``blur_ratio`` of it and below ``blur_ratio`` of the least changed sector (motion blur takes
  the detail along the motion only: in a dense field of small particles a 5 px move takes
  20–60 % of the power of one direction; a dimmer beam takes it from all directions) while no
  sector gained more than a quarter (a rod that turns moves power between directions);
- ``saturated``: more than ``saturated_fraction`` of the pixels at the frame's maximum (the
  dtype's top, or any level where the rest of the frame varies).

A blank frame keeps the previous shift; a flagged frame never becomes a reference. A good frame whose correlation peak is less than half the
recent peaks' median is registered but not used as a reference either.

Costs (``benchmarks/bench_registration.py``, ``docs/tracking.md``): 3–6 ms of CPU per 512² or
1024² frame (reduced to at most ``max_side`` = 256 px), the particles' vote included.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft

from temstream.tracking import _linking_kernels as _k

__all__ = ["Registrar", "Registration", "QUALITY_FLAGS", "vote_shift"]

#: what :attr:`Registration.quality` may contain (comma-separated; empty = a good frame)
QUALITY_FLAGS = ("blank", "blurred", "saturated")

_SECTORS = 4
_BAND = (0.04, 0.2)  # cycles per working pixel
_MIN_HISTORY = 5  # good frames before the blur test
_MAX_VOTERS = 1500  # particles of the last frame that vote, at most
_NOT_GAINED = math.log(1.25)  # blur takes detail away: no direction gains more than this


@dataclass
class Registration:
    """What :class:`Registrar` says about one frame.

    Attributes
    ----------
    shift_x, shift_y : float
        Displacement of the field on the detector since the series' first frame (px): a
        feature at ``(x, y)`` in the first frame is at ``(x + shift_x, y + shift_y)`` here, so
        registered coordinates are ``x - shift_x``, ``y - shift_y``.
    step_x, step_y : float
        This frame's shift minus the previous frame's (px).
    peak : float
        Sharpness of the correlation peak with the last good frame (its z-score on the
        correlation surface); NaN for the first frame and for blank ones.
    jump : bool
        The step differs from the recent steps by more than ``jump_px``.
    quality : str
        ``""`` for a good frame, else comma-separated flags from :data:`QUALITY_FLAGS`.
    registered : bool
        The shift was measured (False for the first frame, blank frames and frames whose
        correlation peak was too weak: they keep the previous shift).
    """

    shift_x: float = 0.0
    shift_y: float = 0.0
    step_x: float = 0.0
    step_y: float = 0.0
    peak: float = float("nan")
    jump: bool = False
    quality: str = ""
    registered: bool = False

    @property
    def bad(self) -> bool:
        """The frame is flagged (blank, blurred or saturated)."""
        return bool(self.quality)


class Registrar:
    """Frame-by-frame shift (stage drift and jumps) and frame quality.

    Parameters
    ----------
    max_side : int
        Frames are reduced (area average, by an integer factor) until no side exceeds this
        (px); shifts are measured there and scaled back.
    lowpass : float
        Sigma of the Gaussian low-pass on the whitened cross-power spectrum, cycles per
        working pixel (0.5 is Nyquist).
    jump_px : float
        A step that differs from the median of the recent steps by more than this (px) is a
        jump; also the radius around the expected shift searched first.
    jump_margin : float
        A peak farther than ``jump_px`` from the expected shift wins only when this many times
        sharper than the best one near it.
    key_tolerance_px : float
        Radius around the frame-to-frame answer searched in the key frame's correlation (px).
    rekey : float
        The key frame is replaced when its peak falls below this share of its first one.
    min_peak : float
        Correlation peaks less sharp than this (z-score) are not trusted: the frame keeps the
        previous shift.
    blank_ratio, blur_ratio, blur_z, min_scatter : float
        Quality tests (see the module notes); ``blank_ratio = 0`` or ``blur_z = 0`` turns a
        test off.
    saturated_fraction : float
        Share of pixels at the frame's maximum above which it is saturated (0 = off).
    history : int
        Frames in the running medians.
    """

    def __init__(self, *, max_side: int = 256, lowpass: float = 0.15, jump_px: float = 4.0,
                 jump_margin: float = 1.5, key_tolerance_px: float = 1.5, rekey: float = 0.5,
                 min_peak: float = 5.0, blank_ratio: float = 0.1, blur_ratio: float = 0.6,
                 blur_z: float = 4.0, min_scatter: float = 0.05,
                 saturated_fraction: float = 0.02, history: int = 9,
                 capture_px: float = 64.0, min_particles: int = 3,
                 smoothing: float = 0.3):
        if max_side < 16:
            raise ValueError(f"max_side must be at least 16 px, got {max_side}")
        if not 0 < lowpass <= 0.5:
            raise ValueError(f"lowpass must be in (0, 0.5] cycles/px, got {lowpass}")
        if jump_px <= 0:
            raise ValueError(f"jump_px must be > 0, got {jump_px}")
        self.max_side = int(max_side)
        self.lowpass = float(lowpass)
        self.jump_px = float(jump_px)
        self.jump_margin = float(jump_margin)
        self.key_tolerance_px = float(key_tolerance_px)
        self.rekey = float(rekey)
        self.min_peak = float(min_peak)
        self.blank_ratio = float(blank_ratio)
        self.blur_ratio = float(blur_ratio)
        self.blur_z = float(blur_z)
        self.min_scatter = float(min_scatter)
        self.saturated_fraction = float(saturated_fraction)
        self.history = max(_MIN_HISTORY, int(history))
        self.capture_px = float(capture_px)
        self.min_particles = max(1, int(min_particles))
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.smoothing = float(smoothing)
        self._geometry: dict | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the movie (a new series begins): the next frame is the origin."""
        self._key: np.ndarray | None = None  # spectrum of the key frame
        self._key_shift = np.zeros(2)
        self._key_peak: float | None = None  # its first peak with a later frame
        self._last: np.ndarray | None = None  # spectrum of the last good frame
        self._last_shift = np.zeros(2)
        self._shift = np.zeros(2)  # the previous frame's shift, as measured
        self._shown = np.zeros(2)  # ... and as reported (filtered)
        self._index: int | None = None  # the detector's index of the last measured frame
        self._steps: collections.deque = collections.deque(maxlen=self.history)
        self._log_power: collections.deque = collections.deque(maxlen=self.history)
        self._peaks: collections.deque = collections.deque(maxlen=self.history)
        self._last_xy: np.ndarray | None = None  # particles of the last good frame
        self._last_xy_shift = np.zeros(2)
        self.frames = 0

    # -- geometry, cached per frame shape ---------------------------------------------------
    def _setup(self, shape: tuple[int, int]) -> dict:
        g = self._geometry
        if g is not None and g["shape"] == shape:
            return g
        h, w = shape
        factor = max(1, math.ceil(max(h, w) / self.max_side))
        hh, ww = max(8, h // factor), max(8, w // factor)
        # the windowed frame is zero-padded to sizes the FFT likes (369 = 9 x 41 is 4x slower
        # than 375); the window takes it to zero at its edges, so the padding adds nothing
        fh, fw = sfft.next_fast_len(hh, real=True), sfft.next_fast_len(ww, real=True)
        fy = np.fft.fftfreq(fh)[:, None]
        fx = np.fft.rfftfreq(fw)[None, :]  # the half spectrum of a real frame
        r = np.hypot(fx, fy)
        band = (r >= _BAND[0]) & (r < _BAND[1])
        theta = np.mod(np.arctan2(fy, fx) + np.pi / (2 * _SECTORS), np.pi)
        sector = np.minimum((theta / (np.pi / _SECTORS)).astype(np.int64), _SECTORS - 1)
        g = {"shape": shape, "factor": factor, "size": (ww, hh), "fft": (fh, fw),
             "window": cv2.createHanningWindow((ww, hh), cv2.CV_32F),
             "lowpass": np.exp(-0.5 * (r / self.lowpass) ** 2).astype(np.float32),
             "band": np.flatnonzero(band.ravel()), "sector": sector.ravel()[band.ravel()],
             "sector_n": np.bincount(sector[band].ravel(), minlength=_SECTORS)}
        self._geometry = g
        return g

    def _spectrum(self, frame: np.ndarray, g: dict) -> tuple[np.ndarray, float, float]:
        """The windowed frame's DFT (working size), its mean and standard deviation."""
        img = frame if frame.dtype == np.float32 else frame.astype(np.float32)
        if g["factor"] > 1:
            h, w = g["shape"]
            f = g["factor"]
            img = cv2.resize(img[: (h // f) * f, : (w // f) * f], g["size"],
                             interpolation=cv2.INTER_AREA)
        mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(img))
        img = (img - mean) * g["window"]
        return sfft.rfft2(img, s=g["fft"], workers=1), mean, std

    def _band_power(self, spectrum: np.ndarray, g: dict) -> np.ndarray:
        """Mean power per orientation sector in the mid band."""
        band = spectrum.ravel()[g["band"]]
        p = np.bincount(g["sector"], weights=band.real ** 2 + band.imag ** 2,
                        minlength=_SECTORS)
        return p / np.maximum(g["sector_n"], 1)

    # -- quality ----------------------------------------------------------------------------
    def _quality(self, frame: np.ndarray, power: np.ndarray, std: float, g: dict) -> str:
        if std == 0.0 or not np.isfinite(std):
            return "blank"
        flags = []
        if self._log_power:
            hist = np.stack(self._log_power)
            med = np.median(hist, axis=0)
            log_ratio = np.log(np.maximum(power, 1e-300)) - med
            if self.blank_ratio > 0 and log_ratio.max() < math.log(self.blank_ratio):
                flags.append("blank")
            elif self.blur_z > 0 and len(hist) >= _MIN_HISTORY:
                scatter = np.maximum(1.4826 * np.median(np.abs(hist - med), axis=0),
                                     self.min_scatter)
                z = log_ratio / scatter
                weak = int(np.argmin(z))
                if (z[weak] < -self.blur_z and log_ratio[weak] < math.log(self.blur_ratio)
                        and log_ratio.max() - log_ratio[weak] > -math.log(self.blur_ratio)
                        and log_ratio.max() < _NOT_GAINED):
                    flags.append("blurred")
        if self.saturated_fraction > 0 and "blank" not in flags:
            f = g["factor"]
            sub = frame[::f, ::f]
            top = sub.max()
            at_top = (top == np.iinfo(sub.dtype).max) if np.issubdtype(sub.dtype,
                                                                        np.integer) else False
            share = float(np.count_nonzero(sub == top)) / sub.size
            if share > self.saturated_fraction and (at_top or share < 0.5):
                flags.append("saturated")
        return ",".join(flags)

    # -- one frame --------------------------------------------------------------------------
    def __call__(self, frame: np.ndarray, xy: np.ndarray | None = None,
                 index: int | None = None) -> Registration:
        """Register one frame and judge its quality.

        Parameters
        ----------
        frame : ndarray, shape (H, W)
            The raw frame, any real dtype.
        xy : ndarray, shape (N, 2), optional
            The frame's particles (x, y px, detector coordinates): the shift is then also
            measured from them (see the module notes) and the better explanation of their
            motion wins.
        index : int, optional
            The detector's frame index: the drift expected since the last measured frame is
            that many frames' worth (frames dropped in between are not jumps).

        Returns
        -------
        Registration
        """
        frame = np.asarray(frame)
        if frame.ndim != 2:
            raise ValueError(f"a frame is 2-D, got shape {frame.shape}")
        if xy is not None:
            xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
            xy = xy[np.isfinite(xy).all(1)]
        g = self._setup(frame.shape)
        spectrum, mean, std = self._spectrum(frame, g)
        power = self._band_power(spectrum, g)
        quality = self._quality(frame, power, std, g)
        self.frames += 1
        prev = self._shift
        shown = self._shown
        out = Registration(shift_x=float(shown[0]), shift_y=float(shown[1]), quality=quality)
        if "blank" in quality:
            return out
        # the median is robust to the odd blurred frame, and a lasting change (a new field
        # after a jump, another magnification) is the new normal after half the history
        if "saturated" not in quality:
            self._log_power.append(np.log(np.maximum(power, 1e-300)))
        if self._last is None:  # the first frame that shows anything: the origin
            if not quality:
                self._key = self._last = spectrum
                self._key_shift = self._last_shift = prev.copy()
                self._remember_particles(xy, prev)
                self._index = None if index is None else int(index)
            return out
        elapsed = 1
        if index is not None and self._index is not None and index > self._index:
            elapsed = min(int(index) - self._index, 100)
        per_frame = np.median(np.stack(self._steps), axis=0) if self._steps else np.zeros(2)
        typical = per_frame * elapsed
        by_image = self._by_image(spectrum, g, prev + typical, out)
        by_particles = self._by_particles(xy, prev + typical)
        shift = by_image
        if by_particles is not None:
            if by_image is None:
                shift = by_particles
            elif np.hypot(*(by_image - by_particles)) > self.key_tolerance_px:
                n_image = self._explained(xy, by_image)
                n_particles = self._explained(xy, by_particles)
                if n_particles > 1.2 * n_image + 2:
                    shift = by_particles
        if shift is None:
            return out
        if shift is not by_image:  # the image was wrong here: a new key frame
            self._key = None
        d = shift - prev
        self._shift = shift
        self._index = None if index is None else int(index)
        out.jump = bool(np.hypot(*(d - typical)) > self._jump_limit() * math.sqrt(elapsed))
        # what is reported: a jump at once, else the measurement through a filter that follows
        # the recent drift and lets only a share of each step's deviation from it through
        # (the stage drifts smoothly; measurements scatter where particles move on their own)
        expected = shown + typical
        new = shift if out.jump else expected + self.smoothing * (shift - expected)
        self._shown = new
        out.shift_x, out.shift_y = float(new[0]), float(new[1])
        out.step_x, out.step_y = float(new[0] - shown[0]), float(new[1] - shown[1])
        out.registered = True
        if not quality:
            peak = out.peak
            weak = (np.isfinite(peak) and len(self._peaks) >= 3
                    and peak < 0.5 * float(np.median(self._peaks)))
            if not weak:
                if np.isfinite(peak):
                    self._peaks.append(peak)
                    if self._key is self._last and self._key_peak is None:
                        self._key_peak = peak  # the key frame's first peak: its reference
                self._last, self._last_shift = spectrum, shift.copy()
                if self._key is None:
                    self._key, self._key_shift, self._key_peak = spectrum, shift.copy(), None
            self._remember_particles(xy, shift)
            self._steps.append(d / elapsed)  # the median shrugs off a jump; a flow is the norm
        return out

    # -- the shift from the image ----------------------------------------------------------
    def _by_image(self, spectrum: np.ndarray, g: dict, expect: np.ndarray,
                  out: Registration) -> np.ndarray | None:
        """The frame's shift by phase correlation (last good frame, then key frame), or None
        where the peak is too weak; sets ``out.peak``."""
        step, peak = self._correlate(self._last, spectrum, g, expect - self._last_shift,
                                     self.jump_px)
        out.peak = peak
        if not np.isfinite(peak) or peak < self.min_peak:
            return None
        shift = self._last_shift + step
        if self._key is not None and self._key is not self._last:
            keyed, key_peak = self._correlate(self._key, spectrum, g, shift - self._key_shift,
                                              self.jump_px, local=True)
            if np.isfinite(key_peak) and key_peak >= max(
                    self.min_peak, self.rekey * (self._key_peak or 0.0)):
                shift = self._key_shift + keyed
            else:
                self._key, self._key_shift, self._key_peak = (self._last, self._last_shift,
                                                              None)
        return shift

    # -- the shift from the particles ------------------------------------------------------
    def _remember_particles(self, xy: np.ndarray | None, shift: np.ndarray) -> None:
        if xy is not None and len(xy) >= self.min_particles:
            if len(xy) > _MAX_VOTERS:  # enough to vote; keeps the pairs few at 1024²
                xy = xy[np.linspace(0, len(xy) - 1, _MAX_VOTERS).astype(np.int64)]
            self._last_xy, self._last_xy_shift = xy, shift.copy()

    def _by_particles(self, xy: np.ndarray | None, expect: np.ndarray) -> np.ndarray | None:
        """The frame's shift from its particles' displacements since the last good frame with
        particles (the mode of all pair vectors), or None."""
        if xy is None or self._last_xy is None or len(xy) < self.min_particles:
            return None
        step = vote_shift(self._last_xy, xy, expect - self._last_xy_shift, self.capture_px)
        return None if step is None else self._last_xy_shift + step

    def _explained(self, xy: np.ndarray, shift: np.ndarray) -> int:
        """How many particles of this frame have one of the last frame's within 3 px once
        ``shift`` is undone."""
        d = shift - self._last_xy_shift
        src = self._last_xy
        _, pd, _ = _k.candidate_pairs(src[:, 0] + d[0], src[:, 1] + d[1],
                                      np.ascontiguousarray(xy[:, 0]),
                                      np.ascontiguousarray(xy[:, 1]), 3.0)
        return int(np.unique(pd).size)

    def _jump_limit(self) -> float:
        """``jump_px``, or 4 robust standard deviations of the recent steps where they
        scatter more."""
        if len(self._steps) < _MIN_HISTORY:
            return self.jump_px
        steps = np.stack(self._steps)
        dev = np.hypot(*(steps - np.median(steps, axis=0)).T)
        return max(self.jump_px, 4.0 * 1.4826 * float(np.median(dev)))

    def _correlate(self, ref: np.ndarray, cur: np.ndarray, g: dict, expect: np.ndarray,
                   radius_px: float, local: bool = False) -> tuple[np.ndarray, float]:
        """The displacement of ``cur`` relative to ``ref`` (px, full resolution) and the
        peak's z-score: the best peak within ``radius_px`` of ``expect``, or (not ``local``)
        the highest anywhere where it is ``jump_margin`` times sharper."""
        cross = ref * np.conj(cur)
        mag = np.abs(cross)
        mag += 1e-12 * (float(mag.max()) + 1e-30)
        np.divide(g["lowpass"], mag, out=mag)
        cross *= mag
        surface = sfft.irfft2(cross, s=g["fft"], workers=1)
        mean, sd = (float(v[0, 0]) for v in cv2.meanStdDev(surface))
        if not sd > 0:
            return np.zeros(2), float("nan")
        hh, ww = surface.shape
        f = g["factor"]
        # a peak at p means cur(x) = ref(x + p): the field moved by -p
        r = max(1, int(math.ceil(radius_px / f)))
        ex, ey = int(round(-expect[0] / f)), int(round(-expect[1] / f))
        xs = np.arange(ex - r, ex + r + 1) % ww
        ys = np.arange(ey - r, ey + r + 1) % hh
        near = surface[np.ix_(ys, xs)]
        k = int(np.argmax(near))
        top, px, py = float(near.flat[k]), int(xs[k % len(xs)]), int(ys[k // len(xs)])
        if not local and (top - mean) / sd < self.min_peak:
            # nothing correlates near the expected shift: everything moved (a jump) if the
            # highest peak is clearly the one
            _, best, _, (bx, by) = cv2.minMaxLoc(surface)
            if (best - mean > self.jump_margin * (top - mean)
                    and (best - mean) / sd >= 2 * self.min_peak):
                top, px, py = best, bx, by
        dx = _parabola(surface[py, (px - 1) % ww], top, surface[py, (px + 1) % ww])
        dy = _parabola(surface[(py - 1) % hh, px], top, surface[(py + 1) % hh, px])
        sx, sy = px + dx, py + dy
        sx = sx - ww if sx > ww / 2 else sx
        sy = sy - hh if sy > hh / 2 else sy
        return np.array([-sx * f, -sy * f]), (top - mean) / sd


def _parabola(left: float, mid: float, right: float) -> float:
    """Sub-pixel offset of a peak from three samples (-0.5..0.5): a parabola through their
    logarithms where all three are positive (exact for a Gaussian peak), else through the
    samples."""
    if left > 0 and right > 0 and mid > 0:
        left, mid, right = math.log(left), math.log(mid), math.log(right)
    den = left - 2.0 * mid + right
    if den >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def vote_shift(src: np.ndarray, dst: np.ndarray, expect=(0.0, 0.0), radius: float = 64.0, *,
               sigma: float = 1.5, min_votes: int = 3) -> np.ndarray | None:
    """The common displacement of two point sets: the mode of all pair vectors.

    Every pair (a point of ``src``, a point of ``dst``) whose vector lies within ``radius`` of
    ``expect`` votes for its vector; the votes, binned at 1 px and smoothed by a Gaussian of
    ``sigma`` px, peak where most points moved together, and the mean of the votes within
    2.5 ``sigma`` of the peak is the answer. Particles that move on their own spread their
    votes; pairs of unrelated particles spread theirs over the whole disc.

    Parameters
    ----------
    src, dst : ndarray, shape (N, 2) and (M, 2)
        Positions (x, y px) before and after.
    expect : (2,) float
        Where to centre the search (px).
    radius : float
        Largest displacement from ``expect`` considered (px).
    sigma : float
        Smoothing of the votes (px): about the scatter of the single displacements.
    min_votes : int
        Fewer votes at the peak than this, or not clearly above the votes of unrelated pairs
        there (by 5 of their Poisson standard deviations), give None.

    Returns
    -------
    (2,) float ndarray or None
        The displacement ``dst - src`` (px).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.uniform(0, 300, (200, 2))
    >>> b = a + [40.0, -9.0] + rng.normal(0, 1.0, a.shape)
    >>> np.round(vote_shift(a, b), 0).tolist()
    [40.0, -9.0]
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(src) == 0 or len(dst) == 0:
        return None
    ex, ey = float(expect[0]), float(expect[1])
    ps, pd, _ = _k.candidate_pairs(src[:, 0] + ex, src[:, 1] + ey,
                                   np.ascontiguousarray(dst[:, 0]),
                                   np.ascontiguousarray(dst[:, 1]), float(radius))
    if len(ps) < min_votes:
        return None
    vx = dst[pd, 0] - src[ps, 0] - ex
    vy = dst[pd, 1] - src[ps, 1] - ey
    r = int(math.ceil(radius))
    n = 2 * r + 1
    ix = np.clip(np.rint(vx).astype(np.int64) + r, 0, n - 1)
    iy = np.clip(np.rint(vy).astype(np.int64) + r, 0, n - 1)
    votes = np.bincount(iy * n + ix, minlength=n * n).reshape(n, n).astype(np.float32)
    smooth = cv2.GaussianBlur(votes, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    _, _, _, (px, py) = cv2.minMaxLoc(smooth)
    near = (vx - (px - r)) ** 2 + (vy - (py - r)) ** 2 <= (2.5 * sigma) ** 2
    count = int(near.sum())
    chance = len(ps) * (2.5 * sigma) ** 2 / float(radius) ** 2  # unrelated pairs in the disc
    if count < min_votes or count < chance + 5 * math.sqrt(chance):
        return None
    return np.array([ex + float(np.mean(vx[near])), ey + float(np.mean(vy[near]))])
