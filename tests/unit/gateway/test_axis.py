"""The AXIS License Plate Verifier adapter: a push event with a plate is a read, as a JSON body or as a multipart
request with a JSON part and images; keepalives without a plate are ignored; and no message raises anything but
PayloadError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.axis import adapt, detect
from anpr_stream.gateway.model import Part, Payload, PayloadError, Position

SAMPLES = Path(__file__).parent / "payloads" / "axis"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"


def payload(name: str) -> Payload:
    return Payload(body=(SAMPLES / name).read_bytes())


def test_an_event_is_a_read() -> None:
    [read] = adapt(payload("event.json")).reads
    assert (read.plate, read.confidence, read.country, read.camera) == ("5AK4552", 0.8688, "CZ", "B8A44F000001")
    assert read.observed_at == datetime(2021, 6, 11, 13, 5, 38, 252000, tzinfo=UTC)
    assert (read.event_id, read.direction, read.vehicle) == ("77-1234", "in", "car")
    assert read.position == Position(lat=50.08804, lon=14.42076)
    assert read.details == {"plateISO3166-2": "CZ", "carState": "new", "carID": "77", "vehicle_view": "front",
                            "vehicle_brand": "Skoda", "vehicle_model": "Octavia", "vehicle_color": "white"}  # fmt: skip


def test_the_update_and_a_resend_are_the_same_read_and_plate_fields_are_preferred_in_order() -> None:
    event = orjson.loads((SAMPLES / "event.json").read_bytes())
    event["plateUnicode"] = "5AK 4552"
    [first] = adapt(Payload(body=orjson.dumps(event))).reads
    [again] = adapt(Payload(body=orjson.dumps(event))).reads
    assert first.plate == "5AK 4552" and first.event_id == again.event_id
    for key in ("plateUnicode", "plateText"):
        del event[key]
    event["plateUTF8"] = ""
    [read] = adapt(Payload(body=orjson.dumps(event))).reads
    assert read.plate == "5AK4552"


def test_times_fall_back_to_nanoseconds_then_the_local_datetime() -> None:
    event = orjson.loads((SAMPLES / "event.json").read_bytes())
    del event["capture_timestamp"]
    event["capture_ts"] = "1623416738252123456"
    [read] = adapt(Payload(body=orjson.dumps(event))).reads
    assert read.observed_at == datetime(2021, 6, 11, 13, 5, 38, 252123, tzinfo=UTC)
    del event["capture_ts"], event["camera_info"], event["packetCounter"]
    [read] = adapt(Payload(body=orjson.dumps(event))).reads
    assert read.observed_at == datetime(2021, 6, 11, 13, 5, 38, 252000)  # naive: local time
    assert (read.camera, read.event_id) == ("defaultID", None)


def test_a_multipart_event_with_images_is_a_read() -> None:
    parts = {
        "event": Part("event", (SAMPLES / "event.json").read_bytes(), "application/json"),
        "image": Part("image", JPEG, "image/jpeg", "overview.jpg"),
        "plateImage": Part("plateImage", JPEG, "image/jpeg", "plate.jpg"),
    }
    [read] = adapt(Payload(body=b"", content_type="multipart/form-data", parts=parts)).reads
    assert read.plate == "5AK4552"
    assert [(i.kind, i.media_type) for i in read.images] == [("overview", "image/jpeg"), ("plate", "image/jpeg")]
    assert detect(Payload(body=b"", content_type="multipart/form-data", parts=parts))


def test_a_keepalive_is_ignored() -> None:
    adapted = adapt(payload("keepalive.json"))
    assert not adapted.reads and adapted.ignored


def test_a_multipart_request_without_an_event_is_refused() -> None:
    parts = {"image": Part("image", JPEG, "image/jpeg")}
    with pytest.raises(PayloadError):
        adapt(Payload(body=b"", content_type="multipart/form-data", parts=parts))


def test_detection() -> None:
    assert detect(payload("event.json"))
    assert detect(payload("keepalive.json"))
    assert not detect(Payload(body=b'{"read_id": "x"}'))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
KEYS = ["packetCounter", "datetime", "capture_timestamp", "capture_ts", "sensorProviderID", "plateText",
        "plateUnicode", "plateUTF8", "plateASCII", "plateCountry", "plateConfidence", "carID", "carState",
        "carMoveDirection", "geotag", "vehicle_info", "camera_info", "plateRegion"]  # fmt: skip


def mutated(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.json"))))
    document = orjson.loads((SAMPLES / name).read_bytes())
    nested = [k for k in ("geotag", "vehicle_info", "camera_info") if isinstance(document.get(k), dict)]
    target: dict[str, Any] = document
    if len(nested) > 0 and draw(st.booleans()):
        target = document[draw(st.sampled_from(nested))]
    for key in draw(st.lists(st.sampled_from([*KEYS, "lat", "lon", "type", "SerialNumber"]), max_size=3)):
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSONISH)
    return orjson.dumps(document)


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=200), JSONISH.map(orjson.dumps), st.composite(mutated)()),
    image=st.one_of(st.none(), st.binary(max_size=20), st.just(JPEG)),
)
def test_no_message_raises_anything_but_a_payload_error(body: bytes, image: bytes | None) -> None:
    if image is None:
        message = Payload(body=body)
    else:
        parts = {"event": Part("event", body), "plate": Part("plate", image, "image/jpeg")}
        message = Payload(body=b"", content_type="multipart/form-data", parts=parts)
    detect(message)
    try:
        adapted = adapt(message)
    except PayloadError:
        return
    for read in adapted.reads:
        assert read.plate and isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1
