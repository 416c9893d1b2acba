"""``temstream bench``: run the benchmark scripts of a source checkout and collect their tables.

Each ``benchmarks/bench_<name>.py`` is a plain script printing Markdown tables with ratios against
a peer measured in the same run (trackpy, a memory copy, plain PyTorch...). ``temstream bench``
runs the chosen ones one after another (so they do not compete for the cores) and writes one report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from temstream.cli._common import new_parser


def _benchmarks_dir() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base / "benchmarks"
        if candidate.is_dir() and any(candidate.glob("bench_*.py")):
            return candidate
    return None


def add_parser(sub) -> None:
    p = new_parser(sub, "bench", "run the speed benchmarks (from a source checkout)",
                   "temstream bench tracking ingest --quick --out bench.md")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="benchmarks to run (bench_NAME.py); default: all; --list shows them")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    p.add_argument("--out", metavar="FILE.md", help="also write the collected tables here")
    p.set_defaults(func=run)


def run(args) -> int:
    from temstream.cli import UsageError

    directory = _benchmarks_dir()
    if directory is None:
        raise UsageError("no benchmarks/ folder found: run from a temstream source checkout")
    scripts = {p.stem.removeprefix("bench_"): p for p in sorted(directory.glob("bench_*.py"))}
    if args.list:
        print("\n".join(scripts))
        return 0
    names = [n for n in args.names if "=" not in n] or list(scripts)
    unknown = [n for n in names if n not in scripts]
    if unknown:
        raise UsageError(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(scripts)}")
    report = [f"# temstream benchmarks ({time.strftime('%Y-%m-%d %H:%M')}, "
              f"{os.cpu_count()} cores)\n"]
    status = 0
    for name in names:
        cmd = [sys.executable, str(scripts[name])] + (["--quick"] if args.quick else [])
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True)
        took = time.perf_counter() - t0
        print(result.stdout, end="")
        if result.returncode != 0:
            status = 1
            print(result.stderr, file=sys.stderr, end="")
        report.append(f"## {name} ({took:.0f} s)\n\n{result.stdout}\n")
    if args.out:
        Path(args.out).write_text("\n".join(report))
        print(f"report written to {args.out}")
    return status
