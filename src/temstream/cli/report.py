"""``temstream report``: an HTML (or PDF) report of a recording."""

from __future__ import annotations

from pathlib import Path

from temstream.cli._common import new_parser


def add_parser(sub) -> None:
    p = new_parser(sub, "report", "an HTML or PDF report of a recording: settings, frame "
                                  "accounting, counts, sizes, MSD, tracks",
                   "temstream report demo.h5 --out demo.html")
    p.add_argument("recording", help="a temstream recording (.h5)")
    p.add_argument("--out", metavar="FILE.html|FILE.pdf",
                   help="where to write it (default: REC.report.html); .pdf writes a PDF")
    p.add_argument("--max-lag", type=int, default=100, metavar="FRAMES",
                   help="longest lag of the MSD curves (default 100)")
    p.add_argument("--fit", type=int, nargs=2, default=(1, 10), metavar=("FROM", "TO"),
                   help="lags (frames) of the diffusion fits (default 1 10)")
    p.add_argument("--frame", type=int, metavar="N",
                   help="the recorded frame (0-based position) drawn with its tracks "
                        "(default: the middle one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from temstream.report import make_report

    if args.overrides:
        from temstream.cli import UsageError

        raise UsageError(f"report takes no settings ({' '.join(args.overrides)})")
    out = args.out or str(Path(args.recording).with_suffix(".report.html"))
    report = make_report(args.recording, out, max_lag=args.max_lag, fit_range=tuple(args.fit),
                         frame=args.frame)
    print(f"report of {args.recording} -> {out} ({len(report.panels)} figures, "
          f"{report.seconds:.1f} s)")
    return 0
