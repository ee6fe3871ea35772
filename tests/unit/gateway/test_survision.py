"""The Survision adapter: anpr and triggerResult messages with a decision are reads, JSON and XML alike; anpr
progress messages and every other message are ignored; and no message raises anything but PayloadError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.survision import adapt, detect
from anpr_stream.gateway.model import Payload, PayloadError

SAMPLES = Path(__file__).parent / "payloads" / "survision"


def payload(name: str, **headers: str) -> Payload:
    kind = "application/xml" if name.endswith(".xml") else "application/json"
    return Payload(body=(SAMPLES / name).read_bytes(), content_type=kind, headers=headers)


def test_a_json_decision_is_a_read() -> None:
    [read] = adapt(payload("anpr_decision.json", **{"survision-serial-number": "MP3-000123"})).reads
    assert (read.plate, read.confidence, read.country, read.direction) == ("AB123CD", 0.87, "FR", "front")
    assert read.observed_at == datetime(2020, 2, 9, 3, 5, 55, 554000, tzinfo=UTC)
    assert (read.event_id, read.camera) == ("1581210000-42", "MP3-000123")
    assert [(i.kind, i.media_type) for i in read.images] == [("plate", "image/jpeg"), ("overview", "image/jpeg")]
    assert read.details["context"] == "F" and read.details["plateOccurences"] == "5"


def test_an_xml_decision_is_a_read() -> None:
    [read] = adapt(payload("anpr_decision.xml", **{"x-serial-number": "MP3-9"})).reads
    assert (read.plate, read.confidence, read.country, read.direction) == ("GE456HJ", 0.92, "DE", "rear")
    assert read.observed_at == datetime(2020, 2, 9, 3, 6, 40, 123000, tzinfo=UTC)
    assert (read.event_id, read.camera) == ("1581210000-43", "MP3-9")
    assert [i.kind for i in read.images] == ["plate"]


def test_xml_and_json_go_the_same_way() -> None:
    xml = b'<anpr date="1581217555554" session="s" id="1"><decision plate="AB123CD" reliability="87" ' \
          b'context_isoAlpha2="FR"><jpeg>/9j/4AAQSkZJRgABAQ==</jpeg></decision></anpr>'  # fmt: skip
    document = {
        "anpr": {
            "@date": "1581217555554",
            "@session": "s",
            "@id": "1",
            "decision": {
                "@plate": "AB123CD",
                "@reliability": "87",
                "@context_isoAlpha2": "FR",
                "jpeg": "/9j/4AAQSkZJRgABAQ==",
            },
        }
    }
    [from_xml] = adapt(Payload(body=xml, content_type="text/xml")).reads
    [from_json] = adapt(Payload(body=orjson.dumps(document))).reads
    assert from_xml == from_json


def test_a_trigger_result_is_a_read() -> None:
    [read] = adapt(payload("trigger_result.json")).reads
    assert (read.plate, read.confidence, read.country, read.camera) == ("XY987ZZ", 0.64, "BE", None)
    assert read.observed_at == datetime(2020, 2, 9, 3, 8, 20, tzinfo=UTC)
    assert read.event_id == "trigger-7"


@pytest.mark.parametrize("name", ["anpr_noplate.json", "keepalive.json", "infos.xml"])
def test_messages_without_a_decision_are_ignored(name: str) -> None:
    adapted = adapt(payload(name))
    assert not adapted.reads and adapted.ignored


def test_a_decision_without_a_date_is_refused() -> None:
    document = orjson.loads((SAMPLES / "anpr_decision.json").read_bytes())
    del document["anpr"]["@date"]
    with pytest.raises(PayloadError, match="@date"):
        adapt(Payload(body=orjson.dumps(document)))


def test_detection() -> None:
    assert detect(payload("anpr_decision.json"))
    assert detect(payload("anpr_decision.xml"))
    assert detect(payload("keepalive.json"))
    assert not detect(Payload(body=b'{"read_id": "x"}'))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=20,
)
KEYS = ["@date", "@session", "@id", "@triggerId", "decision", "@plate", "@reliability", "@context",
        "@context_isoAlpha2", "@context_isoAlpha3", "@direction", "jpeg", "contextJpeg", "database"]  # fmt: skip


def mutated(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(sorted(p.name for p in SAMPLES.glob("*.json"))))
    document = orjson.loads((SAMPLES / name).read_bytes())
    message = next(iter(document.values()))
    decision = message.get("decision") if isinstance(message, dict) else None
    target = decision if isinstance(decision, dict) and draw(st.booleans()) else message
    if isinstance(target, dict):
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
            if draw(st.booleans()):
                target.pop(key, None)
            else:
                target[key] = draw(JSONISH)
    return orjson.dumps(document)


def xml_mutated(draw: st.DrawFn) -> bytes:
    body = (SAMPLES / draw(st.sampled_from(["anpr_decision.xml", "infos.xml"]))).read_bytes()
    cut = draw(st.integers(0, len(body)))
    return body[:cut] + draw(st.binary(max_size=20)) + body[cut + draw(st.integers(0, 10)) :]


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(st.binary(max_size=200), JSONISH.map(orjson.dumps), st.composite(mutated)(),
                   st.composite(xml_mutated)()),
    serial=st.one_of(st.none(), st.text(max_size=20)),
)  # fmt: skip
def test_no_message_raises_anything_but_a_payload_error(body: bytes, serial: str | None) -> None:
    message = Payload(body=body, headers={} if serial is None else {"survision-serial-number": serial})
    detect(message)
    try:
        adapted = adapt(message)
    except PayloadError:
        return
    for read in adapted.reads:
        assert read.plate and isinstance(read.observed_at, datetime)
        assert read.confidence is None or 0 <= read.confidence <= 1
