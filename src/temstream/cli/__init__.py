"""The single ``temstream`` command.

Each subcommand lives in its own module ``temstream.cli.<name>`` with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. This module is the only place that
configures logging and turns known errors into one-line messages with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import signal
import sys
import traceback
import warnings

from temstream import __version__
from temstream.cli._common import add_overrides
from temstream.config import ConfigError
from temstream.pipeline.runner import StageError

#: subcommand name -> module (imported lazily, only the one that runs is loaded fully)
COMMANDS = {
    "demo": "temstream.cli.demo",
    "run": "temstream.cli.run",
    "process": "temstream.cli.process",
    "replay": "temstream.cli.replay",
    "sim": "temstream.cli.sim",
    "train": "temstream.cli.train",
    "finetune": "temstream.cli.finetune",
    "evaluate": "temstream.cli.evaluate",
    "export": "temstream.cli.export",
    "gui": "temstream.cli.gui",
    "bench": "temstream.cli.bench",
    "info": "temstream.cli.info",
    "report": "temstream.cli.report",
    "denoise": "temstream.cli.denoise",
}


class UsageError(Exception):
    """A user error worth a one-line message and exit status 2 (missing file, bad option)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="temstream",
        description="Live segmentation, tracking and recording of in-situ TEM movies.",
        epilog="Example: temstream demo --frames 300 --out demo.hspy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"temstream {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                continue
            raise
        module.add_parser(sub)
    for subparser in sub.choices.values():
        add_overrides(subparser)
    return parser


#: ``section.key=value`` (configuration) or ``key=value`` (training options)
_OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w.-]*)?=")


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate ``[section.]key=value`` tokens (allowed anywhere) from the other arguments."""
    rest, overrides = [], []
    for token in argv:
        (overrides if _OVERRIDE.match(token) else rest).append(token)
    return rest, overrides


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``temstream`` console script."""
    parser = build_parser()
    rest, overrides = split_overrides(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(rest)
    if hasattr(args, "overrides"):
        args.overrides = overrides + list(args.overrides or [])
    if args.command is None:
        parser.print_help()
        return 2
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # what third-party readers say about a damaged file (tifffile's log, mrcfile's and
        # numpy's warnings) is summed up by our one-line error; -v shows it
        for handler in logging.getLogger().handlers:
            handler.addFilter(_ours)
        warnings.simplefilter("ignore")
    # SIGTERM ends a command like Ctrl-C does (KeyboardInterrupt: clean-ups run, exit 130);
    # the pipeline and the dashboard install their own handlers while they run
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError, ValueError) as exc:
        print(f"temstream {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"temstream {args.command}: error: file not found: {exc.filename or exc}",
              file=sys.stderr)
        return 2
    except StageError as exc:
        print(f"temstream {args.command}: error: {exc}", file=sys.stderr)
        if args.verbose:
            traceback.print_exception(exc.cause)
        return 1
    except KeyboardInterrupt:
        print(f"temstream {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # unreadable or unwritable files: h5py, mmap, permissions
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"temstream {args.command}: error: {where}{_one_line(exc)}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _ours(record: logging.LogRecord) -> bool:
    """Log records shown without -v: temstream's, and anyone's that is critical."""
    return record.name.startswith("temstream") or record.levelno >= logging.CRITICAL


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500] or type(exc).__name__
