"""Small helpers around ZeroMQ sockets shared by sources and publishers."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import zmq

log = logging.getLogger(__name__)

SOCKET_TYPES = {"pull": zmq.PULL, "sub": zmq.SUB, "push": zmq.PUSH, "pub": zmq.PUB}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


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
