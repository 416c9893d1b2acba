"""The native temstream wire format, version 1 (see ``docs/wire-format.md``).

A frame is a two-part ZeroMQ message: a UTF-8 JSON header, then the pixel buffer (C order).
A series is framed by a one-part start message and a one-part end message. This module only
encodes and decodes; sockets live in :mod:`temstream.stream.sources` and
:mod:`temstream.stream.publish`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from temstream.stream.events import Frame, MalformedMessage, SeriesEnd, SeriesStart
from temstream.stream.limits import MAX_PIXELS, MAX_SIDE, fits_budget

WIRE_VERSION = 1
HTYPE_FRAME = "temstream-frame-1"
HTYPE_SERIES = "temstream-series-1"
HTYPE_SERIES_END = "temstream-series-end-1"

#: dtypes a frame may carry, as numpy dtype strings (explicit byte order)
ALLOWED_DTYPES = {"|u1", "<u2", ">u2", "<u4", ">u4", "<f4", ">f4"}


def _dtype_str(dtype: np.dtype) -> str:
    dt = np.dtype(dtype)
    return dt.str if dt.itemsize > 1 else "|u1" if dt.kind == "u" else dt.str


def encode_frame_header(
    image: np.ndarray, *, series: int, frame: int, timestamp: float | None = None, **meta: Any
) -> bytes:
    """Encode the JSON header of a frame message.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame; uint8, uint16, uint32 or float32, C-contiguous.
    series, frame : int
        Series id and the detector's frame index (never re-numbered).
    timestamp : float, optional
        Detector timestamp, seconds since the epoch.
    **meta
        Further keys, e.g. ``pixel_size_nm``, ``exposure_s``.
    """
    if image.ndim != 2:
        raise ValueError(f"a frame must be 2-D, got shape {image.shape}")
    dtype = _dtype_str(image.dtype)
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"dtype {image.dtype} cannot be sent; use uint8/16/32 or float32")
    header = {
        "htype": HTYPE_FRAME,
        "series": int(series),
        "frame": int(frame),
        "shape": [int(image.shape[0]), int(image.shape[1])],
        "dtype": dtype,
        "timestamp": timestamp,
        **meta,
    }
    return json.dumps(header, allow_nan=False).encode()


def encode_series_start(series: int, **meta: Any) -> bytes:
    """The one-part message that opens a series (detector and sample metadata in ``meta``)."""
    return json.dumps({"htype": HTYPE_SERIES, "series": int(series), **meta}).encode()


def encode_series_end(series: int, **meta: Any) -> bytes:
    """The one-part message that closes a series."""
    return json.dumps({"htype": HTYPE_SERIES_END, "series": int(series), **meta}).encode()


def _header(part: Any) -> dict:
    try:
        header = json.loads(bytes(part))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage("bad-json", f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedMessage("bad-json", "header is not a JSON object")
    return header


def _short(value: Any) -> str:
    """A value for an error message: never the digits of a huge integer (which may not even
    convert to text)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    return f"{value!r:.60}"


def _int(header: dict, key: str, kind: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise MalformedMessage(kind, f"{key!r} must be an integer in [0, 2**64), got "
                               f"{_short(value)}")
    return value


def decode(parts: list) -> Frame | SeriesStart | SeriesEnd:
    """Decode one multipart message.

    Parameters
    ----------
    parts : list of bytes or zmq.Frame
        The message parts as received; frame buffers are wrapped without a copy
        (the returned array keeps the ``zmq.Frame`` alive).

    Returns
    -------
    Frame, SeriesStart or SeriesEnd

    Raises
    ------
    MalformedMessage
        With a ``kind`` naming what was wrong (``bad-json``, ``unknown-htype``, ``bad-dtype``,
        ``bad-shape``, ``size-mismatch``, ``missing-part``, ``extra-part``, ``bad-field``).
    """
    if not parts:
        raise MalformedMessage("missing-part", "empty message")
    header = _header(parts[0])
    htype = header.get("htype")
    if htype == HTYPE_SERIES or htype == HTYPE_SERIES_END:
        if len(parts) != 1:
            raise MalformedMessage("extra-part", f"{htype} must have one part, got {len(parts)}")
        series = _int(header, "series", "bad-field")
        meta = {k: v for k, v in header.items() if k not in ("htype", "series")}
        return (SeriesStart if htype == HTYPE_SERIES else SeriesEnd)(series=series, meta=meta)
    if htype != HTYPE_FRAME:
        raise MalformedMessage("unknown-htype", f"unknown htype {htype!r}")
    if len(parts) < 2:
        raise MalformedMessage("missing-part", "frame header without a pixel buffer")
    if len(parts) > 2:
        raise MalformedMessage("extra-part", f"frame message has {len(parts)} parts, expected 2")
    dtype = header.get("dtype")
    if dtype not in ALLOWED_DTYPES:
        raise MalformedMessage("bad-dtype", f"unsupported dtype {dtype!r}")
    shape = header.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        or not fits_budget(*shape)
    ):
        raise MalformedMessage("bad-shape", f"shape must be [H, W] with 0 < side <= {MAX_SIDE} "
                               f"and H x W <= {MAX_PIXELS}, got {shape!r:.60}")
    series = _int(header, "series", "bad-field")
    frame = _int(header, "frame", "bad-field")
    timestamp = header.get("timestamp")
    if timestamp is not None and (not isinstance(timestamp, (int, float))
                                  or isinstance(timestamp, bool) or not math.isfinite(timestamp)):
        raise MalformedMessage("bad-field", f"timestamp must be a number, got {timestamp!r}")
    part = parts[1]
    buffer = part.buffer if hasattr(part, "buffer") else part
    expected = shape[0] * shape[1] * np.dtype(dtype).itemsize
    if memoryview(buffer).nbytes != expected:
        raise MalformedMessage(
            "size-mismatch",
            f"buffer has {memoryview(buffer).nbytes} bytes, shape {shape} x {dtype} needs {expected}",
        )
    image = np.frombuffer(buffer, dtype=dtype).reshape(shape)
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    meta = {k: v for k, v in header.items()
            if k not in ("htype", "series", "frame", "shape", "dtype", "timestamp")}
    return Frame(image=image, series=series, index=frame, timestamp=timestamp, meta=meta,
                 _keepalive=part)
