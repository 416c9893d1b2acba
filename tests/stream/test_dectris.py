"""DECTRIS Stream V1/V2: messages built from the published spec, round trips over real sockets,
and fuzzing (random and mutated messages never crash, hang or allocate absurd memory)."""

import datetime as dt
import hashlib
import json
import struct
import time
import tracemalloc

import bitshuffle
import cbor2
import lz4.block
import numpy as np
import pytest
import zmq

from temstream.stream.dectris import V1Decoder, V1Encoder, V2Decoder, V2Encoder
from temstream.stream.events import Frame, MalformedMessage, PendingFrame, SeriesEnd, SeriesStart
from temstream.stream.publish import FramePublisher
from temstream.stream.sources import ZmqSource

from testkit import receive_all

MAGIC = b"\xd9\xd9\xf7"


# -- messages written straight from the spec (reference a.3-a.5), not with our encoders ------
def spec_bslz4(arr, elem_size=None):
    flat = np.ascontiguousarray(arr).reshape(-1)
    e = elem_size or flat.itemsize
    if e != flat.itemsize:
        flat = flat.view(f"u{e}")
    return struct.pack(">QI", flat.nbytes, 8192) + bitshuffle.compress_lz4(flat, 8192 // e).tobytes()


def spec_lz4_hdf5(raw, block=4096):
    out = [struct.pack(">QI", len(raw), block)]
    for i in range(0, len(raw), block):
        c = lz4.block.compress(raw[i:i + block], store_size=False)
        out += [struct.pack(">I", len(c)), c]
    return b"".join(out)


def v2(obj):
    return MAGIC + cbor2.dumps(obj, datetime_as_timestamp=False)


def v2_start(series=7, channels=("threshold_1", "threshold_2", "difference")):
    return v2({"type": "start", "series_id": series, "series_unique_id": "abc",
               "arm_date": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
               "channels": list(channels), "count_time": 0.019, "frame_time": 0.02,
               "image_dtype": "uint16", "image_size_x": 100, "image_size_y": 64,
               "pixel_size_x": 75e-6, "pixel_size_y": 75e-6, "incident_energy": 300e3,
               "pixel_mask": {"threshold_1": cbor2.CBORTag(40, [[64, 100], cbor2.CBORTag(
                   70, bytes(64 * 100 * 4))])}, "user_data": [1, "\N{BLUE HEART}"]})


def v2_image(arrays, series=7, image_id=3, tag=69, compression="bslz4"):
    data = {}
    for name, a in arrays.items():
        raw = a.tobytes()
        if compression == "bslz4":
            payload = cbor2.CBORTag(56500, ["bslz4", a.itemsize, spec_bslz4(a)])
        elif compression == "lz4":
            payload = cbor2.CBORTag(56500, ["lz4", 0, spec_lz4_hdf5(raw)])
        else:
            payload = raw
        data[name] = cbor2.CBORTag(40, [list(a.shape), cbor2.CBORTag(tag, payload)])
    return v2({"type": "image", "series_id": series, "series_unique_id": "abc",
               "image_id": image_id, "real_time": [999995, 50000000],
               "series_date": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
               "start_time": [1000000, 50000000], "stop_time": [1999995, 50000000],
               "data": data, "user_data": None})


def resolve(event):
    return event.resolve() if isinstance(event, PendingFrame) else event


def counts(shape=(64, 100), dtype=np.uint16, seed=0):
    return np.random.default_rng(seed).poisson(1.5, shape).astype(dtype)


def test_v2_start_message_from_spec():
    ev = V2Decoder()([v2_start()])
    assert isinstance(ev, SeriesStart) and ev.series == 7
    m = ev.meta
    assert m["pixel_size_nm"] == pytest.approx(75e3) and m["frame_time_s"] == 0.02
    assert m["exposure_s"] == 0.019 and (m["width"], m["height"]) == (100, 64)
    assert m["channels"] == ["threshold_1", "threshold_2", "difference"]
    assert m["arm_date"].startswith("2024-01-02T03:04:05")
    assert "pixel_mask" not in m  # arrays are not copied into the metadata


@pytest.mark.parametrize("compression", ["bslz4", "lz4", "none"])
@pytest.mark.parametrize("dtype,tag", [(np.uint16, 69), (np.uint32, 70), (np.uint8, 64),
                                       (np.float32, 85), (np.dtype(">u2"), 65)])
def test_v2_image_from_spec(compression, dtype, tag):
    dec = V2Decoder()
    dec([v2_start()])
    t1, t2 = counts(dtype=dtype, seed=1), counts(dtype=dtype, seed=2)
    ev = resolve(dec([v2_image({"threshold_1": t1, "threshold_2": t2}, tag=tag,
                               compression=compression)]))
    assert isinstance(ev, Frame) and (ev.series, ev.index) == (7, 3)
    assert ev.image.shape == (64, 100) and ev.image.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(ev.image, t1)  # the first channel the start message lists
    assert ev.meta["channels"] == ["threshold_1", "threshold_2"]
    assert ev.meta["start_time_s"] == pytest.approx(0.02)
    assert ev.meta["real_time_s"] == pytest.approx(0.0199999)
    start = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp()
    assert ev.timestamp == pytest.approx(start + 0.02)


def test_v2_channel_choice():
    dec = V2Decoder(channel="difference")
    dec([v2_start()])
    a, b = counts(seed=1), counts(seed=2)
    ev = resolve(dec([v2_image({"threshold_1": a, "difference": b})]))
    np.testing.assert_array_equal(ev.image, b)
    assert ev.meta["channel"] == "difference"


def test_v2_encoder_matches_the_real_capture_bytes():
    """Reference a.5: a 514 x 1030 uint16 bslz4 channel starts with these bytes."""
    img = counts((514, 1030))
    (msg,) = V2Encoder("bslz4").frame(img, 1, 0, None, {})
    prefix = bytes.fromhex("d8 28 82 82 19 02 02 19 04 06 d8 45 d9 dc b4 83 65") + b"bslz4"
    i = msg.index(prefix)
    after = msg[i + len(prefix):]
    assert after[:2] == b"\x02\x5a"  # modifier 2, then a byte string with a u32 length
    assert after[6:18] == bytes.fromhex("00 00 00 00 00 10 28 18 00 00 20 00")
    assert msg[:3] == MAGIC and cbor2.loads(msg[3:])["type"] == "image"
    np.testing.assert_array_equal(resolve(V2Decoder()([msg])).image, img)


def test_v2_end_and_unknown_type():
    dec = V2Decoder()
    ev = dec([v2({"type": "end", "series_id": 7, "series_unique_id": "abc"})])
    assert isinstance(ev, SeriesEnd) and ev.series == 7
    with pytest.raises(MalformedMessage) as e:
        dec([v2({"type": "calibration", "series_id": 7})])
    assert e.value.kind == "unknown-type"


@pytest.mark.parametrize("msg,kind", [
    (cbor2.dumps({"type": "end", "series_id": 1}), "bad-magic"),
    (MAGIC + b"\xff\x00", "bad-cbor"),
    (v2({"series_id": 1, "type": "end"}), "bad-cbor"),  # 'type' must be the first key
    (v2({"type": "image", "series_id": 1, "image_id": 0, "data": {"t": cbor2.CBORTag(40, [
        [100000, 100000], cbor2.CBORTag(69, b"")])}}), "bad-shape"),
    (v2({"type": "image", "series_id": 1, "image_id": 0, "data": {"t": cbor2.CBORTag(40, [
        [4, 4], cbor2.CBORTag(69, cbor2.CBORTag(56500, ["bslz4", 2, struct.pack(
            ">QI", 1 << 40, 8192) + b"\0" * 20]))])}}), "size-mismatch"),
    (v2({"type": "image", "series_id": 1, "image_id": 0, "data": {"t": cbor2.CBORTag(40, [
        [4, 4], cbor2.CBORTag(69, cbor2.CBORTag(56500, ["zstd", 0, b"\0" * 20]))])}}),
     "bad-compression"),
    (v2({"type": "image", "series_id": 1, "image_id": 0, "data": {"t": cbor2.CBORTag(40, [
        [4, 4], cbor2.CBORTag(69, b"\0" * 31)])}}), "size-mismatch"),
    (v2({"type": "image", "series_id": -1, "image_id": 0, "data": {}}), "bad-field"),
])
def test_v2_malformed_kinds(msg, kind):
    with pytest.raises(MalformedMessage) as e:
        resolve(V2Decoder()([msg]))
    assert e.value.kind == kind


def test_v2_corrupt_compressed_blob_is_caught_at_decompression():
    a = counts()
    blob = bytearray(spec_bslz4(a))
    blob[20:60] = b"\xff" * 40
    msg = v2({"type": "image", "series_id": 1, "image_id": 0, "data": {"t": cbor2.CBORTag(
        40, [[64, 100], cbor2.CBORTag(69, cbor2.CBORTag(56500, ["bslz4", 2, bytes(blob)]))])}})
    pending = V2Decoder()([msg])
    assert isinstance(pending, PendingFrame)
    with pytest.raises(MalformedMessage) as e:
        pending.resolve()
    assert e.value.kind in ("bad-compression", "size-mismatch")


def test_frame_with_corrupt_pixels_is_accounted_as_decode_error_not_gap(zmq_context, tmp_path):
    from temstream.models.classical import ClassicalSegmenter
    from temstream.pipeline.runner import Runner
    from temstream.pipeline.stages import Instances, Link
    from temstream.record import RecorderSink, read_frames_info

    push = zmq_context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    src = ZmqSource(f"tcp://127.0.0.1:{port}", protocol="dectris-v2", context=zmq_context,
                    decode_threads=1)
    push.send(v2_start())
    for k in range(5):
        msg = v2_image({"threshold_1": counts(seed=k)}, image_id=k)
        if k == 2:
            blob = spec_bslz4(counts(seed=k))
            i = msg.index(blob)
            msg = msg[:i + 20] + b"\xff" * 40 + msg[i + 60:]
        push.send(msg)
    push.send(v2({"type": "end", "series_id": 7}))
    out = tmp_path / "v2.h5"
    runner = Runner(src, preprocess=lambda im: im, segment=ClassicalSegmenter(),
                    instances=Instances(), link=Link(), sinks=[RecorderSink(out)],
                    flow="lossless")
    summary = runner.run()
    src.close()
    assert summary.received == 5 and summary.processed == 4
    assert summary.dropped == {"decode-error": 1}
    info = read_frames_info(out).set_index("frame")
    assert list(info.index) == [0, 1, 2, 3, 4]
    assert info.loc[2, "reason"] == "decode-error" and (info.drop(2)["status"] == "processed").all()


# -- Stream V1 -------------------------------------------------------------------------------
def v1_header(series=3, detail="basic"):
    parts = [json.dumps({"htype": "dheader-1.0", "series": series,
                         "header_detail": detail}).encode()]
    if detail != "none":
        parts.append(json.dumps({"x_pixels_in_detector": 100, "y_pixels_in_detector": 64,
                                 "bit_depth_image": 16, "frame_time": 0.01, "count_time": 0.009,
                                 "x_pixel_size": 5.5e-5, "nimages": 10,
                                 "data_collection_date": "2024-01-02T03:04:05.000+00:00",
                                 "description": "Dectris EIGER2 Si 500K"}).encode())
    if detail == "all":
        for name, typ in (("dflatfield", "float32"), ("dpixelmask", "uint32"),
                          ("dcountrate_table", "float32")):
            parts += [json.dumps({"htype": f"{name}-1.0", "shape": [100, 64],
                                  "type": typ}).encode(), bytes(100 * 64 * 4)]
    return parts


def v1_image(a, encoding, series=3, frame=0, type_name=None):
    raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
    if encoding.startswith("bs"):
        bits = int(encoding[2:encoding.index("-")])
        blob = spec_bslz4(a.astype(a.dtype.newbyteorder("<")), bits // 8)
    elif encoding.startswith("lz4"):
        blob = lz4.block.compress(raw, store_size=False)
    else:
        blob = raw
    return [json.dumps({"htype": "dimage-1.0", "series": series, "frame": frame,
                        "hash": hashlib.md5(blob).hexdigest()}).encode(),
            json.dumps({"htype": "dimage_d-1.0", "shape": [a.shape[1], a.shape[0]],
                        "type": type_name or f"uint{8 * a.itemsize}", "encoding": encoding,
                        "size": len(blob)}).encode(),
            blob,
            json.dumps({"htype": "dconfig-1.0", "start_time": 20_000_000,
                        "stop_time": 29_000_000, "real_time": 9_000_000}).encode()]


@pytest.mark.parametrize("detail", ["none", "basic", "all"])
def test_v1_header_detail_levels(detail):
    ev = V1Decoder()(v1_header(detail=detail))
    assert isinstance(ev, SeriesStart) and ev.series == 3
    if detail != "none":
        assert ev.meta["pixel_size_nm"] == pytest.approx(55e3)
        assert ev.meta["frame_time_s"] == 0.01 and ev.meta["width"] == 100


@pytest.mark.parametrize("encoding,dtype", [("<", np.uint16), ("lz4<", np.uint16),
                                            ("bs16-lz4<", np.uint16), ("bs32-lz4<", np.uint32),
                                            ("bs8-lz4<", np.uint8), ("bs8-lz4<", np.uint16),
                                            ("bs16-lz4<", np.uint32)])
def test_v1_image_encodings(encoding, dtype):
    dec = V1Decoder()
    dec(v1_header())
    a = counts(dtype=dtype)  # 64 rows x 100 columns: the wire shape is [100, 64]
    ev = resolve(dec(v1_image(a, encoding, frame=5)))
    assert isinstance(ev, Frame) and (ev.series, ev.index) == (3, 5)
    assert ev.image.shape == (64, 100)
    np.testing.assert_array_equal(ev.image, a)
    assert ev.meta["start_time_s"] == pytest.approx(0.02)
    t0 = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc).timestamp()
    assert ev.timestamp == pytest.approx(t0 + 0.02)
    assert ev.meta["pixel_size_nm"] == pytest.approx(55e3)


def test_v1_end_and_malformed_kinds():
    dec = V1Decoder()
    assert isinstance(dec([b'{"htype": "dseries_end-1.0", "series": 3}']), SeriesEnd)
    a = counts()
    good = v1_image(a, "bs16-lz4<")
    cases = {
        "bad-json": [b"\x00\x01garbage"],
        "unknown-htype": [b'{"htype": "dflatfield-1.0"}'],
        "missing-part": good[:3],
        "size-mismatch": good[:2] + [good[2][:-1]] + good[3:],
        "bad-encoding": [good[0], good[1].replace(b"bs16-lz4<", b"bs16-zstd<")] + good[2:],
        "bad-dtype": [good[0], good[1].replace(b"uint16", b"complex64")] + good[2:],
        "bad-shape": [good[0], good[1].replace(b"[100, 64]", b"[100000, 64]")] + good[2:],
    }
    for kind, parts in cases.items():
        with pytest.raises(MalformedMessage) as e:
            resolve(dec(parts))
        assert e.value.kind == kind, kind


# -- round trips over real sockets -------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["dectris-v2", "dectris-v1"])
@pytest.mark.parametrize("threads", [0, 2])
def test_round_trip_over_push_pull(protocol, threads, zmq_context):
    frames = [counts((48, 80), np.uint16, seed=i) for i in range(6)]
    pub = FramePublisher("tcp://127.0.0.1:0", protocol=protocol, context=zmq_context)
    src = ZmqSource(pub.endpoint, protocol=protocol, context=zmq_context, decode_threads=threads)
    t0 = time.time()
    series = pub.start_series({"pixel_size_nm": 0.8, "frame_time_s": 0.04, "shape": [48, 80],
                               "dtype": "<u2", "scenario": "x"})
    for i, f in enumerate(frames):
        pub.send(f, frame=i, timestamp=t0 + 0.04 * i, pixel_size_nm=0.8, exposure_s=0.03)
    pub.end_series()
    events = receive_all(src, 8)
    assert [type(e).__name__ for e in events] == ["SeriesStart"] + ["Frame"] * 6 + ["SeriesEnd"]
    assert events[0].series == series and events[0].meta["scenario"] == "x"
    assert events[0].meta["pixel_size_nm"] == pytest.approx(0.8)
    for i, ev in enumerate(events[1:7]):
        assert ev.index == i and ev.series == series
        np.testing.assert_array_equal(ev.image, frames[i])
        assert ev.timestamp == pytest.approx(t0 + 0.04 * i, abs=2e-6)
        assert ev.meta["pixel_size_nm"] == 0.8 and ev.meta["exposure_s"] == 0.03
    src.close(), pub.close()


def test_frames_without_a_series_start_get_a_synthetic_one(zmq_context):
    pub = FramePublisher("tcp://127.0.0.1:0", protocol="dectris-v2", context=zmq_context)
    src = ZmqSource(pub.endpoint, protocol="dectris-v2", context=zmq_context)
    pub.series = 42  # as if we connected after the start message went by
    pub.send(counts((8, 8)), frame=17)
    ev = receive_all(src, 2)
    assert isinstance(ev[0], SeriesStart) and ev[0].series == 42 and ev[0].meta["synthetic"]
    assert isinstance(ev[1], Frame) and ev[1].index == 17
    assert src.stats["series-without-start"] == 1
    src.close(), pub.close()


# -- fuzzing -----------------------------------------------------------------------------------
def corpus():
    a = counts((24, 40))
    a32 = counts((24, 40), np.uint32)
    v2msgs = [v2_start(), v2_image({"threshold_1": a}), v2_image({"t": a}, compression="lz4"),
              v2_image({"t": a32}, tag=70, compression="none"),
              v2({"type": "end", "series_id": 7})]
    v1msgs = [v1_header(detail="all"), v1_image(a, "bs16-lz4<"), v1_image(a, "lz4<"),
              v1_image(a32, "bs32-lz4<"), v1_image(a, "<"), [b'{"htype":"dseries_end-1.0",'
                                                             b'"series":3}']]
    return v2msgs, v1msgs


BIG = [b"\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\x1a\xff\xff\xff\xff",
       b"\x5b\x00\x00\x01\x00\x00\x00\x00\x00", b"\x9b\xff" * 5]


def mutate(rng, data: bytes) -> bytes:
    b = bytearray(data)
    op = rng.integers(6)
    if op == 0 and len(b) > 1:  # truncate
        return bytes(b[:rng.integers(len(b))])
    if op == 1:  # flip bytes
        for i in rng.integers(0, len(b), size=rng.integers(1, 8)):
            b[i] = rng.integers(256)
        return bytes(b)
    if op == 2:  # insert junk
        i = rng.integers(len(b) + 1)
        return bytes(b[:i] + rng.bytes(rng.integers(1, 32)) + b[i:])
    if op == 3:  # big integers where small ones were (lengths, dims, sizes)
        for i in rng.integers(0, len(b), size=3):
            b[i:i + 1] = BIG[rng.integers(len(BIG))]
        return bytes(b)
    if op == 4:  # compression header with an absurd size
        i = data.find(b"bslz4")
        if i >= 0 and len(b) > i + 20:
            b[i + 11:i + 19] = rng.bytes(8)
        return bytes(b)
    return rng.bytes(rng.integers(0, 200))  # random garbage


def fuzz_messages(n, seed=0):
    rng = np.random.default_rng(seed)
    v2msgs, v1msgs = corpus()
    for _ in range(n):
        if rng.random() < 0.5:
            yield "dectris-v2", [mutate(rng, v2msgs[rng.integers(len(v2msgs))])]
        else:
            parts = list(v1msgs[rng.integers(len(v1msgs))])
            k = rng.integers(len(parts))
            parts[k] = mutate(rng, parts[k])
            if rng.random() < 0.1:
                parts = parts[:rng.integers(len(parts) + 1)] or [b""]
            yield "dectris-v1", parts


def test_fuzz_decoders_directly_never_crash_or_allocate_much():
    decoders = {"dectris-v2": V2Decoder(), "dectris-v1": V1Decoder()}
    kinds = {}
    tracemalloc.start()
    try:
        for protocol, parts in fuzz_messages(20000, seed=1):
            try:
                ev = resolve(decoders[protocol](parts))
            except MalformedMessage as exc:
                kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
                continue
            if isinstance(ev, Frame):
                assert ev.image.size <= 24 * 40 * 4 * 4  # never larger than the bytes sent allow
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"fuzzing peaked at {peak / 2**20:.0f} MiB"
    assert sum(kinds.values()) > 10000
    for kind in ("bad-magic", "bad-cbor", "bad-json", "size-mismatch", "bad-compression"):
        assert kinds.get(kind), f"no {kind} among {kinds}"


@pytest.mark.parametrize("protocol", ["dectris-v2", "dectris-v1"])
def test_fuzz_over_a_socket_every_message_is_accounted(protocol, zmq_context):
    push = zmq_context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    src = ZmqSource(f"tcp://127.0.0.1:{port}", protocol=protocol, context=zmq_context,
                    rcvhwm=10000, decode_threads=1)
    msgs = [parts for p, parts in fuzz_messages(6000, seed=2) if p == protocol][:2000]
    enc = V2Encoder() if protocol == "dectris-v2" else V1Encoder()
    sentinel = enc.frame(np.full((8, 8), 12345, np.uint16), 999, 31337, None, {})
    received, last = 0, None
    for parts in msgs + [sentinel]:
        push.send_multipart(parts)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ev = src.receive(timeout_ms=100)
        if ev is None:
            continue
        received += 1
        if isinstance(ev, Frame) and ev.index == 31337:
            last = ev
            break
    assert last is not None and last.image[0, 0] == 12345  # the receiver is still alive
    assert src.stats["messages"] == len(msgs) + 1
    assert src.stats["decoded"] + sum(src.malformed.values()) == src.stats["messages"]
    assert sum(src.malformed.values()) > len(msgs) // 2
    src.close()
