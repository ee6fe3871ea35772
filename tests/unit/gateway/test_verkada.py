"""The Verkada adapter on the API reference's samples (payloads/verkada/README.txt): seconds and milliseconds in one
object, other webhook types ignored, and a property: whatever the body, only PayloadError, every read well formed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.gateway.adapters.verkada import ADAPTERS, DETECTORS, adapt, detect
from anpr_stream.gateway.model import Adapted, Payload, PayloadError

SAMPLES = Path(__file__).parent / "payloads" / "verkada"
NAMES = sorted(p.name for p in SAMPLES.glob("*.json"))


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return document


def run(document: object) -> Adapted:
    return adapt(Payload(orjson.dumps(document)))


def lpr(**data: Any) -> dict[str, Any]:
    document = sample("lpr_2025.json")
    for key, value in data.items():
        if value is None:
            document["data"].pop(key, None)
        else:
            document["data"][key] = value
    return document


def test_registered() -> None:
    assert {"verkada": adapt} == ADAPTERS
    assert {"verkada": detect} == DETECTORS


def test_lpr_2025() -> None:
    adapted = adapt(Payload((SAMPLES / "lpr_2025.json").read_bytes()))
    (read,) = adapted.reads
    assert read.plate == "ABCD123"
    # data.created, "the detection time ... in seconds"; not data.detected (ms, the second the webhook was made).
    assert read.observed_at == datetime(2025, 9, 19, 17, 27, 44, tzinfo=UTC)
    assert read.confidence == pytest.approx(0.9630414285714286)
    assert read.camera == "38718198-8a78-4718-a60f-68e1a8de30ac"
    assert read.country == "US"  # license_plate_state us-ca
    assert read.event_id is None
    assert read.candidates == () and read.images == () and read.position is None
    assert read.details == {
        "region": "us-ca",
        "detected_ms": 1758302865879,
        "crop": [0.3066789507865906, 0.3320710361003876, 0.5294789671897888, 0.558437705039978],
        "webhook_id": "a73b17d4-d7ae-4631-8365-d72776bd5f4c",
        "org_id": "01ec0956-b7cf-415d-bd78-43c8d373cd65",
    }
    assert adapted.original == sample("lpr_2025.json")


def test_lpr_2020() -> None:
    (read,) = adapt(Payload((SAMPLES / "lpr_2020.json").read_bytes())).reads
    assert (read.plate, read.confidence, read.country) == ("7NCR867", 0.85, None)
    assert read.observed_at == datetime(2020, 10, 15, 1, 31, 24, tzinfo=UTC)
    assert read.camera == "7a226fef-3636-4428-bb61-aa3e61c4abea"


def test_notification_without_plate_ignored() -> None:
    adapted = adapt(Payload((SAMPLES / "notification_motion.json").read_bytes()))
    assert adapted.reads == () and adapted.ignored == "Verkada notification webhook without a plate read"
    assert run({"webhook_type": "access", "org_id": "o"}).ignored == "Verkada access webhook without a plate read"


def test_plate_of_interest_notification_carrying_a_plate_is_read() -> None:
    document = sample("notification_motion.json")
    document["data"].update(notification_type="license_plate_of_interest", license_plate_number="1ABC123")
    (read,) = run(document).reads
    assert read.plate == "1ABC123" and read.observed_at == datetime(2020, 8, 17, 17, 33, tzinfo=UTC)
    assert read.confidence is None  # not given


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"created": None}, datetime(2025, 9, 19, 17, 27, 45, 879000, tzinfo=UTC)),  # detected, milliseconds
        ({"created": "1758302864"}, datetime(2025, 9, 19, 17, 27, 44, tzinfo=UTC)),
        ({"created": 1758302864.25}, datetime(2025, 9, 19, 17, 27, 44, 250000, tzinfo=UTC)),
    ],
)
def test_instants(data: dict[str, Any], expected: datetime) -> None:
    assert run(lpr(**data)).reads[0].observed_at == expected


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        # A unit other than the documented one fails loudly, it is not read as a date 55,000 years ahead.
        (lpr(created=1758302864000), "data.created .* outside the representable range"),
        (lpr(created=None, detected=None), "data.created is missing"),
        (lpr(license_plate_number=None), "data.license_plate_number is missing"),
        (lpr(license_plate_number="-"), "data.license_plate_number is missing"),
        (lpr(confidence=1.5), "outside 0-1"),
        (lpr(confidence="high"), "data.confidence 'high' is not a number"),
        (lpr(camera_id={"id": 1}), "data.camera_id must be a string"),
        ({"webhook_type": "lpr"}, "data is missing"),
        ({"webhook_type": "lpr", "data": []}, "data must be a JSON object"),
        ({"data": {"license_plate_number": "X"}}, "webhook_type is missing"),
        (["lpr"], "body must be a JSON object"),
    ],
)
def test_refused(document: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        run(document)


def test_odd_crop_not_kept() -> None:
    assert "crop" not in run(lpr(crop=["a", 1])).reads[0].details
    assert "crop" not in run(lpr(crop=list(range(50)))).reads[0].details


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        *[((SAMPLES / name).read_bytes(), True) for name in NAMES],
        (b'{"data_type": "alpr_group", "best_plate_number": "X"}', False),
        (b'{"read_id": "x", "observed_at": "2026-12-02T08:00:00Z"}', False),
        (b"\x00\x01", False),
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
    | st.sampled_from(["-1", "", "N/A", "lpr", "notification", "1758302864", "1e308", "9" * 40, "us-ca"])
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


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
        assert isinstance(read.observed_at, datetime) and read.observed_at.tzinfo is not None  # epochs are UTC
        assert read.confidence is None or 0 <= read.confidence <= 1
        orjson.dumps(dict(read.details))
