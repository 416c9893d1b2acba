"""The pyqtgraph dashboard (the only subpackage that imports Qt).

Qt-free parts, importable without a display: :mod:`temstream.gui.bridge` (``DisplaySink``),
:mod:`temstream.gui.accumulators` (tails, MSD), :mod:`temstream.gui.stats`, :mod:`temstream.gui.render`,
:mod:`temstream.gui.control`, :mod:`temstream.gui.feed`. Importing the names below loads Qt.

Examples
--------
>>> from temstream.gui import run_with_dashboard            # doctest: +SKIP
>>> summary = run_with_dashboard(runner, config=config, snapshot="run.png")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_LAZY = {
    "run_with_dashboard": "temstream.gui.app",
    "run_feed_dashboard": "temstream.gui.app",
    "attach_display_sink": "temstream.gui.app",
    "ensure_app": "temstream.gui.app",
    "Dashboard": "temstream.gui.dashboard",
    "DisplaySink": "temstream.gui.bridge",
    "DisplayFrame": "temstream.gui.bridge",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'temstream.gui' has no attribute {name!r}")
