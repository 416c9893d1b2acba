"""Small helpers around ZeroMQ sockets shared by sources and publishers."""

from __future__ import annotations

import logging
import os
from urllib.parse import urlparse

import zmq

log = logging.getLogger(__name__)

SOCKET_TYPES = {"pull": zmq.PULL, "sub": zmq.SUB, "push": zmq.PUSH, "pub": zmq.PUB}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


_malloc_tuned = False


def tune_malloc_for_large_frames() -> bool:
    """Keep freed multi-MB receive buffers in the heap instead of returning them to the OS.

    glibc serves allocations above ``M_MMAP_THRESHOLD`` (32 MiB at most by default, adapted
    at run time) with fresh ``mmap`` pages, so every received 4096² frame page-faults 32 MiB
    anew; raising the threshold and the trim threshold lets the next message reuse the
    memory. Measured with ``benchmarks/bench_ingest.py`` (2-core loopback): 4096² native
    ingest 0.95 -> 1.85 GB/s, 2048² bslz4 125 -> 160-210 frames/s. Costs resident memory up
    to the peak in flight (a few frames). Linux/glibc only; skipped when
    ``TEMSTREAM_NO_MALLOC_TUNING`` is set. Returns True when applied.
    """
    global _malloc_tuned
    if _malloc_tuned or os.environ.get("TEMSTREAM_NO_MALLOC_TUNING"):
        return _malloc_tuned
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, ctypes.c_int(256 << 20)) == 1
        ok = ok and libc.mallopt(m_trim_threshold, ctypes.c_int(1 << 30)) == 1
    except (OSError, AttributeError):
        ok = False
    _malloc_tuned = ok
    return ok


def is_loopback(endpoint: str) -> bool:
    """True for ``ipc://``/``inproc://`` endpoints and TCP endpoints on a loopback address."""
    if not endpoint.startswith("tcp://"):
        return True
    host = urlparse(endpoint).hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


def open_socket(endpoint: str, kind: str, *, bind: bool, hwm: int | None = None,
                context: zmq.Context | None = None) -> zmq.Socket:
    """Create, configure and bind or connect a socket.

    Binding to a non-loopback address is allowed (the user asked for it by naming the address)
    but logged, since it exposes the stream to the network.
    """
    if kind not in SOCKET_TYPES:
        raise ValueError(f"unknown socket type {kind!r}; choose one of {', '.join(SOCKET_TYPES)}")
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(SOCKET_TYPES[kind])
    sock.setsockopt(zmq.LINGER, 0)
    if hwm is not None:
        sock.setsockopt(zmq.RCVHWM if kind in ("pull", "sub") else zmq.SNDHWM, hwm)
    if kind == "sub":
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        if bind:
            if not is_loopback(endpoint):
                log.warning("binding %s: reachable from the network", endpoint)
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise ValueError(f"cannot {'bind' if bind else 'connect'} {endpoint}: {exc}") from None
    return sock


def bound_endpoint(sock: zmq.Socket) -> str:
    """The endpoint a socket is bound to (resolves ``tcp://127.0.0.1:*`` to the real port)."""
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()
