"""``temstream gui``: a dashboard on a running pipeline's results feed (a separate process)."""

from __future__ import annotations

from temstream.cli._common import config_from_args, new_parser


def add_parser(sub) -> None:
    p = new_parser(sub, "gui", "show the dashboard of a running pipeline (its results feed)",
                   "temstream gui --connect tcp://127.0.0.1:5556 --snapshot live.png --frames 300",
                   description="Subscribe to the results feed of a running pipeline (started "
                               "with results.publish=tcp://...) and show the dashboard. For the "
                               "dashboard in the same process use `temstream demo --gui` or "
                               "`temstream run --gui`.")
    p.add_argument("--connect", metavar="ENDPOINT", required=True,
                   help="the results feed endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--snapshot", metavar="FILE.png",
                   help="save the window to FILE.png when the subscription ends, then exit")
    p.add_argument("--frames", type=int, default=0,
                   help="stop after N frames (default: until the window is closed)")
    p.add_argument("--idle-timeout", type=float, default=0.0, metavar="S",
                   help="stop when the feed is silent for S seconds (default: never)")
    p.set_defaults(func=run)


def run(args) -> int:
    from temstream.gui import run_feed_dashboard

    config = config_from_args(args)
    result = run_feed_dashboard(args.connect, config=config, snapshot=args.snapshot,
                                frames=args.frames, idle_timeout_s=args.idle_timeout)
    bad = ", ".join(f"{k} {v}" for k, v in result["malformed"].items()) or "none"
    print(f"frames shown from {args.connect}: {result['frames']} (malformed messages: {bad})")
    if result.get("missing"):
        from temstream.gui.dashboard import feed_missing_message

        print(feed_missing_message(result["missing"]).replace("\n", " "))
    if args.snapshot:
        print(f"snapshot saved to {args.snapshot}")
    return 0
