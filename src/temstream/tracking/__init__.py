"""Instances from segmentations, the online linker and trajectory analysis (numpy/scipy/numba).

- :func:`extract_instances` (:mod:`.instances`): labels and a per-particle table
  (centroid, area, n-fold angle, score, layer, ...) from class probabilities;
- :class:`Linker` and :func:`link` (:mod:`.linking`): frame-by-frame linking with
  trackpy's objective, solved exactly in numba;
- :mod:`.analysis`: MSD, diffusion, drift, van Hove, Lindemann, psi6, pair statistics;
- :mod:`.scoring`: link / track / ISBI scores against ground truth.

Attributes are imported lazily so that ``import temstream.tracking`` stays cheap.
"""

__all__ = ["extract_instances", "Linker", "link"]

_LAZY = {
    "extract_instances": "temstream.tracking.instances",
    "Linker": "temstream.tracking.linking",
    "link": "temstream.tracking.linking",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'temstream.tracking' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
