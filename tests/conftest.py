"""Shared fixtures: ZeroMQ socket pairs on free loopback ports, a tiny synthetic movie."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zmq

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def zmq_context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def push_pull(zmq_context):
    """A bound PUSH socket and a PULL socket connected to it (loopback, free port)."""
    push = zmq_context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    pull = zmq_context.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(f"tcp://127.0.0.1:{port}")
    yield push, pull, f"tcp://127.0.0.1:{port}"


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


@pytest.fixture
def movie():
    return disks_movie()
