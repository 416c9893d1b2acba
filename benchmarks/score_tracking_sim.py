"""Tracking scores on simulated movies (temstream.sim) against their ground truth.

For each scenario: (a) link the true detections (perfect detection: isolates the
linker), with our Linker, our Linker + velocity predictor and trackpy.link;
(b) extract instances from the true label masks (touching particles merge, as
after a segmenter; particles cut by the frame edge have their visible centroid,
the truth keeps the full particle's centre) and link them. search_range = 1.2 x the 99th percentile of
the true per-frame displacement (an oracle setting, the same for every method).
Scores: temstream.tracking.scoring.score_tracks (gate 5 px).

    python benchmarks/score_tracking_sim.py [--frames 40] [--size 384]
"""

import argparse

import numpy as np
import pandas as pd
import trackpy

from temstream.config.schema import InstancesConfig
from temstream.sim import simulate
from temstream.tracking.instances import extract_instances
from temstream.tracking.linking import link
from temstream.tracking.scoring import score_tracks

trackpy.quiet()
SCENARIOS = ("dispersed", "assembly", "etching", "hex-lattice", "cube-lattice", "flow",
             "sparse-large")


def search_range(truth):
    tr = truth.sort_values(["particle", "frame"])
    g = tr.groupby("particle")
    d = np.hypot(g["x"].diff(), g["y"].diff()).to_numpy()
    d = d[np.isfinite(d)]
    return max(2.0, 1.2 * np.percentile(d, 99)) if d.size else 5.0


def detections_from_labels(labels):
    rows = []
    settings = InstancesConfig(outline="threshold", min_area=4, n_fold=4)
    for i, lab in enumerate(labels):
        _, t = extract_instances(lab > 0, settings)
        rows.append(pd.DataFrame({"frame": i, "x": t["x"], "y": t["y"]}))
    return pd.concat(rows, ignore_index=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    keys = ("correct_link_fraction", "track_purity", "alpha", "beta", "jsc")
    print(f"{args.frames} frames, {args.size}^2 px, seed {args.seed}\n")
    print("| scenario | particles/frame | sr px | detections | method | correct links "
          "| purity | alpha | beta | JSC |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in SCENARIOS:
        movie = simulate(name, frames=args.frames, size=args.size, seed=args.seed)
        truth = movie.truth[["frame", "particle", "x", "y"]].reset_index(drop=True)
        sr = search_range(truth)
        det_true = truth[["frame", "x", "y"]]
        det_seg = detections_from_labels(movie.labels)
        runs = [("truth", "Linker", lambda d: link(d, sr)),
                ("truth", "Linker velocity", lambda d: link(d, sr, predictor="velocity")),
                ("truth", "trackpy.link", None),
                ("labels > 0", "Linker", lambda d: link(d, sr))]
        for det_name, method, fn in runs:
            det = {"truth": det_true, "labels > 0": det_seg}[det_name]
            if fn is None:
                try:
                    pred = trackpy.link(det.copy(), sr, adaptive_stop=0.2 * sr,
                                        adaptive_step=0.9)
                except Exception as exc:      # SubnetOversizeException and friends
                    print(f"| {name} | | {sr:.1f} | {det_name} | {method} | failed: "
                          f"{type(exc).__name__} | | | | |")
                    continue
            else:
                pred = fn(det)
            s = score_tracks(truth, pred, gate=5.0)
            vals = " | ".join(f"{s[k]:.3f}" for k in keys)
            print(f"| {name} | {truth.groupby('frame').size().mean():.0f} | {sr:.1f} "
                  f"| {det_name} | {method} | {vals} |")


if __name__ == "__main__":
    main()
