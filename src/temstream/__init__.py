"""temstream: live segmentation, tracking and recording of in-situ TEM movies.

The package imports nothing heavy at start-up; use the subpackages:

- :mod:`temstream.stream`   wire protocols, frame sources and publishers (ZeroMQ)
- :mod:`temstream.pipeline` the threaded runner (ingest -> segment -> link -> sinks)
- :mod:`temstream.record`   the HDF5 recorder and readers of recordings
- :mod:`temstream.models`   segmenters (classical baseline, U-Nets) and inference backends
- :mod:`temstream.tracking` instances, the online linker and trajectory analysis
- :mod:`temstream.sim`      the liquid-cell TEM simulator with ground truth
- :mod:`temstream.evaluation` scoring models beside the classical baseline (:func:`evaluate`)
- :mod:`temstream.gui`      the pyqtgraph dashboard
- :mod:`temstream.distributed` many movies at once, in this process or on a Dask cluster
- :mod:`temstream.report`   an HTML or PDF report of a recording
- :mod:`temstream.napari`   the napari plugin (reader and widget; ``pip install 'temstream[napari]'``)
"""

from temstream._version import __version__

__all__ = ["__version__", "read_particles", "open_recording", "process", "make_report", "evaluate"]


def read_particles(path):
    """Read the particle table of a recording as a pandas DataFrame.

    Parameters
    ----------
    path : str or path-like
        A temstream HDF5 recording.

    Returns
    -------
    pandas.DataFrame
        One row per particle per frame, trackpy-compatible columns
        (``frame``, ``particle``, ``x``, ``y``, ...).
    """
    from temstream.record import read_particles as _read

    return _read(path)



def evaluate(models=("default",), data=("sim", "real"), **kwargs):
    """Score segmentation models beside the classical baseline; see
    :func:`temstream.evaluation.evaluate` (its report makes ``docs/eval.md``)."""
    from temstream.evaluation import evaluate as _evaluate

    return _evaluate(models, data, **kwargs)


def open_recording(path):
    """Open a recording lazily: ``.frames``, ``.labels`` (and ``.layer_labels``) as Dask arrays
    read one frame at a time, ``.particles`` and ``.frames_info`` as DataFrames; see
    :class:`temstream.record.Recording`."""
    from temstream.record.lazy import Recording

    return Recording(path)


def process(inputs, out, *, model=None, overrides=(), config=None, cluster=None,
            scheduler=None, client=None, overwrite=False, progress=True):
    """Process movies into recordings, as ``temstream process INPUT... --out DIR``.

    Parameters
    ----------
    inputs : str, path or list of them
        Movie files, or folders of movie files.
    out : str or path
        A folder (one ``<name>.h5`` per movie), or a ``.h5`` file for a single movie.
    model : str, optional
        ``classical``, ``default``, ``bilayer`` or a checkpoint path.
    overrides : sequence of str
        ``section.key=value`` settings, as on the command line.
    config : Config, optional
        The configuration to start from (``overrides`` apply on top).
    cluster, scheduler, client
        Where to run: ``"local"``/``"local:N"``, ``"tcp://HOST:8786"`` or a
        ``distributed.Client``; all None: one movie after the other in this process.
    overwrite : bool
        Also process movies whose recording is complete.

    Returns
    -------
    temstream.distributed.BatchResult
        One result per movie (done, skipped or failed with its error).
    """
    from temstream.cli.process import process_file
    from temstream.config import load_config
    from temstream.distributed import plan_jobs, run_jobs

    if isinstance(inputs, (str, bytes)) or hasattr(inputs, "__fspath__"):
        inputs = [inputs]
    if config is None:
        config = load_config(None, list(overrides))
    elif overrides:
        from temstream.config.schema import parse_overrides

        config = config.replace(**parse_overrides(list(overrides)))
    if model is not None:
        config = config.replace(segment={"model": model})
    jobs = plan_jobs(inputs, out, config, overwrite=overwrite)
    return run_jobs(jobs, process_file, config, cluster=cluster, scheduler=scheduler,
                    client=client, progress=progress)


def make_report(path, out=None, **kwargs):
    """Make the report of a recording (HTML, or PDF when ``out`` ends in ``.pdf``); see
    :func:`temstream.report.make_report`. Returns the :class:`temstream.report.Report`."""
    from temstream.report import make_report

    return make_report(path, out, **kwargs)
