"""Planning a batch: which movie goes to which recording, and which recordings are done."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from temstream.config import Config, config_to_toml

#: suffixes of the movie files a folder input expands to (``temstream.stream.files``)
MOVIE_SUFFIXES = (".h5", ".hdf5", ".emd", ".mrc", ".mrcs", ".tif", ".tiff", ".dm3", ".dm4",
                  ".ser", ".npy")
PARTIAL = ".partial"  # a recording being written: <name>.partial.h5, renamed when complete
#: how a run that recorded what it was asked to ends (``RunSummary.stopped_by``)
COMPLETE = ("end of series", "frame limit", "")


@dataclass(frozen=True)
class Job:
    """One movie and the recording it becomes.

    Attributes
    ----------
    input : str
    out : str
        The final recording path.
    skip : str
        Why it is skipped ("" when it is to be processed).
    """

    input: str
    out: str
    skip: str = ""

    @property
    def partial(self) -> str:
        """Where the recording is written until it is complete."""
        p = Path(self.out)
        return str(p.with_name(p.stem + PARTIAL + p.suffix))


def find_movies(inputs) -> list[Path]:
    """The movie files named by ``inputs``: files as given, folders expanded to the movie
    files they hold (sorted, not recursive; ``*.partial.h5`` left out)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.is_file()
                          and q.suffix.lower() in MOVIE_SUFFIXES
                          and not q.stem.endswith(PARTIAL))
        else:
            out.append(p)
    return out


def is_done(path: str | Path, config_toml: str | None = None) -> bool:
    """A recording that was closed cleanly after a run that ended normally (and, with
    ``config_toml``, was made with those settings)."""
    import json

    import h5py

    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            if not bool(a.get("closed_cleanly", False)) or "recording_error" in a:
                return False
            summary = json.loads(a.get("summary", "{}"))
            if summary.get("stopped_by") not in COMPLETE:
                return False
            return config_toml is None or a.get("config", "") == config_toml
    except (OSError, ValueError, TypeError):
        return False


def plan_jobs(inputs, out: str | Path, config: Config | None = None, *,
              overwrite: bool = False) -> list[Job]:
    """One :class:`Job` per movie: ``out/<name>.h5`` (``out`` itself when it names a ``.h5``
    file and there is one movie), marked skipped when that recording is done with the same
    settings (see :func:`is_done`), unless ``overwrite``.

    Raises
    ------
    ValueError
        No movie, two movies with the same name, an input that is its own output, or a
        ``.h5`` output for several movies.
    """
    movies = find_movies(inputs)
    if not movies:
        raise ValueError(f"no movie files in {', '.join(map(str, inputs))}")
    out = Path(out)
    single_file = out.suffix.lower() in (".h5", ".hdf5", ".emd") and not out.is_dir()
    if single_file and len(movies) > 1:
        raise ValueError(f"--out {out} is a file but there are {len(movies)} movies: give a "
                         "folder")
    folder = out.parent if single_file else out
    folder.mkdir(parents=True, exist_ok=True)
    targets = [out] if single_file else [folder / f"{m.stem}.h5" for m in movies]
    seen: dict[Path, Path] = {}
    for movie, target in zip(movies, targets):
        if target in seen:
            raise ValueError(f"{seen[target]} and {movie} would both be recorded to {target}: "
                             "process them into different folders")
        seen[target] = movie
        if movie.resolve() == target.resolve():
            raise ValueError(f"{movie} would be overwritten by its own recording: choose "
                             "another --out folder")
    toml = config_to_toml(config) if config is not None else None
    return [Job(str(m), str(t), "" if overwrite or not is_done(t, toml) else "done")
            for m, t in zip(movies, targets)]
