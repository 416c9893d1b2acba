"""Shared fixtures: ZeroMQ socket pairs on free loopback ports, a tiny synthetic movie."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import zmq

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# the real labelled images sit beside the checkout in the team's workspace; tests that need
# them skip elsewhere (the package itself never defaults to a path outside the repository)
_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "msa-em-train"
if (_REAL / "images").is_dir():
    os.environ.setdefault("TEMSTREAM_REAL_DATA", str(_REAL))


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


@pytest.fixture
def movie():
    from testkit import disks_movie

    return disks_movie()
