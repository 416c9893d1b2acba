"""Options shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from temstream.config import Config, load_config


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``; the trailing ``KEY=VALUE`` overrides are added by :func:`add_overrides`."""
    parser.add_argument(
        "--config", metavar="FILE",
        help="TOML file, or a preset shipped with temstream: live, replay, demo",
    )


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """Trailing ``section.key=value`` overrides; added last so they follow the positionals."""
    if any(a.dest == "overrides" for a in parser._actions):
        return
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="configuration overrides, e.g. tracking.search_range=12",
    )


def add_denoise_option(parser: argparse.ArgumentParser, what: str = "segmenting") -> None:
    """``--denoise MODEL``: the ``[denoise]`` stage (docs/denoise.md)."""
    parser.add_argument("--denoise", metavar="MODEL",
                        help=f"denoise each frame (with the two before it) before {what}: "
                             "denoise (shipped) or a checkpoint of `train --preset denoise` "
                             "(default: denoise.model, off); denoise.apply=display only shows it")


def config_from_args(args: argparse.Namespace, **extra: dict) -> Config:
    """Load the configuration named by ``args`` and apply command-line options on top
    (``--denoise`` where the command has it)."""
    config = load_config(args.config, getattr(args, "overrides", None) or ())
    if getattr(args, "denoise", None) is not None:
        extra = {**extra, "denoise": {**extra.get("denoise", {}), "model": args.denoise}}
    options = {section: {k: v for k, v in values.items() if v is not None}
               for section, values in extra.items()}
    options = {section: values for section, values in options.items() if values}
    return config.replace(**options) if options else config


def new_parser(sub, name: str, help: str, example: str, description: str | None = None):
    """A subparser whose ``--help`` ends with an example."""
    parser = sub.add_parser(
        name, help=help, description=description or help,
        epilog=f"Example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_options(parser)
    return parser


def training_overrides(args) -> dict:
    """Training options from the ``[train]`` table of ``--config`` and trailing ``key=value``
    overrides (``train.`` prefix optional)."""
    kw = {}
    if args.config:
        import tomllib

        from temstream.cli import UsageError
        from temstream.config import ConfigError
        from temstream.config.schema import resolve_preset

        try:
            with open(resolve_preset(args.config), "rb") as f:
                kw.update(tomllib.load(f).get("train", {}))
        except (ConfigError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--config {args.config}: {exc}") from None
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            from temstream.cli import UsageError
            raise UsageError(f"override {item!r} is not KEY=VALUE (e.g. steps=500)")
        kw[key.removeprefix("train.")] = value
    return kw


def open_input_movie(path):
    """:func:`temstream.stream.files.open_movie`, never writing the input: a recording whose
    writer was killed in mid-write (its last frames would not read) is read from a repaired
    temporary copy (:func:`temstream.record.repaired_copy`), removed when the movie closes."""
    from temstream.stream.files import open_movie

    if Path(path).suffix.lower() in (".h5", ".hdf5", ".emd", ".hspy") and Path(path).is_file():
        from temstream.record import repair_plan, repaired_copy

        plan = repair_plan(path)
        if plan is not None:
            copy = repaired_copy(path, plan)
            print(f"{path} was not closed cleanly ({plan[2]}): reading a repaired copy; the "
                  "file itself is left as it is")
            try:
                movie = open_movie(copy)
            except BaseException:
                copy.unlink(missing_ok=True)
                raise
            movie.path = Path(path)
            close = movie._close

            def close_and_remove():
                if close is not None:
                    close()
                copy.unlink(missing_ok=True)
            movie._close = close_and_remove
            return movie
    return open_movie(path)
