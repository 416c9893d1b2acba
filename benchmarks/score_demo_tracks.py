"""Track continuity of a ``temstream demo`` recording against the simulator's true tracks.

The demo streams ``temstream.sim`` movie ``demo.scenario`` (seed ``demo.seed``, ``demo.size``)
into the live pipeline; this regenerates the same movie's truth (the recording's
configuration says which) and scores the recorded tracks with
:func:`temstream.tracking.scoring.track_continuity` and
:func:`temstream.tracking.scoring.score_tracks`. Tracks that follow nothing in the truth
(distractors: out-of-focus and fast particles, contamination) are counted apart.

    temstream demo --frames 300 --out demo.h5
    python benchmarks/score_demo_tracks.py demo.h5
"""

import argparse
import json
import tomllib

import h5py
import numpy as np

from temstream.record import read_frames_info, read_particles
from temstream.sim import simulate
from temstream.tracking.scoring import score_tracks, track_continuity


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording")
    ap.add_argument("--gate", type=float, default=5.0, help="matching distance, px")
    args = ap.parse_args()
    with h5py.File(args.recording, "r") as f:
        config = tomllib.loads(f.attrs["config"])
        summary = json.loads(f.attrs.get("summary", "{}"))
    demo = config["demo"]
    pred = read_particles(args.recording)
    info = read_frames_info(args.recording)
    n = int(info["frame"].max()) + 1
    movie = simulate(demo["scenario"], frames=n, size=demo["size"], seed=demo["seed"])
    truth = movie.truth[["frame", "particle", "x", "y"]]
    c = track_continuity(pred, truth, n_frames=n, gate=args.gate)
    s = score_tracks(truth, pred[pred["particle"] >= 0], gate=args.gate)
    processed = int((info["status"] == "processed").sum())
    print(f"{args.recording}: {demo['scenario']} {demo['size']}² seed {demo['seed']}, {n} frames "
          f"({processed} processed, {n - processed} dropped)")
    print(f"tracks {c['tracks']} for {c['true_tracks']} true tracks: "
          f"{c['tracks_per_true']:.2f} per true track; {c['matched_tracks']} on the truth, "
          f"{c['tracks'] - c['matched_tracks']} on things it leaves out or on nothing")
    print(f"end to end {c['end_to_end']:.3f}, median track {c['median_length']:.0f} frames "
          f"({c['median_length_ratio']:.3f} of the movie), spanning {c['spanning']:.3f}")
    print(f"correct links {s['correct_link_fraction']:.3f}, link precision "
          f"{s['link_precision']:.3f}, detection recall {s['detection_recall']:.3f}")
    if summary.get("tracking"):
        print("tracking summary:", summary["tracking"])


if __name__ == "__main__":
    main()
