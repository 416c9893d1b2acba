"""An in-situ movie made without temstream's simulator: ~700 small particles in a monolayer that
vibrate about their sites or diffuse (never through each other), on a textured support that
drifts and jumps with the stage, with one motion-blurred and one blank frame. It stands in for the real in-situ movie of issue 24
(Au nanoparticles, 194 frames of 369², ~700 particles of ~6 px, stage jumps of ~40, 9 and
8 px, a motion-blurred and a blank frame), which is not public.

Nothing here comes from ``temstream.sim``: the image model is deliberately plain and
different (soft-edged dark disks, erf profile, on a multiplicative support texture; shot noise
at a given dose plus read noise; motion blur as the mean of sub-exposures along the stage's
path), so tracking scores on it are not scores on the simulator the models were trained on.

Writes ``OUT/movie.npy`` (N, H, W) uint16, ``OUT/truth.csv`` (frame, particle, x, y in detector
pixels of every particle whose centre is in the frame; none in the blank frame) and
``OUT/events.json`` (jumps, the blurred and the blank frame, the stage offset of every frame).
Keep OUT outside the repository: it is test data, not code.

    python scripts/render_insitu_movie.py --out insitu-render
    temstream process insitu-render/movie.npy --out insitu.h5 --model default
    python benchmarks/score_continuity.py insitu.h5 --truth insitu-render/truth.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from scipy.special import erfc


def render(frames=194, size=369, n_particles=700, seed=24, diameter=6.5, contrast=0.45,
           dose=60.0, vibrating=0.7, vibration_px=0.6, diffusion_px=0.8,
           drift=(0.12, -0.08), jumps=((48, -38.0, 12.0), (97, 9.0, 0.5), (140, 0.5, -8.0)),
           blurred=48, blank=120, substeps=12):
    """The movie, its truth table and its events (see the module notes)."""
    rng = np.random.default_rng(seed)
    margin = 80  # the world is larger than the frame: jumps bring new particles in
    world = size + 2 * margin
    # particle sites with a minimum distance (a monolayer on the window), some diffusing
    n_world = int(n_particles * (world / size) ** 2)
    sites = _spread(rng, n_world, world, min_dist=1.4 * diameter) - margin
    radius = 0.5 * rng.normal(diameter, 0.12 * diameter, len(sites)).clip(0.6 * diameter)
    stuck = rng.random(len(sites)) < vibrating
    pos = sites.copy()
    wobble = np.zeros_like(sites)
    # support texture, fixed to the world: slow mottle and fine speckle
    tex = (cv2.GaussianBlur(rng.normal(0, 1, (world, world)).astype(np.float32), (0, 0), 9)
           * 0.9 + cv2.GaussianBlur(rng.normal(0, 1, (world, world)).astype(np.float32),
                                    (0, 0), 1.2) * 0.12)
    tex = 1.0 + 0.04 * tex / tex.std()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    gradient = 1.0 + 0.06 * (xx / size - 0.5) - 0.04 * (yy / size - 0.5)
    offsets, movie, rows = [], [], []
    stage = np.zeros(2)
    for t in range(frames):
        before = stage.copy()
        stage = stage + drift + rng.normal(0, 0.05, 2)
        for f, dx, dy in jumps:
            if t == f:
                stage = stage + (dx, dy)
        if t:
            wobble = wobble * np.exp(-1 / 3.0) + rng.normal(
                0, vibration_px * np.sqrt(1 - np.exp(-2 / 3.0)), wobble.shape)
            pos = _diffuse(rng, pos, np.where(stuck[:, None], sites + wobble, pos), ~stuck,
                           diffusion_px, 2 * radius)
        where = np.where(stuck[:, None], sites + wobble, pos)
        offsets.append(stage.copy())
        beam = 1.0 + 0.03 * np.sin(2 * np.pi * t / 70.0)
        if t == blurred:  # the jump happens during the exposure: the mean of sub-exposures
            paths = [before + (stage - before) * k / (substeps - 1) for k in range(substeps)]
            clean = np.mean([_scene(where, radius, contrast, tex, margin, s, xx, yy)
                             for s in paths], axis=0)
        else:
            clean = _scene(where, radius, contrast, tex, margin, stage, xx, yy)
        expected = dose * beam * gradient * clean
        if t == blank:
            expected = np.zeros_like(expected)
        counts = rng.poisson(expected) + 100.0 + rng.normal(0, 2.0, expected.shape)
        movie.append(np.clip(np.rint(counts), 0, 65535).astype(np.uint16))
        if t != blank:
            d = where + stage
            inside = (d[:, 0] >= 0) & (d[:, 0] < size) & (d[:, 1] >= 0) & (d[:, 1] < size)
            for k in np.flatnonzero(inside):
                rows.append((t, int(k), float(d[k, 0]), float(d[k, 1])))
    events = {"jumps": [list(j) for j in jumps], "blurred": blurred, "blank": blank,
              "offsets": np.asarray(offsets).round(4).tolist(),
              "seed": seed, "size": size, "frames": frames, "diameter_px": diameter,
              "vibrating_share": vibrating, "diffusion_px_per_frame": diffusion_px}
    return np.stack(movie), rows, events


def _scene(where, radius, contrast, tex, margin, stage, xx, yy):
    """Transmission of one frame: the support (shifted by the stage) times the particles."""
    size = xx.shape[0]
    m = np.float32([[1, 0, margin - stage[0]], [0, 1, margin - stage[1]]])
    support = cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
    cover = np.zeros((size, size), np.float32)
    d = where + stage
    keep = (d[:, 0] > -8) & (d[:, 0] < size + 8) & (d[:, 1] > -8) & (d[:, 1] < size + 8)
    d, r = d[keep], radius[keep]
    half = 7
    gx = np.floor(d[:, 0]).astype(int)[:, None, None] + np.arange(-half, half + 1)[None, None]
    gy = np.floor(d[:, 1]).astype(int)[:, None, None] + np.arange(-half, half + 1)[None, :, None]
    dist = np.hypot(gx - d[:, 0, None, None], gy - d[:, 1, None, None])
    # soft edge: an erf step of 0.7 px (optics and sampling)
    val = 0.5 * erfc((dist - r[:, None, None]) / (np.sqrt(2) * 0.7))
    gx, gy = np.broadcast_arrays(gx, gy)
    ok = (gx >= 0) & (gx < size) & (gy >= 0) & (gy < size)
    np.add.at(cover, (gy[ok], gx[ok]), val[ok].astype(np.float32))
    return support * (1.0 - contrast * np.minimum(cover, 1.0))


def _diffuse(rng, pos, now, free, sigma, size):
    """One Brownian step of the ``free`` particles in a monolayer: a move that would overlap
    another particle (centres closer than their mean diameter) is not made."""
    from scipy.spatial import cKDTree

    new = pos.copy()
    idx = np.flatnonzero(free)
    prop = pos[idx] + rng.normal(0, sigma, (len(idx), 2))
    tree = cKDTree(now)
    for j, k in enumerate(idx):
        near = tree.query_ball_point(prop[j], r=float(size.max()))
        if all(q == k or np.hypot(*(now[q] - prop[j])) >= 0.5 * (size[q] + size[k])
               for q in near):
            new[k] = prop[j]
    return new


def _spread(rng, n, side, min_dist):
    """Up to ``n`` random points in a square at least ``min_dist`` apart (dart throwing)."""
    cell = min_dist / np.sqrt(2)
    grid: dict = {}
    pts = []
    for _ in range(40 * n):
        p = rng.uniform(0, side, 2)
        cx, cy = int(p[0] / cell), int(p[1] / cell)
        near = [grid.get((cx + i, cy + j)) for i in range(-2, 3) for j in range(-2, 3)]
        if all(q is None or np.hypot(*(q - p)) >= min_dist for q in near):
            grid[(cx, cy)] = p
            pts.append(p)
            if len(pts) == n:
                break
    return np.asarray(pts)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for movie.npy, truth.csv, events.json")
    ap.add_argument("--frames", type=int, default=194)
    ap.add_argument("--size", type=int, default=369)
    ap.add_argument("--particles", type=int, default=700)
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    movie, rows, events = render(args.frames, args.size, args.particles, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "movie.npy", movie)
    with open(out / "truth.csv", "w") as f:
        f.write("frame,particle,x,y\n")
        f.writelines(f"{t},{k},{x:.3f},{y:.3f}\n" for t, k, x, y in rows)
    (out / "events.json").write_text(json.dumps(events))
    per_frame = len(rows) / (args.frames - 1)
    print(f"wrote {out}/movie.npy {movie.shape} {movie.dtype}, {len(rows)} truth rows "
          f"({per_frame:.0f} particles per frame), events.json")


if __name__ == "__main__":
    main()
