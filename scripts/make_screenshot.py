"""Write docs/dashboard.png: ``temstream demo`` with the dashboard, offscreen, snapshot at the end.

Usage::

    python scripts/make_screenshot.py [--out docs/dashboard.png] [--frames 200] [--size 512]
    python scripts/make_screenshot.py --scenario moire --model bilayer --out docs/dashboard_bilayer.png

Runs the simulated detector and the live pipeline in this process (no display needed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    p.add_argument("--out", default=str(root / "docs" / "dashboard.png"))
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--scenario", default="dispersed")
    p.add_argument("--model", default=None, help="the demo's model (default: demo.model)")
    args = p.parse_args(argv)

    from temstream.cli import main as temstream

    with tempfile.TemporaryDirectory() as tmp:
        rc = temstream(["demo", "--frames", str(args.frames), "--size", str(args.size),
                        "--scenario", args.scenario, "--out", str(Path(tmp) / "demo.h5"),
                        "--snapshot", args.out] + (["--model", args.model] if args.model else []))
    if rc == 0:
        print(f"wrote {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
