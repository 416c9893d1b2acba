"""Moiré movies rendered independently of ``temstream.sim``, for scoring two-layer models.

The network behind ``--model bilayer`` was trained only on ``temstream.sim``; scores on the
simulator's own movies alone could reward its quirks. This renderer shares no code and no
image model with it:

- particles: soft spheres, projected thickness ``2 R (1 - (r/R)^2)^p`` with ``p`` in 0.6-1.0
  (flatter than a hard sphere's ``p = 0.5``), pure amplitude contrast ``exp(-mu t)``, no phase
  contrast, no Fresnel fringes (``temstream.sim``: an exit wave through a CTF);
- optics: a two-Gaussian point-spread function (a core and a 20 % wide tail; the simulator: CTF
  envelopes, beam broadening, inelastic blur);
- background: a quadratic illumination gradient, a smooth random thickness field and a frame
  to frame intensity flicker (the simulator: liquid thickness fields, window texture);
- detector: Poisson counts, then a ``sinc * Gaussian`` MTF on signal and noise, Gaussian read
  noise and an offset (the simulator: its own MTF form and detector types);
- dynamics: two hexagonal layers twisted by 5-12 deg, layer B particles 0.7x (or 1x) the size
  of layer A's, independent Ornstein-Uhlenbeck vibration about the sites, vacancies, a linear
  stage drift.

Truth: per-layer instance labels (pixel centres within each particle's radius), a particle
table with the sites, and the vacant sites, per frame.

Run it to look at one movie: ``python scripts/independent_moire.py --out indep.npz``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage


@dataclass
class IndependentMovie:
    """A rendered movie and its truth (the fields ``benchmarks/eval_bilayer.py`` scores)."""

    frames: np.ndarray          # (N, H, W) uint16
    layer_labels: np.ndarray    # (N, 2, H, W) int32, label = particle + 1
    truth: pd.DataFrame         # frame, particle, layer (1, 2), x, y, site_x, site_y, radius
    vacancies: pd.DataFrame     # frame, layer, x, y
    params: dict


def _hex(extent, a, theta, origin, margin):
    h, w = extent
    v = a * np.array([[np.cos(theta), np.sin(theta)],
                      [np.cos(theta + np.pi / 3), np.sin(theta + np.pi / 3)]])
    n = int(np.hypot(h, w) / a) + 4
    i, j = np.mgrid[-n:n + 1, -n:n + 1]
    pts = np.c_[i.ravel(), j.ravel()] @ v + origin
    ok = ((pts > -margin) & (pts < np.array([w, h]) + margin)).all(1)
    return pts[ok]


def _mtf(shape, f_cut):
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.hypot(fx, fy)
    return np.sinc(fx) * np.sinc(fy) * np.exp(-(f / f_cut) ** 2)


def render_movie(seed: int, *, size: int = 256, frames: int = 20, counts: float = 80.0,
                 equal: bool = False, diameter: float = 16.0, gap: float = 8.0,
                 twist_deg: float | None = None, vibration: float = 1.0,
                 vacancy_fraction: float = 0.03) -> IndependentMovie:
    """Render one two-layer movie.

    Parameters
    ----------
    seed : int
    size : int
        Frame edge (px).
    frames : int
    counts : float
        Mean detected electrons per background pixel and frame (the dose).
    equal : bool
        Layer B's particles as large as layer A's (else 0.7x).
    diameter, gap : float
        Layer A particle diameter and the gap between neighbours (px); a = diameter + gap.
    twist_deg : float, optional
        Twist of layer B against A (default: uniform in 5-12 deg).
    vibration : float
        RMS per axis of the thermal displacement about the sites (px).
    vacancy_fraction : float
    """
    rng = np.random.default_rng(seed)
    h = w = int(size)
    a = diameter + gap
    twist = np.deg2rad(rng.uniform(5, 12) if twist_deg is None else twist_deg)
    theta = rng.uniform(0, np.pi / 3)
    ratio = 1.0 if equal else 0.7
    drift = rng.normal(0, 0.08, 2)                        # px / frame
    margin = a + abs(drift).max() * frames + 4
    layers = []
    for k, (th, d) in enumerate([(theta, diameter), (theta + twist, diameter * ratio)]):
        sites = _hex((h, w), a, th, rng.uniform(0, a, 2) + [w / 2, h / 2], margin)
        empty = rng.random(len(sites)) < vacancy_fraction
        radius = 0.5 * d * np.exp(rng.normal(0, 0.04, len(sites)))
        layers.append((sites[~empty], sites[empty], radius[~empty], k))
    mu = [rng.uniform(0.025, 0.04), rng.uniform(0.025, 0.04)]     # attenuation per px thickness
    power = rng.uniform(0.6, 1.0)
    psf_core = rng.uniform(0.7, 1.2)
    mtf = _mtf((h, w), rng.uniform(0.25, 0.4))
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    c = rng.normal(0, 0.08, 5)
    u, v = xx / w - 0.5, yy / h - 0.5
    gradient = 1 + c[0] * u + c[1] * v + c[2] * u * u + c[3] * v * v + c[4] * u * v
    field = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 25)
    field = 1 + 0.05 * field / (field.std() + 1e-9)
    disp = [np.zeros((len(s), 2)) for s, *_ in layers]
    alpha = np.exp(-1 / 4.0)                                      # 4-frame correlation time
    frames_out = np.zeros((frames, h, w), np.uint16)
    planes = np.zeros((frames, 2, h, w), np.int32)
    rows, vac_rows = [], []
    pid0 = [0, len(layers[0][0])]
    for t in range(frames):
        offset = drift * t
        thick = np.zeros((h, w))
        tau = np.zeros((h, w))
        for k, (sites, vacant, radius, _) in enumerate(layers):
            disp[k] = alpha * disp[k] + vibration * np.sqrt(1 - alpha ** 2) * \
                rng.normal(0, 1, disp[k].shape) if t else vibration * rng.normal(0, 1, disp[k].shape)
            pos = sites + disp[k] + offset
            site_now = sites + offset
            layer_t = np.zeros((h, w))
            for i, ((x, y), r) in enumerate(zip(pos, radius)):
                x0, x1 = int(max(0, np.floor(x - r - 3))), int(min(w, np.ceil(x + r + 4)))
                y0, y1 = int(max(0, np.floor(y - r - 3))), int(min(h, np.ceil(y + r + 4)))
                if x0 >= x1 or y0 >= y1:
                    continue
                d = np.hypot(xx[y0:y1, x0:x1] - x, yy[y0:y1, x0:x1] - y)
                # soft sphere: 2 R (1 - (r/R)^2)^p
                layer_t[y0:y1, x0:x1] += 2 * r * np.clip(1 - (d / r) ** 2, 0, None) ** power
                inside = d < r
                pid = pid0[k] + i
                sub = planes[t, k, y0:y1, x0:x1]
                sub[inside & (sub == 0)] = pid + 1
                if inside.any():
                    rows.append((t, pid, k + 1, x, y, site_now[i, 0], site_now[i, 1], r))
            thick += layer_t
            tau += mu[k] * layer_t
            for x, y in vacant + offset:
                if 0 <= x < w and 0 <= y < h:
                    vac_rows.append((t, k + 1, x, y))
        trans = np.exp(-tau)
        img = ndimage.gaussian_filter(trans, psf_core)
        img = 0.8 * img + 0.2 * ndimage.gaussian_filter(trans, 4 * psf_core)
        flicker = 1 + 0.03 * np.sin(2 * np.pi * t / 17.0)
        expected = counts * img * gradient * field * flicker
        e = rng.poisson(expected).astype(np.float64)
        e = np.fft.irfft2(np.fft.rfft2(e) * mtf, s=(h, w))
        signal = 50.0 + 1.7 * e + rng.normal(0, 2.0, (h, w))
        frames_out[t] = np.clip(np.rint(signal), 0, 65535).astype(np.uint16)
    truth = pd.DataFrame(rows, columns=["frame", "particle", "layer", "x", "y", "site_x",
                                        "site_y", "radius"])
    vacancies = pd.DataFrame(vac_rows, columns=["frame", "layer", "x", "y"])
    params = {"renderer": "independent", "seed": seed, "size": size, "frames": frames,
              "counts": counts, "equal": equal, "diameter": diameter, "gap": gap,
              "a": a, "twist_deg": float(np.degrees(twist)), "theta_deg": float(np.degrees(theta)),
              "vibration": vibration, "vacancy_fraction": vacancy_fraction,
              "size_ratio": ratio, "drift_px_per_frame": drift.tolist()}
    return IndependentMovie(frames_out, planes, truth, vacancies, params)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--counts", type=float, default=80.0)
    p.add_argument("--equal", action="store_true")
    p.add_argument("--out", required=True, help=".npz with frames, layer_labels")
    args = p.parse_args(argv)
    m = render_movie(args.seed, size=args.size, frames=args.frames, counts=args.counts,
                     equal=args.equal)
    np.savez_compressed(args.out, frames=m.frames, layer_labels=m.layer_labels)
    m.truth.to_csv(args.out.replace(".npz", "_truth.csv"), index=False)
    print(f"wrote {args.out}: {m.frames.shape}, twist {m.params['twist_deg']:.2f} deg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
