"""Shared test helpers (``from testkit import ...``): tiny synthetic movies, socket receive loops."""

import time

import numpy as np


def disks_movie(n_frames=20, size=64, n_disks=4, radius=5, step=1.0, seed=0, dtype=np.uint16):
    """Dark disks moving right on a bright noisy background; returns (frames, true centres)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    starts = np.stack([rng.uniform(radius + 2, size - radius - 2 - n_frames * step, n_disks),
                       np.linspace(radius + 4, size - radius - 4, n_disks)], axis=1)
    frames, centres = [], []
    for t in range(n_frames):
        img = np.full((size, size), 1000.0)
        c = starts + [t * step, 0.0]
        for x, y in c:
            img[(xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2] = 400.0
        frames.append(rng.poisson(img).astype(dtype))
        centres.append(c)
    return np.stack(frames), np.stack(centres)


def receive_all(source, n, timeout_s=5.0):
    """Up to ``n`` events from a frame source, waiting at most ``timeout_s`` (never hangs)."""
    events, deadline = [], time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        ev = source.receive(timeout_ms=50)
        if ev is not None:
            events.append(ev)
    return events


_BLANK: dict = {}


def _blank_dashboard(size):
    """A snapshot of the dashboard that never received a frame (made once per session)."""
    if size not in _BLANK:
        import tempfile
        from pathlib import Path

        from PIL import Image

        from temstream.cli._pipeline import build_runner
        from temstream.config import load_config
        from temstream.gui.app import ensure_app, run_with_dashboard
        from temstream.stream.sources import MemorySource

        ensure_app()
        config = load_config(None, ())
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "blank.png"
            run_with_dashboard(build_runner(config, MemorySource([])), config=config,
                               snapshot=shot)
            blank = Image.open(shot).convert("RGB")
            _BLANK[size] = np.asarray(blank.resize(size)).astype(np.int16)
    return _BLANK[size]


def assert_shows_a_picture(png, min_share=0.04):
    """A snapshot of the dashboard shows what it was fed, not a blank window: at least
    ``min_share`` of its pixels differ from a dashboard that never received a frame (a blank
    one with other text: ~2 %; a results feed of three small particles with its plots: ~5 %;
    a run with frames: ~30 %)."""
    from PIL import Image

    shot = Image.open(png).convert("RGB")
    blank = _blank_dashboard(shot.size)
    diff = np.abs(np.asarray(shot).astype(np.int16) - blank).sum(axis=-1) > 30
    assert diff.mean() >= min_share, f"{png}: only {diff.mean():.1%} differs from a blank " \
                                     "dashboard"
