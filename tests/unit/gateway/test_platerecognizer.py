"""The Plate Recognizer adapter on the documented Stream and Snapshot payloads (payloads/platerecognizer/README.txt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters import platerecognizer
from anpr_stream.gateway.model import Adapted, Candidate, Part, Payload, PayloadError

PAYLOADS = Path(__file__).parent / "payloads" / "platerecognizer"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64) + b"\xff\xd9"
MULTIPART = "multipart/form-data"


def sample(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# file, [(plate, observed_at, confidence, camera, country, candidates, direction, vehicle)]
CASES: list[tuple[str, list[tuple[Any, ...]]]] = [
    (
        "stream_webhook.json",
        [
            ("9jub11", utc(2021, 9, 29, 5, 56, 13, 606935), 0.839, "camera-1", "GB",
             (Candidate("sju88y"), Candidate("sjubi")), None, "Big Truck"),
        ],
    ),
    (
        "stream_webhook_two_plates.json",
        [
            ("1abc234", utc(2026, 11, 30, 7, 41, 2, 250311), 0.902, "camera-2", "BE",
             (Candidate("1abc284", 0.758),), "210", "Sedan"),
            ("gxl12v", utc(2026, 11, 30, 7, 41, 2, 250311), 0.811, "camera-2", "NL",
             (Candidate("gx112v", 0.64), Candidate("gxli2v", 0.52)), "30", "SUV"),
        ],
    ),
    (
        "stream_webhook_vehicle_mode.json",
        [
            ("2xyz987", utc(2026, 11, 30, 7, 41, 5, 118000), 0.957, "camera-3", "BE",
             (Candidate("2xyz981", 0.612),), None, "Sedan"),
        ],
    ),
    (
        "snapshot_webhook.json",
        [
            # Snapshot's timestamp has no zone: naive, the source's time zone is applied later.
            ("fm046sc", datetime(2025, 9, 9, 23, 22, 38, 30345), 0.999, None, "FR",
             (Candidate("fmo46sc", 0.863),), None, "Sedan"),
        ],
    ),
    (
        "snapshot_response.json",
        [("nhk552", utc(2020, 10, 12, 16, 17, 27, 574008), 0.903, "gate-7", "GB", (), None, "Sedan")],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[case[0] for case in CASES])
def test_documented_samples(name: str, expected: list[tuple[Any, ...]]) -> None:
    payload = Payload(sample(name))
    assert platerecognizer.detect(payload)
    adapted = platerecognizer.adapt(payload)
    assert adapted.ignored is None
    found = [
        (r.plate, r.observed_at, r.confidence, r.camera, r.country, r.candidates, r.direction, r.vehicle)
        for r in adapted.reads
    ]
    assert found == expected
    for read in adapted.reads:
        assert read.event_id is None  # Plate Recognizer has no event id: camera, instant and plate identify a read
        assert read.images == ()
        assert read.position is None
    assert adapted.original == json.loads(sample(name))


def test_details_of_the_default_shape() -> None:
    first = platerecognizer.adapt(Payload(sample("stream_webhook_two_plates.json"))).reads[0]
    assert first.details == {
        "make": "Porsche", "model": "911", "color": "red", "orientation": "Rear", "region": "be", "dscore": 0.757,
        "position_sec": 23.47,
    }  # fmt: skip


def test_vehicle_mode_skips_vehicles_without_a_plate_and_reads_props() -> None:
    adapted = platerecognizer.adapt(Payload(sample("stream_webhook_vehicle_mode.json")))
    assert len(adapted.reads) == 1  # the motorcycle's plate is null
    assert adapted.reads[0].details == {
        "make": "Volkswagen", "model": "Golf", "color": "white", "orientation": "Front", "region": "be",
        "dscore": 0.903, "position_sec": 12.0,
    }  # fmt: skip


def test_multipart_webhook_with_image() -> None:
    body = sample("stream_webhook.json")
    payload = Payload(
        body=b"(multipart body, already split into parts)",
        content_type=MULTIPART,
        parts={
            "json": Part("json", body, "application/json"),
            "upload": Part("upload", JPEG, "image/jpeg", "05-56-13.606935.jpg"),
        },
    )
    assert platerecognizer.detect(payload)
    (read,) = platerecognizer.adapt(payload).reads
    assert (read.plate, read.observed_at, read.confidence, read.camera) == (
        "9jub11", utc(2021, 9, 29, 5, 56, 13, 606935), 0.839, "camera-1",
    )  # fmt: skip
    assert [(image.kind, image.media_type, image.data) for image in read.images] == [("overview", "image/jpeg", JPEG)]


def test_multipart_without_an_image_and_with_several_plates() -> None:
    payload = Payload(b"", MULTIPART, parts={"json": Part("json", sample("stream_webhook_two_plates.json"))})
    reads = platerecognizer.adapt(payload).reads
    assert [r.plate for r in reads] == ["1abc234", "gxl12v"] and all(r.images == () for r in reads)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (json.loads(sample("snapshot_no_plate.json")), "no results (no plate found)"),
        ({"hook": {"id": "camera-1", "event": "heartbeat"}, "data": {"camera_id": "camera-1"}}, "heartbeat"),
        ({"data": {"timestamp": "2021-09-29T05:56:13Z", "results": [{"plate": None}]}}, "no plate in the results"),
    ],
)
def test_messages_without_a_plate_are_ignored(document: Any, reason: str) -> None:
    adapted = platerecognizer.adapt(Payload(json.dumps(document).encode()))
    assert adapted.reads == () and adapted.ignored is not None and reason in adapted.ignored


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (Payload(b"not json"), "body"),
        (Payload(b"[1, 2]"), "body"),
        (Payload(b'{"hook": {"event": "recognition"}, "data": {}}'), "data.results"),
        (Payload(b'{"data": {"results": [{"plate": "ab12cd", "score": 0.9}]}}'), "data.timestamp"),
        (Payload(b'{"data": {"timestamp": "x", "results": [{"plate": "ab12cd"}]}}'), "data.timestamp"),
        (Payload(b'{"data": {"timestamp": "2021-09-29T05:56:13Z", "results": [{"plate": "a", "score": 7}]}}'), "score"),
        (Payload(b"", MULTIPART, parts={"upload": Part("upload", JPEG)}), "json part"),
        (Payload(b"", MULTIPART, parts={"json": Part("json", b"{")}), "json part"),
        (Payload(b"", MULTIPART, parts={"json": Part("json", sample("stream_webhook.json")),
                                         "upload": Part("upload", b"GIF")}), "upload"),
    ],
)  # fmt: skip
def test_unreadable_payloads_name_the_field(payload: Payload, field: str) -> None:
    with pytest.raises(PayloadError, match=field.replace(".", r"\.")):
        platerecognizer.adapt(payload)


def test_detection_tells_other_formats_apart() -> None:
    assert not platerecognizer.detect(Payload(b'{"read_id": "r1", "observed_at": "2026-01-01T00:00:00Z"}'))
    assert not platerecognizer.detect(Payload(b'{"PlateRead": "AA7D2", "PlateAnalytics": []}'))
    assert not platerecognizer.detect(Payload(b"<Plate/>", "application/xml"))
    assert platerecognizer.detect(Payload(sample("snapshot_no_plate.json")))  # answered 200, else the hook is removed
    assert platerecognizer.FORMAT in platerecognizer.ADAPTERS and platerecognizer.FORMAT in platerecognizer.DETECTORS


# --- property: nothing but PayloadError, and every read is a read ---------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
SAMPLES = [json.loads(path.read_bytes()) for path in sorted(PAYLOADS.glob("*.json"))]


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """A sample with keys dropped and values replaced, at any depth (rarely each, so that some reads survive)."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            choice = draw(st.integers(0, 24))
            if choice == 0:
                continue  # dropped
            out[key] = draw(JSON_VALUES) if choice == 1 else draw(mutated(value))
        return out
    if isinstance(document, list):
        return [draw(mutated(item)) for item in document if draw(st.integers(0, 24))]
    return draw(JSON_VALUES) if draw(st.integers(0, 24)) == 0 else document


def encoded(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and big integers too: the adapter must refuse them cleanly


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(encoded),
    st.sampled_from(SAMPLES).flatmap(mutated).map(encoded),
    st.sampled_from(SAMPLES).flatmap(mutated).map(encoded),
)
PARTS = st.dictionaries(
    st.sampled_from(["json", "upload", "image", ""]),
    st.builds(Part, name=st.text(max_size=8), data=BODIES | st.binary(max_size=64), content_type=st.text(max_size=20)),
    max_size=3,
)
SAMPLE_PARTS = st.fixed_dictionaries(
    {"json": st.builds(Part, name=st.just("json"), data=BODIES)},
    optional={"upload": st.builds(Part, name=st.just("upload"), data=st.just(JPEG) | st.binary(max_size=16))},
)
PAYLOADS_ANY = st.one_of(
    st.builds(Payload, body=BODIES, content_type=st.sampled_from(["application/json", "text/plain"])),
    st.builds(Payload, body=st.binary(max_size=32), content_type=st.just(MULTIPART), parts=PARTS),
    st.builds(Payload, body=st.just(b""), content_type=st.just(MULTIPART), parts=SAMPLE_PARTS),
)


def assert_reads_are_reads(adapted: Adapted) -> None:
    assert isinstance(adapted, Adapted)
    assert adapted.reads or adapted.ignored
    for read in adapted.reads:
        assert isinstance(read.plate, str) and read.plate.strip()
        assert isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1
        assert all(c.plate and (c.confidence is None or 0 <= c.confidence <= 1) for c in read.candidates)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(PAYLOADS_ANY)
def test_any_payload_is_read_or_refused_with_a_payload_error(payload: Payload) -> None:
    assert isinstance(platerecognizer.detect(payload), bool)
    try:
        adapted = platerecognizer.adapt(payload)
    except PayloadError as exc:
        assert str(exc)
        return
    assert_reads_are_reads(adapted)
