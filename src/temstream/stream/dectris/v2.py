"""DECTRIS Stream V2 (CBOR): :class:`V2Decoder` and :class:`V2Encoder`."""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

import numpy as np

from temstream.stream.dectris._common import (_check_shape, _frame, _iso, _MultiDim, _pixels,
                                              _plain, _Typed, _uint)
from temstream.stream.dectris.compression import Compressed, compress_bslz4, compress_lz4_hdf5
from temstream.stream.events import MalformedMessage, SeriesEnd, SeriesStart
from temstream.stream.limits import MAX_DEPTH

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
        def number(key):  # only what is a number goes into the standard fields
            v = meta.get(key)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            return float(v) if ok and np.isfinite(v) else None

        if number("pixel_size_nm"):
            msg["pixel_size_x"] = msg["pixel_size_y"] = number("pixel_size_nm") * 1e-9
        if number("frame_time_s"):
            msg["frame_time"] = number("frame_time_s")
        if number("exposure_s"):
            msg["count_time"] = number("exposure_s")
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
            if isinstance(exposure, (int, float)) and exposure > 0 and np.isfinite(exposure):
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
