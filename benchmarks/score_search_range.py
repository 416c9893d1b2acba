"""Correct links with a fixed search range and with the automatic one, on crowded movies of
fast particles (``temstream.sim``, true positions + 0.3 px localisation noise, so that only the
linker is scored) and on the scenarios.

Each movie is linked through the pipeline's own link stage
(:class:`temstream.pipeline.stages.Link`, memory 10) with ``tracking.search_range`` 10 px (the
old default), 15 px and 0 (automatic, the default). Scores:
:func:`temstream.tracking.scoring.score_tracks` (correct links = truth links reproduced).

    python benchmarks/score_search_range.py [--frames 40] [--size 384]
"""

import argparse

import numpy as np
import pandas as pd

from temstream.config.schema import TrackingConfig
from temstream.pipeline.stages import Link
from temstream.sim import simulate
from temstream.tracking.scoring import score_tracks

#: crowded, fast: small spheres at 400/um^2 diffusing 100 nm^2/s (~5 px steps at 0.8 nm/px)
CROWDED_FAST = {"shapes": {"sphere": 1.0}, "diameter_nm": 10.0, "density_per_um2": 400.0,
                "diffusion_nm2_per_s": 100.0, "polydispersity": 0.1, "n_fast": 0,
                "n_bubbles": 0, "n_contamination": 0, "n_defocused": 0}


def link_all(det: pd.DataFrame, search_range: float):
    link = Link(TrackingConfig(search_range=search_range, memory=10))
    out = []
    for f, g in det.groupby("frame"):
        ids = link({"x": g["x"].to_numpy(), "y": g["y"].to_numpy()}, int(f))
        out.append(g.assign(particle=ids))
    return pd.concat(out, ignore_index=True), link


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    movies = [("crowded-fast", CROWDED_FAST, 100.0), ("crowded-fast x2", CROWDED_FAST, 200.0)]
    movies += [(name, name, None) for name in ("dispersed", "assembly", "hex-lattice", "flow")]
    print(f"{args.frames} frames of {args.size}², true positions + 0.3 px noise\n")
    print("| movie | particles/frame | steps p50 / p99 px | 10 px | 15 px | automatic | "
          "automatic range px |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for label, scenario, diffusion in movies:
        kw = {} if diffusion is None else {"diffusion_nm2_per_s": diffusion}
        movie = simulate(scenario, frames=args.frames, size=args.size, seed=args.seed, **kw)
        truth = movie.truth[["frame", "particle", "x", "y"]].reset_index(drop=True)
        g = truth.sort_values(["particle", "frame"]).groupby("particle")
        steps = np.hypot(g["x"].diff(), g["y"].diff()).dropna()
        det = truth[["frame", "x", "y"]].copy()
        det[["x", "y"]] += rng.normal(0, 0.3, (len(det), 2))
        cells = []
        for sr in (10.0, 15.0, 0.0):
            pred, link = link_all(det, sr)
            cells.append(f"{score_tracks(truth, pred)['correct_link_fraction']:.4f}")
        print(f"| {label} | {truth.groupby('frame').size().mean():.0f} | "
              f"{steps.median():.1f} / {np.percentile(steps, 99):.1f} | " + " | ".join(cells)
              + f" | {link.auto.low:.1f}-{link.auto.high:.1f} |")


if __name__ == "__main__":
    main()
