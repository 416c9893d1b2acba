"""The results feed's messages (schema ``temstream-results-1``, ``docs/results-feed.md``): the
schema and topic constants and a Qt-free parser of one message.

:class:`temstream.stream.results.ResultsPublisher` writes the messages; the dashboard's
:class:`temstream.gui.feed.FeedSubscriber` and ``examples/results_client.py`` read them.
A message is ``[b"frame", JSON summary, (label image int32), (binned frame)]`` per processed
frame (each optional part announced in the JSON: ``labels``, ``image``) and
``[b"summary", JSON]`` after the run.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import numpy as np

SCHEMA = "temstream-results-1"
TOPIC_FRAME = b"frame"
TOPIC_SUMMARY = b"summary"


def _table(columns: Any, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    if not isinstance(columns, dict):
        raise ValueError("'particles' is not a dict of columns")
    out = {}
    for k in (columns if names is None else names):
        if columns.get(k) is not None:
            dtype = np.int64 if k == "particle" else np.float64
            out[k] = np.asarray([np.nan if v is None else v for v in columns[k]], dtype=dtype)
    return out


def _array(spec: dict, part, what: str) -> np.ndarray:
    shape = spec.get("shape")
    if not shape or len(shape) != 2:
        raise ValueError(f"{what} without a 2-D shape")
    dtype = np.dtype(spec.get("dtype", "<i4"))
    if dtype.kind not in "uif" or dtype.itemsize > 8:
        raise ValueError(f"{what}: unsupported dtype {dtype}")
    return np.frombuffer(part, dtype=dtype).reshape(shape)


def _arrays(msg: dict, parts: list) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """The label image and the binned frame that follow the JSON part (each when announced),
    and the frame's binning factor."""
    rest = list(parts[1:])
    labels = image = None
    binning = 1
    if isinstance(msg.get("labels"), dict) and rest:
        labels = _array(msg["labels"], rest.pop(0), "label image")
    spec = msg.get("image")
    if isinstance(spec, dict) and rest:
        image = _array(spec, rest.pop(0), "frame")
        binning = int(spec.get("binning") or 1)
        if not 1 <= binning <= 64:
            raise ValueError(f"frame binning {binning} out of range")
    return labels, image, binning


def upsample(image: np.ndarray, binning: int, shape=None) -> np.ndarray:
    """A binned frame back on the full frame's pixel grid (each value repeated ``binning``
    times along y and x, padded by the edge to ``shape``)."""
    if binning > 1:
        image = np.repeat(np.repeat(image, binning, axis=0), binning, axis=1)
    if shape is not None and tuple(image.shape) != tuple(shape):
        h, w = shape
        image = np.pad(image[:h, :w], ((0, max(0, h - image.shape[0])),
                                       (0, max(0, w - image.shape[1]))), mode="edge")
    return image


def parse_message(parts: list, columns: Iterable[str] | None = None) -> tuple[str, Any]:
    """One feed message -> ``("frame", (fields, meta))`` or ``("summary", dict)``.

    ``fields`` holds ``index``, ``series``, ``table`` (particle columns as arrays: ``particle``
    int64, the others float64 with NaN for null), ``labels`` (the label image or None),
    ``image`` (the frame, when the message carries one, upsampled back to the frame's pixel grid;
    else None), ``latency_ms`` (NaN when null) and, where the pipeline registers its frames,
    ``shift`` (x, y px), ``jump`` and ``quality``; ``meta`` holds ``pixel_size_nm`` when the
    message has one and ``frame_shape`` (H, W) when it says.

    Parameters
    ----------
    parts : list of bytes-like
        The multipart message: topic, JSON, optional label image.
    columns : iterable of str, optional
        The particle columns to read (default: all the message has).

    Raises
    ------
    ValueError
        Unknown topic or schema, bad JSON, missing fields.
    """
    if len(parts) < 2:
        raise ValueError("expected [topic, JSON, ...]")
    topic = bytes(parts[0])
    msg = json.loads(bytes(parts[1]))
    if not isinstance(msg, dict) or msg.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} message")
    if topic == TOPIC_SUMMARY:
        return "summary", dict(msg.get("summary") or {})
    if topic != TOPIC_FRAME:
        raise ValueError(f"unknown topic {topic[:20]!r}")
    latency = msg.get("latency_ms")
    labels, image, binning = _arrays(msg, parts[1:])
    said = msg.get("shape")
    said = tuple(int(v) for v in said) if isinstance(said, list) and len(said) == 2 else None
    shape = said or (labels.shape if labels is not None else None)
    fields = dict(index=int(msg["frame"]), series=int(msg.get("series") or 0),
                  table=_table(msg.get("particles", {}), columns), labels=labels,
                  image=None if image is None else upsample(image, binning, shape),
                  latency_ms=float("nan") if latency is None else float(latency))
    reg = msg.get("registration")
    if isinstance(reg, dict):
        sx, sy = reg.get("shift_x"), reg.get("shift_y")
        fields.update(shift=(float("nan") if sx is None else float(sx),
                             float("nan") if sy is None else float(sy)),
                      jump=bool(reg.get("jump")), quality=str(reg.get("quality") or ""))
    meta = {"pixel_size_nm": msg["pixel_size_nm"]} if msg.get("pixel_size_nm") else {}
    if said is not None:
        meta["frame_shape"] = said
    return "frame", (fields, meta)
