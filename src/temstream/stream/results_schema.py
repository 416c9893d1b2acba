"""The results feed's messages (schema ``temstream-results-1``, ``docs/results-feed.md``): the
schema and topic constants and a Qt-free parser of one message.

:class:`temstream.stream.results.ResultsPublisher` writes the messages; the dashboard's
:class:`temstream.gui.feed.FeedSubscriber` and ``examples/results_client.py`` read them.
A message is ``[b"frame", JSON summary, (label image int32)]`` per processed frame and
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


def _labels(msg: dict, parts: list) -> np.ndarray | None:
    spec = msg.get("labels")
    if not isinstance(spec, dict) or len(parts) < 2:
        return None
    shape = spec.get("shape")
    if not shape or len(shape) != 2:
        raise ValueError("label image without a 2-D shape")
    return np.frombuffer(parts[1], dtype=np.dtype(spec.get("dtype", "<i4"))).reshape(shape)


def parse_message(parts: list, columns: Iterable[str] | None = None) -> tuple[str, Any]:
    """One feed message -> ``("frame", (fields, meta))`` or ``("summary", dict)``.

    ``fields`` holds ``index``, ``series``, ``table`` (particle columns as arrays: ``particle``
    int64, the others float64 with NaN for null), ``labels`` (the label image or None),
    ``latency_ms`` (NaN when null) and, where the pipeline registers its frames, ``shift``
    (x, y px), ``jump`` and ``quality``; ``meta`` holds ``pixel_size_nm`` when the message has
    one.

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
    fields = dict(index=int(msg["frame"]), series=int(msg.get("series") or 0),
                  table=_table(msg.get("particles", {}), columns), labels=_labels(msg, parts[1:]),
                  latency_ms=float("nan") if latency is None else float(latency))
    reg = msg.get("registration")
    if isinstance(reg, dict):
        sx, sy = reg.get("shift_x"), reg.get("shift_y")
        fields.update(shift=(float("nan") if sx is None else float(sx),
                             float("nan") if sy is None else float(sy)),
                      jump=bool(reg.get("jump")), quality=str(reg.get("quality") or ""))
    meta = {"pixel_size_nm": msg["pixel_size_nm"]} if msg.get("pixel_size_nm") else {}
    return "frame", (fields, meta)
