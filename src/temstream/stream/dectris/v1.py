"""DECTRIS Stream V1 ("legacy", multipart JSON): :class:`V1Decoder` and :class:`V1Encoder`."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import time
from typing import Any

import numpy as np

from temstream.stream.dectris._common import _check_shape, _frame, _iso, _pixels, _plain, _uint
from temstream.stream.dectris.compression import Compressed, compress_bslz4
from temstream.stream.events import MalformedMessage, SeriesEnd, SeriesStart

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
