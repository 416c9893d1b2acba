"""Registry of wire protocols: name -> decoder and encoder factories, imported lazily.

A *decoder* is a callable ``decode(parts: list) -> Frame | SeriesStart | SeriesEnd`` that raises
:class:`~temstream.stream.events.MalformedMessage`; it may keep state (a factory makes a fresh one
per connection). An *encoder* has ``start(series, meta)``, ``frame(image, series, frame,
timestamp, meta)`` and ``end(series, meta)``, each returning the list of message parts.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np

from temstream.stream import native

#: protocol name -> "module:attribute" of a zero-argument factory
DECODERS = {
    "native": "temstream.stream.protocols:NativeDecoder",
    "dectris-v2": "temstream.stream.dectris:V2Decoder",
    "dectris-v1": "temstream.stream.dectris:V1Decoder",
}
ENCODERS = {
    "native": "temstream.stream.protocols:NativeEncoder",
    "dectris-v2": "temstream.stream.dectris:V2Encoder",
    "dectris-v1": "temstream.stream.dectris:V1Encoder",
}


class NativeDecoder:
    """Stateless decoder of the native format."""

    def __call__(self, parts: list):
        return native.decode(parts)


class NativeEncoder:
    """Encoder of the native format; pixel buffers are passed on without a copy."""

    def start(self, series: int, meta: dict[str, Any]) -> list:
        return [native.encode_series_start(series, **meta)]

    def frame(self, image: np.ndarray, series: int, frame: int, timestamp: float | None,
              meta: dict[str, Any]) -> list:
        image = np.ascontiguousarray(image)
        header = native.encode_frame_header(image, series=series, frame=frame,
                                            timestamp=timestamp, **meta)
        return [header, image]

    def end(self, series: int, meta: dict[str, Any]) -> list:
        return [native.encode_series_end(series, **meta)]


def _load(table: dict[str, str], name: str, what: str) -> Callable[[], Any]:
    try:
        target = table[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; choose one of {', '.join(table)}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"protocol {name!r} has no {what} in this installation ({exc})") from None


def make_decoder(name: str):
    """A fresh decoder for protocol ``name``."""
    return _load(DECODERS, name, "decoder")()


def make_encoder(name: str):
    """A fresh encoder for protocol ``name``."""
    return _load(ENCODERS, name, "encoder")()
