"""The results feed's parser beside its publisher (Qt-free, no dashboard types)."""

import json

import numpy as np
import pytest

from temstream.stream.results_schema import SCHEMA, TOPIC_FRAME, TOPIC_SUMMARY, parse_message


def test_parse_message_reads_every_column_or_the_ones_asked_for():
    msg = {"schema": SCHEMA, "series": 2, "frame": 4, "latency_ms": None,
           "particles": {"x": [1.0, None], "particle": [7, 8], "label": [1, 2]}}
    kind, (fields, meta) = parse_message([TOPIC_FRAME, json.dumps(msg).encode()])
    assert kind == "frame" and meta == {} and fields["labels"] is None
    assert fields["index"] == 4 and fields["series"] == 2 and np.isnan(fields["latency_ms"])
    assert sorted(fields["table"]) == ["label", "particle", "x"]
    assert fields["table"]["particle"].dtype == np.int64 and np.isnan(fields["table"]["x"][1])
    _, (fields, _) = parse_message([TOPIC_FRAME, json.dumps(msg).encode()], ["x", "y"])
    assert sorted(fields["table"]) == ["x"]
    summary = {"schema": SCHEMA, "summary": {"processed": 3}}
    assert parse_message([TOPIC_SUMMARY, json.dumps(summary).encode()]) == \
        ("summary", {"processed": 3})
    with pytest.raises(ValueError):
        parse_message([TOPIC_FRAME, json.dumps({**msg, "schema": "temstream-results-2"}).encode()])


def test_registration_travels_with_the_frame_to_the_dashboard():
    from temstream.gui.bridge import DisplayFrame

    msg = {"schema": SCHEMA, "series": 1, "frame": 9, "particles": {"x": [1.0]},
           "registration": {"shift_x": 12.5, "shift_y": None, "jump": True, "quality": "blurred"}}
    _, (fields, _) = parse_message([TOPIC_FRAME, json.dumps(msg).encode()])
    assert fields["shift"][0] == 12.5 and np.isnan(fields["shift"][1])
    assert fields["jump"] is True and fields["quality"] == "blurred"
    frame = DisplayFrame(**fields)  # what the feed subscriber makes of it
    assert frame.quality == "blurred" and frame.jump
    del msg["registration"]
    _, (fields, _) = parse_message([TOPIC_FRAME, json.dumps(msg).encode()])
    assert "shift" not in fields and DisplayFrame(**fields).shift is None
