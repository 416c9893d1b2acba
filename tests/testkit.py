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
