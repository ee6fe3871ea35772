"""The adapter of our own reading JSON (payloads/native/README.txt): one reading, an array, {"reads": [...]}; the
schema's rules (an offset, a 0..1 confidence), and a property: whatever the body, only PayloadError."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.native import ADAPTERS, DETECTORS, MAX_READS, adapt, detect
from anpr_stream.gateway.model import Adapted, Candidate, Payload, PayloadError, Position

SAMPLES = Path(__file__).parent / "payloads" / "native"
PLATE_JPEG = base64.b64decode("/9j/4AAAAAAAAAAAAAAAAAAAAAD/2Q==")
OVERVIEW_PNG = base64.b64decode("iVBORw0KGgoAAAAAAAAAAA==")


def sample(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def run(document: object) -> Adapted:
    return adapt(Payload(orjson.dumps(document)))


def reading(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"read_id": "r-1", "camera_id": "LM-EISDEN", "observed_at": "2026-12-02T08:00:00Z",
                                "plate": "1-ABC-123", "country": "BE", "confidence": 0.9}  # fmt: skip
    document.update(changes)
    return {k: v for k, v in document.items() if v is not DROP}


DROP = object()


def test_registered() -> None:
    assert {"anpr": adapt} == ADAPTERS
    assert {"anpr": detect} == DETECTORS


def test_single() -> None:
    adapted = adapt(Payload((SAMPLES / "single.json").read_bytes()))
    (read,) = adapted.reads
    assert read.plate == "1-ABC-123"
    assert read.observed_at == datetime(2026, 12, 2, 7, 15, 0, 250000, tzinfo=UTC)
    assert read.observed_at.utcoffset() == timedelta(hours=1)  # the offset as given
    assert read.confidence == 0.91
    assert (read.event_id, read.camera, read.country) == ("lm-e314-0001", "LM-E314-BOORSEM", "BE")
    assert read.candidates == (Candidate("1-A8C-123", 0.62), Candidate("I-ABC-123", None))
    assert [(i.kind, i.data, i.media_type) for i in read.images] == [("plate", PLATE_JPEG, "image/jpeg")]
    assert read.position is None
    assert (read.direction, read.vehicle) == ("out", "car")
    assert read.details == {"lane": 2}
    assert adapted.original["plate"] == "1-ABC-123"


def test_batch() -> None:
    first, second = adapt(Payload((SAMPLES / "batch.json").read_bytes())).reads
    assert (first.plate, second.plate) == ("46HVR9", "AB-123-CD")
    assert first.observed_at == datetime(2026, 12, 2, 7, 15, tzinfo=UTC)
    assert second.observed_at == datetime(2026, 12, 2, 7, 15, 1, 500000, tzinfo=UTC)
    assert (first.confidence, second.confidence) == (0.88, 1.0)
    assert (first.country, second.country) == ("NL", "FR")  # alpha-3 FRA
    assert first.camera == second.camera == "LM-MOBILE-7"
    assert first.position == Position(50.893, 5.647, 184.5)
    assert second.position == Position(50.8931, 5.6471, None)
    assert [(i.kind, i.data, i.media_type) for i in first.images] == [
        ("plate", PLATE_JPEG, "image/jpeg"),
        ("overview", OVERVIEW_PNG, "image/png"),
    ]
    assert first.details == {"make": "Opel"} and second.images == () and second.candidates == ()


def test_wrapped() -> None:
    (read,) = adapt(Payload((SAMPLES / "reads_wrapped.json").read_bytes())).reads
    assert read.plate == "B NO 1234" and read.country == "DE"  # vehicle registration code D
    assert read.observed_at == datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        # The schema's observed_at carries Z or an offset: a local time is refused, no zone guessed.
        (reading(observed_at="2026-12-02T08:00:00"), "read.observed_at has no UTC offset"),
        (reading(observed_at=1796198400), "is not an ISO 8601 date and time"),
        (reading(observed_at=DROP), "read.observed_at is missing"),
        (reading(observed_at="0001-01-01T00:00:00+01:00"), "outside the representable range"),
        (reading(observed_at="9999-12-31T23:59:59-01:00"), "outside the representable range"),
        (reading(confidence="0.9"), "read.confidence must be a number between 0 and 1"),
        (reading(confidence=91), "outside 0-1"),  # no percentages in our own format
        (reading(confidence=None), "read.confidence must be a number"),
        (reading(confidence=True), "read.confidence must be a number"),
        (reading(plate=""), "read.plate is missing"),
        (reading(plate="X" * 33), "read.plate is longer than 32"),
        (reading(candidates={"plate": "X"}), "read.candidates must be a JSON array"),
        (reading(candidates=[{"plate": "X", "confidence": 87}]), r"read.candidates\[0\].confidence"),
        (reading(position={"lat": 91, "lon": 5}), "read.position.lat"),
        (reading(position=[50, 5]), "read.position must be a JSON object"),
        (reading(images={"thumbnail": "/9j/4AAAAAAAAAAAAAAAAAAAAAD/2Q=="}), "is not plate, overview or vehicle"),
        (reading(image="not base64!"), "read.image is not valid base64"),
        ([reading(), "x"], r"reads\[1\] must be a JSON object"),
        ({"reads": [reading(), reading(plate=None)]}, r"reads\[1\].plate is missing"),
        ([reading()] * (MAX_READS + 1), "more than 100 reads"),
        ("1-ABC-123", "read must be a JSON object"),
    ],
)
def test_refused(document: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        run(document)


def test_variants() -> None:
    assert run([]).ignored == "no reads in the message"
    assert run({"reads": []}).ignored == "no reads in the message"
    (read,) = run(reading(observed_at="2026-12-02T09:00:00+0100", country="-", read_id="")).reads
    assert read.observed_at == datetime(2026, 12, 2, 8, tzinfo=UTC)
    assert read.observed_at.tzinfo == timezone(timedelta(hours=1))
    assert read.country is None and read.event_id is None  # "no value" markers
    (read,) = run(reading(candidates=[{"plate": ""}, {"plate": "1-A8C-123"}], position={"lat": None, "lon": 5})).reads
    assert read.candidates == (Candidate("1-A8C-123", None),) and read.position is None
    # Extra fields: small scalars kept, nested values and long strings not.
    (read,) = run(reading(lane="2", speed=81.5, gateway={"x": 1}, note="n" * 300, image_ref="e/1", big=2**60)).reads
    assert read.details == {"lane": "2", "speed": 81.5}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        *[((SAMPLES / name).read_bytes(), True) for name in ("single.json", "batch.json", "reads_wrapped.json")],
        (b'{"data_type": "alpr_group"}', False),
        (b"", False),
        (b"\xff" * 10, False),
    ],
)  # fmt: skip
def test_detect(body: bytes, expected: bool) -> None:
    assert detect(Payload(body)) is expected


# --- property: nothing but PayloadError, and every read well formed --------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "-", "N/A", "2026-12-02T08:00:00", "2026-12-02T08:00:00+01:00", "9999-12-31T23:59:59Z",
                      "0001-01-01T00:00:00-23:59", "/9j/4AAAAAAAAAAAAAAAAAAAAAD/2Q==", "BEL"])
)  # fmt: skip
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
NAMES = sorted(p.name for p in SAMPLES.glob("*.json"))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    document: Any = sample(draw(st.sampled_from(NAMES)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(document)))
        if not path:
            document = draw(JSON)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return document


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated().map(orjson.dumps), JSON.map(orjson.dumps), st.binary(max_size=64)))
def test_any_body_only_payload_error(body: bytes) -> None:
    payload = Payload(body)
    assert isinstance(detect(payload), bool)
    try:
        adapted = adapt(payload)
    except PayloadError:
        return
    assert adapted.reads or adapted.ignored
    for read in adapted.reads:
        assert isinstance(read.plate, str) and read.plate.strip()
        assert isinstance(read.observed_at, datetime) and read.observed_at.tzinfo is not None
        assert read.confidence is not None and 0 <= read.confidence <= 1
        assert all(c.confidence is None or 0 <= c.confidence <= 1 for c in read.candidates)
        orjson.dumps(dict(read.details))
