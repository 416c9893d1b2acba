"""DECTRIS detector streams: Stream V2 (CBOR) and legacy Stream V1 (multipart JSON).

Decoders turn the detector's messages into :class:`~temstream.stream.events.SeriesStart`,
:class:`~temstream.stream.events.Frame` (or :class:`~temstream.stream.events.PendingFrame` when
the pixels still need decompressing) and :class:`~temstream.stream.events.SeriesEnd`; encoders
build the same messages so the emulator and ``temstream replay`` can play a DECTRIS detector.
Message layouts follow DECTRIS's published specification (``docs/wire-format.md`` maps them onto
events).

Nothing from the wire is trusted: shapes are capped (:data:`MAX_SIDE`, :data:`MAX_PIXELS`), the
uncompressed size in a compressed blob's header must equal the size the shape and dtype declare
before anything is allocated, and decompression goes through ``dectris-compression`` (bounds
checked against the input) or ``lz4.block`` with a known output size.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
import struct
import time
from typing import Any

import numpy as np

from temstream.stream.events import Frame, MalformedMessage, PendingFrame, SeriesEnd, SeriesStart
from temstream.stream.limits import MAX_DEPTH, MAX_PIXELS, MAX_SIDE

#: the CBOR self-describe tag 55799 that prefixes every Stream V2 message
MAGIC = b"\xd9\xd9\xf7"

#: RFC 8746 typed-array tags -> numpy dtype strings (Stream V2 data model)
TYPED_ARRAY_TAGS = {
    64: "|u1", 65: ">u2", 66: ">u4", 67: ">u8", 68: "|u1", 69: "<u2", 70: "<u4", 71: "<u8",
    72: "|i1", 73: ">i2", 74: ">i4", 75: ">i8", 77: "<i2", 78: "<i4", 79: "<i8",
    80: ">f2", 81: ">f4", 82: ">f8", 84: "<f2", 85: "<f4", 86: "<f8",
}
_TAG_OF_DTYPE = {v: k for k, v in TYPED_ARRAY_TAGS.items() if k != 68}
TAG_MULTI_DIM = 40
TAG_MULTI_DIM_COLUMN_MAJOR = 1040
TAG_COMPRESSION = 56500
#: bitshuffle / LZ4 block size written by the encoders, in bytes (DECTRIS uses 8192)
BLOCK_BYTES = 8192


# -- compressed blobs ----------------------------------------------------------------------
class Compressed:
    """A compressed byte string as found on the wire (not yet decompressed).

    Parameters
    ----------
    algorithm : str
        ``"bslz4"`` (bitshuffle + LZ4, HDF5-filter framing), ``"lz4"`` (LZ4, HDF5-filter
        framing) or ``"lz4-raw"`` (one LZ4 block without header: Stream V1 ``lz4<``).
    elem_size : int
        Bitshuffle element size in bytes (``bslz4`` only).
    data : bytes-like
    """

    __slots__ = ("algorithm", "elem_size", "data")

    def __init__(self, algorithm: str, elem_size: int, data):
        self.algorithm, self.elem_size, self.data = algorithm, elem_size, data

    def check(self, nbytes: int) -> None:
        """Raise :class:`MalformedMessage` unless this blob can decompress to ``nbytes``."""
        if self.algorithm not in ("bslz4", "lz4", "lz4-raw"):
            raise MalformedMessage("bad-compression",
                                   f"unknown compression {self.algorithm!r}")
        if self.algorithm == "lz4-raw":
            return
        data = memoryview(self.data)
        if data.nbytes < 12:
            raise MalformedMessage("bad-compression", f"compressed blob of {data.nbytes} bytes "
                                   "is shorter than its 12-byte header")
        size, block = struct.unpack_from(">QI", data)
        if size != nbytes:
            raise MalformedMessage("size-mismatch", f"compressed blob says {size} bytes, shape "
                                   f"and dtype need {nbytes}")
        if self.algorithm == "bslz4":
            e = self.elem_size
            if e not in (1, 2, 4, 8) or nbytes % e:
                raise MalformedMessage("bad-compression", f"bitshuffle element size {e} does "
                                       f"not divide {nbytes} bytes")
            if nbytes and (block == 0 or block % (8 * e)):
                raise MalformedMessage("bad-compression", f"bitshuffle block of {block} bytes "
                                       f"is not a multiple of {8 * e}")
        elif nbytes and block == 0:
            raise MalformedMessage("bad-compression", "LZ4 block size 0")

    def decompress(self, nbytes: int) -> bytes:
        """Decompress to exactly ``nbytes`` bytes (call :meth:`check` first)."""
        try:
            if self.algorithm == "lz4-raw":
                import lz4.block

                out = lz4.block.decompress(self.data, uncompressed_size=nbytes)
            else:
                from dectris.compression import decompress

                out = decompress(self.data, self.algorithm, elem_size=self.elem_size or 1)
        except Exception as exc:  # lz4 raises LZ4BlockError, dectris RuntimeError
            raise MalformedMessage("bad-compression", f"cannot decompress "
                                   f"{self.algorithm} blob: {exc}") from None
        if len(out) != nbytes:
            raise MalformedMessage("size-mismatch", f"decompressed to {len(out)} bytes, "
                                   f"expected {nbytes}")
        return out


def compress_bslz4(array: np.ndarray, block_bytes: int = BLOCK_BYTES) -> bytes:
    """Bitshuffle-LZ4 in HDF5-filter framing (12-byte header, then blocks), as DECTRIS sends.

    The result is also a valid chunk for the HDF5 Bitshuffle filter (32008, LZ4).
    """
    import bitshuffle

    flat = np.ascontiguousarray(array).reshape(-1)
    elems = max(8, (block_bytes // flat.itemsize) // 8 * 8)
    body = bitshuffle.compress_lz4(flat, elems)
    return struct.pack(">QI", flat.nbytes, elems * flat.itemsize) + body.tobytes()


def compress_lz4_hdf5(data, block_bytes: int = 1 << 16) -> bytes:
    """LZ4 in HDF5-filter framing: 12-byte header, then (u32 BE length, block) per block;
    a block that does not shrink is stored as it is (length == block size)."""
    import lz4.block

    view = memoryview(data).cast("B")
    out = [struct.pack(">QI", view.nbytes, block_bytes)]
    for start in range(0, view.nbytes, block_bytes):
        raw = view[start:start + block_bytes]
        comp = lz4.block.compress(raw, store_size=False)
        if len(comp) >= len(raw):
            comp = bytes(raw)
        out.append(struct.pack(">I", len(comp)))
        out.append(comp)
    return b"".join(out)


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
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedMessage("bad-field", f"{key!r} must be a non-negative integer, "
                               f"got {value!r}")
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


# -- Stream V2 ------------------------------------------------------------------------------
class _Typed:
    __slots__ = ("dtype", "payload")

    def __init__(self, dtype: str, payload):
        self.dtype, self.payload = np.dtype(dtype), payload


class _MultiDim:
    __slots__ = ("dims", "typed", "order")

    def __init__(self, dims, typed, order):
        self.dims, self.typed, self.order = dims, typed, order


def _tag_hook(tag, immutable=False):
    """cbor2 hook: typed arrays, multi-dim arrays and compression stay lazy (no allocation)."""
    if tag.tag == TAG_COMPRESSION:
        v = tag.value
        if (isinstance(v, (list, tuple)) and len(v) == 3 and isinstance(v[0], str)
                and isinstance(v[1], int) and isinstance(v[2], bytes)):
            return Compressed(v[0], v[1], v[2])
        raise MalformedMessage("bad-compression", "compression tag must hold "
                               "[algorithm, modifier, bytes]")
    if tag.tag in TYPED_ARRAY_TAGS:
        if not isinstance(tag.value, (bytes, Compressed)):
            raise MalformedMessage("bad-field", f"typed array tag {tag.tag} must hold bytes")
        return _Typed(TYPED_ARRAY_TAGS[tag.tag], tag.value)
    if tag.tag in (TAG_MULTI_DIM, TAG_MULTI_DIM_COLUMN_MAJOR):
        v = tag.value
        if not (isinstance(v, (list, tuple)) and len(v) == 2
                and isinstance(v[0], (list, tuple)) and isinstance(v[1], _Typed)):
            raise MalformedMessage("bad-field", "multi-dimensional array must be "
                                   "[[dims...], typed array]")
        return _MultiDim(list(v[0]), v[1], "C" if tag.tag == TAG_MULTI_DIM else "F")
    return tag


def _rational(value: Any, key: str) -> float:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in value)
            or value[1] <= 0 or value[0] < 0):
        raise MalformedMessage("bad-field", f"{key!r} must be a rational [num, den > 0], "
                               f"got {value!r}")
    return value[0] / value[1]


def _v2_payload(msg: bytes | memoryview) -> dict:
    import cbor2

    view = memoryview(msg)
    if view.nbytes < 4 or view[:3] != MAGIC:
        raise MalformedMessage("bad-magic", "Stream V2 message does not start with the CBOR "
                               "self-describe tag d9 d9 f7")
    try:
        obj = cbor2.loads(view[3:], tag_hook=_tag_hook, max_depth=MAX_DEPTH)
    except MalformedMessage:
        raise
    except Exception as exc:  # CBORDecodeError and whatever a mangled value provokes
        cause = exc.__cause__ if isinstance(exc.__cause__, MalformedMessage) else None
        if cause is not None:
            raise cause from None
        raise MalformedMessage("bad-cbor", f"cannot decode CBOR: {exc}") from None
    if not isinstance(obj, dict) or not obj or next(iter(obj)) != "type":
        raise MalformedMessage("bad-cbor", "a Stream V2 message is a map whose first key is "
                               "'type'")
    return obj


#: start-message keys copied into SeriesStart.meta under temstream names
_V2_START_KEYS = {
    "frame_time": "frame_time_s", "count_time": "exposure_s", "image_dtype": "image_dtype",
    "image_size_x": "width", "image_size_y": "height", "detector_description": "detector",
    "detector_serial_number": "detector_serial_number", "series_unique_id": "series_unique_id",
    "incident_energy": "incident_energy_eV", "incident_wavelength": "incident_wavelength_A",
    "sensor_material": "sensor_material", "sensor_thickness": "sensor_thickness_m",
    "saturation_value": "saturation_value", "channels": "channels",
    "number_of_images": "number_of_images", "beam_center_x": "beam_center_x",
    "beam_center_y": "beam_center_y", "threshold_energy": "threshold_energy_eV",
}


class V2Decoder:
    """Decoder of DECTRIS Stream V2 (CBOR) messages; one ZeroMQ frame per message.

    Parameters
    ----------
    channel : str, optional
        Which channel of ``data`` becomes the frame (default: the first one the start message
        lists, else the first in the image message). The names of the other channels are in
        ``Frame.meta["channels"]``; their pixels are not decoded.
    require_magic : bool
        Reject messages without the ``d9 d9 f7`` prefix (the DECTRIS reference parser does).
    """

    def __init__(self, channel: str | None = None, require_magic: bool = True):
        self.channel = channel
        self.require_magic = require_magic
        self.series: int | None = None
        self.series_meta: dict[str, Any] = {}

    def __call__(self, parts: list):
        if len(parts) != 1:
            raise MalformedMessage("extra-part", f"a Stream V2 message has one part, got "
                                   f"{len(parts)}")
        part = parts[0]
        data = part.buffer if hasattr(part, "buffer") else part
        if not self.require_magic and bytes(memoryview(data)[:3]) != MAGIC:
            data = MAGIC + bytes(data)
        msg = _v2_payload(data)
        kind = msg.get("type")
        if kind == "image":
            return self._image(msg)
        if kind == "start":
            return self._start(msg)
        if kind == "end":
            series = _uint(msg.get("series_id"), "series_id")
            if series == self.series:
                self.series = None
            meta = {"series_unique_id": _plain(msg.get("series_unique_id"))}
            return SeriesEnd(series=series, meta={k: v for k, v in meta.items() if v is not None})
        raise MalformedMessage("unknown-type", f"unknown Stream V2 message type {kind!r}")

    def _start(self, msg: dict) -> SeriesStart:
        series = _uint(msg.get("series_id"), "series_id")
        meta: dict[str, Any] = {"protocol": "dectris-v2"}
        for key, name in _V2_START_KEYS.items():
            if key in msg:
                value = _plain(msg[key])
                if value is not None:
                    meta[name] = value
        px = msg.get("pixel_size_x")
        if isinstance(px, (int, float)) and not isinstance(px, bool) and 0 < px < 1:
            meta["pixel_size_nm"] = float(px) * 1e9  # the detector's pixel pitch, metres
        if isinstance(msg.get("arm_date"), _dt.datetime):
            meta["arm_date"] = msg["arm_date"].isoformat()
        user = msg.get("user_data")
        if isinstance(user, dict) and isinstance(user.get("temstream"), dict):
            meta.update(_plain(user["temstream"]) or {})  # our encoder's series metadata
        elif user is not None:
            meta["user_data"] = _plain(user)
        self.series, self.series_meta = series, meta
        return SeriesStart(series=series, meta=meta)

    def _image(self, msg: dict):
        series = _uint(msg.get("series_id"), "series_id")
        index = _uint(msg.get("image_id"), "image_id")
        data = msg.get("data")
        if not isinstance(data, dict) or not data:
            raise MalformedMessage("bad-field", "image message without a 'data' map")
        channels = [str(k) for k in data]
        wanted = self.channel or next(iter(self.series_meta.get("channels") or []), None)
        name = wanted if wanted in data else next(iter(data))
        value = data[name]
        if not isinstance(value, _MultiDim):
            raise MalformedMessage("bad-field", f"channel {name!r} is not a multi-dimensional "
                                   "typed array (tag 40)")
        dims = value.dims
        if len(dims) != 2:
            raise MalformedMessage("bad-shape", f"expected a 2-D image, got dims {dims!r}")
        shape = _check_shape(*dims)
        work = _pixels(value.typed.payload, value.typed.dtype, shape, value.order)
        meta: dict[str, Any] = {"channel": name}
        if len(channels) > 1:
            meta["channels"] = channels
        timestamp = None
        if "start_time" in msg:
            meta["start_time_s"] = _rational(msg["start_time"], "start_time")
            if isinstance(msg.get("series_date"), _dt.datetime):
                date = msg["series_date"]
                if date.tzinfo is None:
                    date = date.replace(tzinfo=_dt.timezone.utc)
                timestamp = date.timestamp() + meta["start_time_s"]
        for key in ("stop_time", "real_time"):
            if key in msg:
                meta[f"{key}_s"] = _rational(msg[key], key)
        if "series_unique_id" in msg:
            meta["series_unique_id"] = _plain(msg["series_unique_id"])
        user = msg.get("user_data")
        if isinstance(user, dict) and isinstance(user.get("temstream"), dict):
            meta.update(_plain(user["temstream"]) or {})
        elif user is not None:
            meta["user_data"] = _plain(user)
        if "pixel_size_nm" not in meta and series == self.series:
            if "pixel_size_nm" in self.series_meta:
                meta["pixel_size_nm"] = self.series_meta["pixel_size_nm"]
        return _frame(work, series=series, index=index, timestamp=timestamp, meta=meta)


def _iso(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc)


class V2Encoder:
    """Encoder of DECTRIS Stream V2 messages (``start``, ``image``, ``end``).

    Parameters
    ----------
    compression : {"bslz4", "lz4", "none"}
        How pixel data travel (``bslz4``: what DECTRIS detectors send by default).
    channel : str
        Name of the single channel sent.

    Notes
    -----
    Our own metadata (``pixel_size_nm``, ``frame_time_s``...) also travels verbatim in
    ``user_data["temstream"]`` so a native -> V2 -> native round trip keeps it.
    Times are rationals in microseconds (time base 1 MHz), relative to ``series_date``.
    """

    TIME_BASE = 1_000_000

    def __init__(self, compression: str = "bslz4", channel: str = "threshold_1"):
        if compression not in ("bslz4", "lz4", "none"):
            raise ValueError(f"compression must be bslz4, lz4 or none, got {compression!r}")
        self.compression, self.channel = compression, channel
        self._t0: float | None = None
        self._unique = ""

    @staticmethod
    def _dump(obj: dict) -> bytes:
        import cbor2

        return MAGIC + cbor2.dumps(obj, datetime_as_timestamp=False, timezone=_dt.timezone.utc)

    def start(self, series: int, meta: dict[str, Any]) -> list:
        now = time.time()
        self._t0 = now
        self._unique = f"temstream-{series}-{int(now * 1e6)}"
        msg: dict[str, Any] = {"type": "start", "series_id": int(series),
                               "series_unique_id": self._unique, "arm_date": _iso(now),
                               "channels": [self.channel]}
        shape = meta.get("shape")
        if isinstance(shape, (list, tuple)) and len(shape) == 2:
            msg["image_size_y"], msg["image_size_x"] = int(shape[0]), int(shape[1])
        if meta.get("dtype"):
            dt = np.dtype(meta["dtype"])
            if dt.kind == "u":
                msg["image_dtype"] = f"uint{8 * dt.itemsize}"
        if meta.get("pixel_size_nm"):
            msg["pixel_size_x"] = msg["pixel_size_y"] = float(meta["pixel_size_nm"]) * 1e-9
        if meta.get("frame_time_s"):
            msg["frame_time"] = float(meta["frame_time_s"])
        if meta.get("exposure_s"):
            msg["count_time"] = float(meta["exposure_s"])
        msg["detector_description"] = str(meta.get("detector", "temstream"))
        msg["user_data"] = {"temstream": _plain(dict(meta))}
        return [self._dump(msg)]

    def _pixels(self, image: np.ndarray):
        import cbor2

        image = np.ascontiguousarray(image)
        dt = image.dtype.newbyteorder("<") if image.dtype.itemsize > 1 else image.dtype
        image = image.astype(dt, copy=False)
        tag = _TAG_OF_DTYPE.get(dt.str)
        if tag is None:
            raise ValueError(f"dtype {image.dtype} has no CBOR typed-array tag")
        if self.compression == "bslz4":
            payload = cbor2.CBORTag(TAG_COMPRESSION, ["bslz4", image.itemsize,
                                                      compress_bslz4(image)])
        elif self.compression == "lz4":
            payload = cbor2.CBORTag(TAG_COMPRESSION, ["lz4", 0, compress_lz4_hdf5(image)])
        else:
            payload = image.tobytes()
        return cbor2.CBORTag(TAG_MULTI_DIM, [[int(image.shape[0]), int(image.shape[1])],
                                             cbor2.CBORTag(tag, payload)])

    def frame(self, image: np.ndarray, series: int, frame: int, timestamp: float | None,
              meta: dict[str, Any]) -> list:
        if image.ndim != 2:
            raise ValueError(f"a frame must be 2-D, got shape {image.shape}")
        if self._t0 is None:
            self._t0 = time.time()
        msg: dict[str, Any] = {"type": "image", "series_id": int(series),
                               "series_unique_id": self._unique, "image_id": int(frame)}
        if timestamp is not None:
            self._t0 = min(self._t0, float(timestamp))
            start = round((float(timestamp) - self._t0) * self.TIME_BASE)
            msg["series_date"] = _iso(self._t0)
            msg["start_time"] = [start, self.TIME_BASE]
            exposure = meta.get("exposure_s")
            if exposure:
                msg["stop_time"] = [start + round(float(exposure) * self.TIME_BASE),
                                    self.TIME_BASE]
                msg["real_time"] = [round(float(exposure) * self.TIME_BASE), self.TIME_BASE]
        msg["data"] = {self.channel: self._pixels(image)}
        if meta:
            msg["user_data"] = {"temstream": _plain(dict(meta))}
        return [self._dump(msg)]

    def end(self, series: int, meta: dict[str, Any]) -> list:
        return [self._dump({"type": "end", "series_id": int(series),
                            "series_unique_id": self._unique})]


# -- Stream V1 (legacy) ---------------------------------------------------------------------
_ENCODING = re.compile(r"^(?:bs(8|16|32|64)-?)?(lz4)?([<>])$")
_V1_TYPES = {"uint8": "u1", "uint16": "u2", "uint32": "u4", "float32": "f4", "int32": "i4"}


def _json(part: Any, what: str) -> dict:
    data = part.buffer if hasattr(part, "buffer") else part
    try:
        obj = json.loads(bytes(data))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage("bad-json", f"{what} is not JSON: {str(exc)[:80]}") from None
    if not isinstance(obj, dict):
        raise MalformedMessage("bad-json", f"{what} is not a JSON object")
    return obj


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        date = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=_dt.timezone.utc)
    return date.timestamp()


#: detector-config keys copied into SeriesStart.meta under temstream names
_V1_CONFIG_KEYS = {
    "frame_time": "frame_time_s", "count_time": "exposure_s", "nimages": "number_of_images",
    "ntrigger": "ntrigger", "trigger_mode": "trigger_mode", "description": "detector",
    "detector_number": "detector_serial_number", "software_version": "software_version",
    "bit_depth_image": "bit_depth_image", "x_pixels_in_detector": "width",
    "y_pixels_in_detector": "height", "compression": "compression",
    "threshold_energy": "threshold_energy_eV", "wavelength": "incident_wavelength_A",
    "data_collection_date": "data_collection_date",
}


class V1Decoder:
    """Decoder of DECTRIS Stream V1 ("legacy") multipart JSON messages.

    ``dheader`` -> SeriesStart (detector config from part 2 when ``header_detail`` is basic or
    all; flat-field, pixel-mask and count-rate parts are skipped), ``dimage`` (4 parts, a 5th
    image appendix is merged into ``meta`` when it is a JSON object) -> Frame, ``dseries_end``
    -> SeriesEnd. Shapes on the wire are ``[x, y]`` = ``[width, height]``. The ``hash`` (MD5)
    is not verified. ``Frame.timestamp`` is ``data_collection_date`` + ``start_time`` when
    the header carried the date, else None (``meta["start_time_s"]`` has the relative time).
    """

    def __init__(self):
        self.series: int | None = None
        self.series_meta: dict[str, Any] = {}
        self._t0: float | None = None

    def __call__(self, parts: list):
        if not parts:
            raise MalformedMessage("missing-part", "empty message")
        header = _json(parts[0], "first part")
        htype = header.get("htype")
        if not isinstance(htype, str):
            raise MalformedMessage("unknown-htype", f"htype {htype!r} is not a string")
        if htype.startswith("dimage-"):
            return self._image(header, parts)
        if htype.startswith("dheader-"):
            return self._start(header, parts)
        if htype.startswith("dseries_end-"):
            if len(parts) != 1:
                raise MalformedMessage("extra-part", f"dseries_end has one part, got "
                                       f"{len(parts)}")
            series = _uint(header.get("series"), "series")
            if series == self.series:
                self.series = None
            return SeriesEnd(series=series)
        raise MalformedMessage("unknown-htype", f"unknown htype {htype[:40]!r}")

    def _start(self, header: dict, parts: list) -> SeriesStart:
        series = _uint(header.get("series"), "series")
        detail = header.get("header_detail", "basic")
        meta: dict[str, Any] = {"protocol": "dectris-v1", "header_detail": _plain(detail)}
        if detail != "none" and len(parts) >= 2:
            config = _json(parts[1], "detector config")
            for key, name in _V1_CONFIG_KEYS.items():
                value = _plain(config.get(key))
                if value is not None:
                    meta[name] = value
            px = config.get("x_pixel_size")
            if isinstance(px, (int, float)) and not isinstance(px, bool) and 0 < px < 1:
                meta["pixel_size_nm"] = float(px) * 1e9
            if isinstance(config.get("temstream"), dict):
                meta.update(_plain(config["temstream"]) or {})
        self._t0 = _epoch(meta.get("data_collection_date"))
        self.series, self.series_meta = series, meta
        return SeriesStart(series=series, meta=meta)

    def _image(self, header: dict, parts: list):
        if len(parts) < 4:
            raise MalformedMessage("missing-part", f"dimage needs 4 parts, got {len(parts)}")
        if len(parts) > 5:
            raise MalformedMessage("extra-part", f"dimage has at most 5 parts, got {len(parts)}")
        series = _uint(header.get("series"), "series")
        index = _uint(header.get("frame"), "frame")
        desc = _json(parts[1], "dimage_d part")
        shape = desc.get("shape")
        if not isinstance(shape, list) or len(shape) not in (2, 3) or (
                len(shape) == 3 and shape[2] != 1):
            raise MalformedMessage("bad-shape", f"shape must be [x, y], got {shape!r}")
        h, w = _check_shape(shape[1], shape[0])  # [x, y] = [width, height]
        pixel = _V1_TYPES.get(desc.get("type"))
        encoding = desc.get("encoding")
        m = _ENCODING.match(encoding) if isinstance(encoding, str) else None
        if pixel is None:
            raise MalformedMessage("bad-dtype", f"unsupported type {desc.get('type')!r}")
        if m is None or (m.group(1) and not m.group(2)):
            raise MalformedMessage("bad-encoding", f"unsupported encoding {encoding!r}")
        dtype = np.dtype(m.group(3) + pixel)
        blob = parts[2].buffer if hasattr(parts[2], "buffer") else parts[2]
        size = desc.get("size")
        if size is not None and size != memoryview(blob).nbytes:
            raise MalformedMessage("size-mismatch", f"blob has {memoryview(blob).nbytes} bytes, "
                                   f"dimage_d says {size!r}")
        if m.group(1):
            payload = Compressed("bslz4", int(m.group(1)) // 8, blob)
        elif m.group(2):
            payload = Compressed("lz4-raw", 0, blob)
        else:
            payload = blob
        work = _pixels(payload, dtype, (h, w))
        config = _json(parts[3], "dconfig part")
        meta: dict[str, Any] = {}
        for key in ("start_time", "stop_time", "real_time"):
            value = config.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                meta[f"{key}_s"] = float(value) * 1e-9
        if len(parts) == 5:
            data = parts[4].buffer if hasattr(parts[4], "buffer") else parts[4]
            try:
                appendix = json.loads(bytes(data))
            except (UnicodeDecodeError, ValueError, RecursionError):
                appendix = None
            if isinstance(appendix, dict):
                meta.update(_plain(appendix) or {})
            else:
                meta["image_appendix"] = bytes(data[:256]).decode("utf-8", "replace")
        timestamp = None
        if self._t0 is not None and series == self.series and "start_time_s" in meta:
            timestamp = self._t0 + meta["start_time_s"]
        if "pixel_size_nm" not in meta and series == self.series:
            if "pixel_size_nm" in self.series_meta:
                meta["pixel_size_nm"] = self.series_meta["pixel_size_nm"]
        return _frame(work, series=series, index=index, timestamp=timestamp, meta=meta)


class V1Encoder:
    """Encoder of DECTRIS Stream V1 messages (``header_detail`` basic).

    Parameters
    ----------
    encoding : str, optional
        ``"<"`` (raw), ``"lz4<"`` (one LZ4 block) or ``"bsNN-lz4<"``; default
        ``bs<bits of the pixel type>-lz4<`` as DECTRIS sends.
    md5 : bool
        Put the MD5 of the blob in ``hash`` as the detector does (costs ~2 ms per MB).

    Notes
    -----
    Per-frame metadata goes into a 5th part (image appendix, JSON); series metadata into the
    detector config under ``temstream``.
    """

    def __init__(self, encoding: str | None = None, md5: bool = True):
        if encoding is not None and not _ENCODING.match(encoding):
            raise ValueError(f"encoding {encoding!r} is not of the form [bsNN-][lz4]<")
        self.encoding, self.md5 = encoding, md5
        self._t0: float | None = None

    def start(self, series: int, meta: dict[str, Any]) -> list:
        self._t0 = time.time()
        config: dict[str, Any] = {"description": str(meta.get("detector", "temstream")),
                                  "data_collection_date": _iso(self._t0).isoformat()}
        shape = meta.get("shape")
        if isinstance(shape, (list, tuple)) and len(shape) == 2:
            config["y_pixels_in_detector"], config["x_pixels_in_detector"] = map(int, shape)
        if meta.get("dtype"):
            config["bit_depth_image"] = 8 * np.dtype(meta["dtype"]).itemsize
        if meta.get("pixel_size_nm"):
            config["x_pixel_size"] = config["y_pixel_size"] = float(meta["pixel_size_nm"]) * 1e-9
        if meta.get("frame_time_s"):
            config["frame_time"] = float(meta["frame_time_s"])
        if meta.get("exposure_s"):
            config["count_time"] = float(meta["exposure_s"])
        config["temstream"] = _plain(dict(meta))
        head = {"htype": "dheader-1.0", "series": int(series), "header_detail": "basic"}
        return [json.dumps(head).encode(), json.dumps(config).encode()]

    def frame(self, image: np.ndarray, series: int, frame: int, timestamp: float | None,
              meta: dict[str, Any]) -> list:
        if image.ndim != 2:
            raise ValueError(f"a frame must be 2-D, got shape {image.shape}")
        kind = {"u": "uint", "f": "float", "i": "int"}[image.dtype.kind]
        type_name = f"{kind}{8 * image.itemsize}"
        if type_name not in _V1_TYPES:
            raise ValueError(f"dtype {image.dtype} cannot be sent in Stream V1")
        image = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("<"))
        encoding = self.encoding or f"bs{8 * image.itemsize}-lz4<"
        m = _ENCODING.match(encoding)
        if m.group(1):
            blob = compress_bslz4(image.view(f"u{int(m.group(1)) // 8}"))
        elif m.group(2):
            import lz4.block

            blob = lz4.block.compress(image, store_size=False)
        else:
            blob = image
        nbytes = len(blob) if isinstance(blob, bytes) else blob.nbytes
        digest = hashlib.md5(blob).hexdigest() if self.md5 else ""
        head = {"htype": "dimage-1.0", "series": int(series), "frame": int(frame),
                "hash": digest}
        desc = {"htype": "dimage_d-1.0", "shape": [int(image.shape[1]), int(image.shape[0])],
                "type": type_name, "encoding": encoding, "size": nbytes}
        if self._t0 is None:
            self._t0 = time.time()
        start = round((float(timestamp) - self._t0) * 1e9) if timestamp is not None else 0
        exposure = round(float(meta.get("exposure_s") or 0) * 1e9)
        dconfig = {"htype": "dconfig-1.0", "start_time": start, "stop_time": start + exposure,
                   "real_time": exposure}
        parts = [json.dumps(head).encode(), json.dumps(desc).encode(), blob,
                 json.dumps(dconfig).encode()]
        if meta:
            parts.append(json.dumps(_plain(dict(meta))).encode())
        return parts

    def end(self, series: int, meta: dict[str, Any]) -> list:
        return [json.dumps({"htype": "dseries_end-1.0", "series": int(series)}).encode()]
