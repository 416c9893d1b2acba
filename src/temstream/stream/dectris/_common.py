"""Helpers shared by the Stream V1 and V2 codecs: shape checks, pixels, frames, plain metadata."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import numpy as np

from temstream.stream.dectris.compression import Compressed
from temstream.stream.events import Frame, MalformedMessage, PendingFrame
from temstream.stream.limits import MAX_PIXELS, MAX_SIDE
from temstream.stream.native import _short


def _check_shape(h: Any, w: Any) -> tuple[int, int]:
    for s in (h, w):
        if not isinstance(s, int) or isinstance(s, bool) or not 0 < s <= MAX_SIDE:
            raise MalformedMessage("bad-shape", f"frame sides must be integers in "
                                   f"1..{MAX_SIDE}, got {h!r} x {w!r}")
    if h * w > MAX_PIXELS:
        raise MalformedMessage("bad-shape", f"{h} x {w} frame exceeds {MAX_PIXELS} pixels")
    return h, w


def _pixels(payload, dtype: np.dtype, shape: tuple[int, int], order: str = "C"):
    """ndarray, or a callable producing it when ``payload`` is compressed."""
    nbytes = shape[0] * shape[1] * dtype.itemsize

    def to_image(buffer) -> np.ndarray:
        image = np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)
        if not image.dtype.isnative or order != "C":
            image = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("="))
        return image

    if isinstance(payload, Compressed):
        payload.check(nbytes)
        return lambda: to_image(payload.decompress(nbytes))
    try:
        size = memoryview(payload).nbytes
    except TypeError:
        raise MalformedMessage("bad-field", "pixel data is not a byte string") from None
    if size != nbytes:
        raise MalformedMessage("size-mismatch", f"pixel data has {size} bytes, {shape} x "
                               f"{dtype} needs {nbytes}")
    return to_image(payload)


def _frame(image_or_work, **kwargs) -> Frame | PendingFrame:
    if callable(image_or_work):
        return PendingFrame(Frame(image=None, **kwargs), image_or_work)
    return Frame(image=image_or_work, **kwargs)


def _uint(value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise MalformedMessage("bad-field", f"{key!r} must be an unsigned 64-bit integer, "
                               f"got {_short(value)}")
    return value


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-compatible copy of small metadata (arrays and byte strings are dropped)."""
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _plain(value.item(), depth)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if depth < 4 and isinstance(value, (list, tuple)) and len(value) <= 64:
        return [_plain(v, depth + 1) for v in value]
    if depth < 4 and isinstance(value, dict) and len(value) <= 256:
        return {str(k): _plain(v, depth + 1) for k, v in value.items()
                if not isinstance(v, (bytes, bytearray, memoryview, _MultiDim, _Typed,
                                      Compressed))}
    return None


# -- lazy CBOR values the Stream V2 decoder builds (here because _plain leaves them out) --
class _Typed:
    __slots__ = ("dtype", "payload")

    def __init__(self, dtype: str, payload):
        self.dtype, self.payload = np.dtype(dtype), payload


class _MultiDim:
    __slots__ = ("dims", "typed", "order")

    def __init__(self, dims, typed, order):
        self.dims, self.typed, self.order = dims, typed, order


def _iso(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc)
