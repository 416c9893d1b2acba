"""Track continuity of a recording: how many particles are followed from the first frame to
the last, how long the tracks are, how many there are per true track (with a truth table).

Works on any recording (``temstream process`` of a movie, a live run); with ``--truth`` (a CSV
of ``frame, particle, x, y`` in detector pixels, e.g. from ``scripts/render_insitu_movie.py``)
it also scores against the true tracks. Definitions:
:func:`temstream.tracking.scoring.track_continuity`.

    python scripts/render_insitu_movie.py --out insitu-render
    temstream process insitu-render/movie.npy --out insitu.h5 --model default
    python benchmarks/score_continuity.py insitu.h5 --truth insitu-render/truth.csv
"""

import argparse
import json

import h5py
import pandas as pd

from temstream.record import read_frames_info, read_particles
from temstream.tracking.scoring import score_tracks, track_continuity


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recording")
    ap.add_argument("--truth", help="CSV with frame, particle, x, y (detector px)")
    ap.add_argument("--gate", type=float, default=3.0, help="matching distance, px")
    args = ap.parse_args()
    pred = read_particles(args.recording)
    info = read_frames_info(args.recording)
    n = int(info["frame"].max()) + 1
    free = track_continuity(pred, n_frames=n)
    print(f"{args.recording}: {n} frames, {len(pred) / max(1, pred['frame'].nunique()):.0f} "
          f"particles per frame")
    print(f"particles of the first frame whose track reaches the last frames: "
          f"{free['end_to_end']:.3f}")
    print(f"median track length: {free['median_length']:.0f} frames = "
          f"{free['median_length_ratio']:.3f} of the movie; tracks {free['tracks']}, "
          f"spanning the movie {free['spanning']:.3f}")
    bad = info.loc[info["quality"].fillna("") != "", ["frame", "quality"]]
    print("bad frames:", ", ".join(f"{f} {q}" for f, q in bad.itertuples(index=False)) or "none",
          "| stage jumps at", info.loc[info["jump"] == 1, "frame"].tolist())
    if args.truth:
        truth = pd.read_csv(args.truth)
        c = track_continuity(pred, truth, n_frames=n, gate=args.gate)
        s = score_tracks(truth, pred[pred["particle"] >= 0], gate=args.gate)
        print(f"against the truth: tracked end to end {c['end_to_end']:.3f}, tracks per true "
              f"track {c['tracks_per_true']:.2f}, correct links "
              f"{s['correct_link_fraction']:.3f}, detection recall {s['detection_recall']:.3f}")
    with h5py.File(args.recording, "r") as f:
        summary = json.loads(f.attrs.get("summary", "{}"))
    if summary.get("tracking"):
        print("search range:", summary["tracking"])


if __name__ == "__main__":
    main()
