"""Running a dashboard: beside an in-process runner, or on a results feed.

The window lives in the main thread (Qt requires it); the runner, or the feed subscriber, runs in
a worker thread. A 100 ms QTimer watches the worker and lets Python run its signal handlers while
Qt's event loop is in C++, so Ctrl-C and SIGTERM still work.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from pyqtgraph.Qt import QtCore, QtWidgets

from temstream.gui.bridge import DisplaySink
from temstream.gui.control import FeedControl, PipelineControl
from temstream.gui.dashboard import Dashboard

log = logging.getLogger(__name__)

_WATCH_MS = 100


def ensure_app() -> QtWidgets.QApplication:
    """The process's QApplication (created on first use)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("temstream")
    return app


def is_headless(app: QtWidgets.QApplication | None = None) -> bool:
    """True on the ``offscreen`` / ``minimal`` platforms (nobody can close the window)."""
    app = app or ensure_app()
    return app.platformName() in ("offscreen", "minimal")


def attach_display_sink(runner: Any) -> DisplaySink:
    """The runner's :class:`DisplaySink`, added as its last sink if it has none."""
    for sink in runner.sinks:
        if isinstance(sink, DisplaySink):
            return sink
    sink = DisplaySink()
    runner.sinks.append(sink)
    return sink


def _dashboard_options(config) -> dict:
    if config is None:
        return {}
    return {"fps": config.gui.fps, "tail_length": config.gui.tail_length}


def run_with_dashboard(runner: Any, *, config=None, snapshot: str | Path | None = None,
                       title: str = "temstream"):
    """Run ``runner`` in a worker thread with the dashboard in this (the main) thread.

    Parameters
    ----------
    runner : temstream.pipeline.runner.Runner
        Not started yet. A :class:`DisplaySink` is appended to its sinks if it has none.
    config : temstream.config.Config, optional
        ``[gui]`` fps and tail_length.
    snapshot : path, optional
        When the run ends, save the window to this PNG and close it. Without a snapshot the
        window stays open after the run (until closed), except on a headless platform.
    title : str

    Returns
    -------
    RunSummary
        What ``runner.run()`` returned; its exception (StageError) is re-raised here.

    Notes
    -----
    Closing the window stops the runner (queued frames are still processed). Ctrl-C / SIGTERM
    stop the runner and close the window when it has finished.
    """
    early = _early_signals(runner.stop)  # a signal while Qt starts: stop, not an exception
    app = ensure_app()
    sink = attach_display_sink(runner)
    window = Dashboard(sink, PipelineControl(runner, sink), title=title,
                       **_dashboard_options(config))
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["summary"] = runner.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="temstream-runner", daemon=True)
    _event_loop(app, window, worker, stop=runner.stop, snapshot=snapshot, early=early)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("summary", runner.summary)


def run_feed_dashboard(endpoint: str, *, config=None, snapshot: str | Path | None = None,
                       frames: int = 0, idle_timeout_s: float = 0.0,
                       title: str | None = None) -> dict:
    """A dashboard subscribed to a running pipeline's results feed.

    Parameters
    ----------
    endpoint : str
        The feed's ZeroMQ PUB endpoint, e.g. ``tcp://127.0.0.1:5556``.
    config : Config, optional
    snapshot : path, optional
        Save the window when the subscription ends (frame limit, idle timeout, end of series).
    frames : int
        Stop after this many frames (0 = until the window is closed).
    idle_timeout_s : float
        Stop when nothing arrived for this long (0 = wait forever).

    Returns
    -------
    dict
        ``frames`` received, ``malformed`` message counts, and what the feed was ``missing``
        (``frames``, ``labels``).
    """
    from temstream.gui.feed import FeedSubscriber

    app = ensure_app()
    sink = DisplaySink()
    sub = FeedSubscriber(endpoint, sink, frames=frames, idle_timeout_s=idle_timeout_s)
    window = Dashboard(sink, FeedControl(sub), title=title or f"temstream - {endpoint}",
                       **_dashboard_options(config))
    worker = threading.Thread(target=sub.run, name="temstream-feed", daemon=True)
    _event_loop(app, window, worker, stop=sub.stop, snapshot=snapshot)
    if sub.error is not None:
        raise sub.error
    return {"frames": sub.frames_received, "malformed": dict(sub.malformed),
            "missing": sub.missing}


def _early_signals(stop: Callable[[str], None]) -> dict:
    """Until the event loop installs its handlers: Ctrl-C and SIGTERM stop the run (recorded
    in the returned dict) instead of raising in the middle of Qt's start-up."""
    early: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return early

    def handler(signum, _frame) -> None:
        early["signal"] = signal.Signals(signum).name
        log.warning("%s: stopping", early["signal"])
        stop(early["signal"])

    for sig in (signal.SIGINT, signal.SIGTERM):
        early.setdefault("previous", {})[sig] = signal.signal(sig, handler)
    return early


def _event_loop(app: QtWidgets.QApplication, window: Dashboard, worker: threading.Thread, *,
                stop: Callable[[str], None], snapshot: str | Path | None,
                early: dict | None = None) -> None:
    """Show ``window``, run ``worker``, and end both cleanly."""
    early = early or {}
    state = {"close_when_done": snapshot is not None or is_headless(app) or
             "signal" in early, "finished": False, "signalled": "signal" in early}

    def on_closed() -> None:
        stop("window closed")

    def on_signal(signum, _frame) -> None:
        name = signal.Signals(signum).name
        if state.get("signalled"):  # second Ctrl-C: close now
            window.close()
            return
        state["signalled"] = True
        log.warning("%s: stopping after the queued frames", name)
        state["close_when_done"] = True
        stop(name)

    def watch() -> None:
        # not before the worker started: the first paint (processEvents below) can outlast
        # the timer's period, and a worker not yet started is not alive either
        if not state.get("started") or worker.is_alive() or state["finished"]:
            return
        state["finished"] = True
        window.refresh()  # the last frames and the final numbers
        if snapshot is not None:
            try:
                path = window.save_snapshot(snapshot)
                log.info("snapshot saved to %s", path)
            except OSError as exc:
                state["snapshot_error"] = exc
        if state["close_when_done"]:
            window.close()
        else:
            window.statusBar().showMessage("run finished - close the window to exit")

    window.closed.connect(on_closed)
    previous = dict(early.get("previous", {}))
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old = signal.signal(sig, on_signal)
            previous.setdefault(sig, old)
    watcher = QtCore.QTimer()
    watcher.timeout.connect(watch)
    watcher.start(_WATCH_MS)
    window.show()
    app.processEvents()  # first layout and paint before the run competes for the CPU
    worker.start()
    state["started"] = True
    try:
        if window.isVisible():
            app.exec()
    finally:
        watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop("window closed")
        while worker.is_alive():
            worker.join(0.1)
        window.close()
    if "snapshot_error" in state:
        raise state["snapshot_error"]
