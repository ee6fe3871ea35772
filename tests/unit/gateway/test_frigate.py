"""The Frigate adapter: lpr updates and events with a recognised plate are reads (one per tracked object), other
updates and events without a plate are ignored, and no message of any shape raises anything but PayloadError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.frigate import adapt, detect
from anpr_stream.gateway.model import Payload, PayloadError

SAMPLES = Path(__file__).parent / "payloads" / "frigate"


def payload(name: str, topic: str) -> Payload:
    return Payload(body=(SAMPLES / name).read_bytes(), topic=topic)


def test_an_lpr_update_is_a_read() -> None:
    [read] = adapt(payload("tracked_object_update_lpr.json", "frigate/tracked_object_update")).reads
    assert (read.plate, read.confidence, read.camera) == ("1-ABC-123", 0.923, "driveway_n2")
    assert read.observed_at == datetime(2024, 12, 2, 9, 5, 6, 500000, tzinfo=UTC)
    assert read.event_id == "1733130305.123456-abc1de"


def test_an_event_with_a_recognised_plate_is_a_read_and_its_updates_the_same_read() -> None:
    [read] = adapt(payload("events_update.json", "site1/events")).reads  # a prefix other than frigate/
    assert (read.plate, read.confidence, read.camera, read.vehicle) == ("46HVR9", 0.88, "border_n78", "car")
    assert read.observed_at == datetime(2024, 12, 2, 9, 6, 41, 750000, tzinfo=UTC)
    end = orjson.loads((SAMPLES / "events_update.json").read_bytes())
    end["type"] = "end"
    [again] = adapt(Payload(body=orjson.dumps(end), topic="frigate/events")).reads
    assert again.event_id == read.event_id


def test_a_plate_as_a_pair_is_read() -> None:
    event = orjson.loads((SAMPLES / "events_update.json").read_bytes())
    event["after"]["recognized_license_plate"] = ["46HVR9", 0.81]
    [read] = adapt(Payload(body=orjson.dumps(event), topic="frigate/events")).reads
    assert (read.plate, read.confidence) == ("46HVR9", 0.81)


@pytest.mark.parametrize(
    ("name", "topic"),
    [("events_no_plate.json", "frigate/events"), ("tracked_object_update_description.json",
                                                  "frigate/tracked_object_update")],
)  # fmt: skip
def test_messages_without_a_plate_are_ignored(name: str, topic: str) -> None:
    adapted = adapt(payload(name, topic))
    assert not adapted.reads and adapted.ignored


def test_detection() -> None:
    assert detect(payload("events_update.json", "frigate/events"))
    assert not detect(Payload(body=b'{"read_id": "x"}'))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
KEYS = ["type", "plate", "score", "id", "camera", "timestamp", "after", "recognized_license_plate",
        "recognized_license_plate_score", "frame_time", "start_time", "false_positive", "label"]  # fmt: skip


def mutated(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.json"))))
    document = orjson.loads((SAMPLES / name).read_bytes())
    target = document["after"] if isinstance(document.get("after"), dict) and draw(st.booleans()) else document
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSONISH)
    return orjson.dumps(document)


@settings(max_examples=250, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=200), JSONISH.map(orjson.dumps), st.composite(mutated)()),
    topic=st.one_of(st.none(), st.sampled_from(["frigate/events", "frigate/tracked_object_update", "x/y", ""]),
                    st.text(max_size=30)),
)  # fmt: skip
def test_no_message_raises_anything_but_a_payload_error(body: bytes, topic: str | None) -> None:
    message = Payload(body=body, topic=topic)
    detect(message)
    try:
        adapted = adapt(message)
    except PayloadError:
        return
    for read in adapted.reads:
        assert read.plate and isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1
