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
"""

from temstream._version import __version__

__all__ = ["__version__", "read_particles", "evaluate"]


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
