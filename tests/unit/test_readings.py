"""Semantic validation of camera reads."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from anpr_stream.core.message import decode
from anpr_stream.core.readings import (
    Candidate,
    InvalidReading,
    Position,
    Reading,
    check_extra,
    reading_from_mapping,
)
from anpr_stream.core.record import InRecord
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")

GOOD: dict[str, object] = {
    "read_id": "r-1",
    "camera_id": "LM-E314-BOORSEM",
    "observed_at": "2025-11-25T08:15:00.250+01:00",
    "plate": "1-ABC-123",
    "country": "BE",
    "confidence": 0.93,
    "direction": "in",
    "lane": 2,
    "vehicle": {"type": "car"},
}


def test_valid_reading_keeps_extra_fields() -> None:
    reading = reading_from_mapping(GOOD)
    assert reading.read_id == "r-1"
    assert reading.observed_at == datetime(2025, 11, 25, 7, 15, 0, 250000, tzinfo=UTC)
    assert reading.observed_at.utcoffset() == timedelta(hours=1)
    assert reading.normalised_plate == "1ABC123"
    assert reading.extra == {"direction": "in", "lane": 2, "vehicle": {"type": "car"}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"observed_at": "2025-11-25T08:15:00Z"}, datetime(2025, 11, 25, 8, 15, tzinfo=UTC)),
        ({"observed_at": "2025-11-25t08:15:00z"}, datetime(2025, 11, 25, 8, 15, tzinfo=UTC)),
        (
            {"observed_at": "2025-11-25 08:15:00-05:00"},
            datetime(2025, 11, 25, 8, 15, tzinfo=timezone(-timedelta(hours=5))),
        ),
        ({"country": None}, None),
        ({"country": "nl"}, None),
        ({"confidence": 1}, None),
        ({"confidence": 0}, None),
        ({"plate": "1-АВС-123"}, None),
    ],
)
def test_accepted_variants(changes: dict[str, object], expected: datetime | None) -> None:
    reading = reading_from_mapping({**GOOD, **changes})
    if expected is not None:
        assert reading.observed_at == expected


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"read_id": None}, "read_id must be a string"),
        ({"read_id": ""}, "read_id is empty"),
        ({"camera_id": 12}, "camera_id must be a string"),
        ({"observed_at": "2025-11-25T08:15:00"}, "no UTC offset"),
        ({"observed_at": "25/11/2025 08:15"}, "not RFC 3339"),
        ({"observed_at": "2025-13-25T08:15:00Z"}, "not a valid date"),
        ({"observed_at": 1764055000}, "RFC 3339 string"),
        ({"plate": ""}, "no letters or digits"),
        ({"plate": "--- ---"}, "no letters or digits"),
        ({"plate": 123}, "plate must be a string"),
        ({"plate": "A" * 17}, "more than 16"),
        ({"plate": "1-ABC-123" + " " * 30}, "longer than 32"),
        ({"plate": "1-ABC\x07-123"}, "control characters"),
        ({"country": "BEL"}, "alpha-2"),
        ({"country": 32}, "alpha-2"),
        ({"confidence": 1.5}, "between 0 and 1"),
        ({"confidence": -0.1}, "between 0 and 1"),
        ({"confidence": float("nan")}, "between 0 and 1"),
        ({"confidence": "0.9"}, "must be a number"),
        ({"confidence": True}, "must be a number"),
    ],
)
def test_rejected_with_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidReading, match=reason):
        reading_from_mapping({**GOOD, **changes})


@pytest.mark.parametrize("missing", ["read_id", "camera_id", "observed_at", "plate", "country", "confidence"])
def test_missing_field(missing: str) -> None:
    data = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(InvalidReading, match=f"missing field.*{missing}"):
        reading_from_mapping(data)


def test_invalid_reading_is_a_value_error() -> None:
    assert issubclass(InvalidReading, ValueError)


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"direction": "towards\x00NL"}, "control characters in a string"),
        ({"vendor": {"a": [{"b": "\x07"}]}}, "control characters in a string"),
        ({"vendor": {"ke\x00y": 1}}, "control characters in a key"),
        ({"bad\nkey": 1}, "control characters in a key"),
        ({"": 1}, "empty key"),
        ({"count": 2**53}, "integer beyond"),
        ({"count": -(2**63)}, "integer beyond"),
        ({"ratio": float("inf")}, "not finite"),
        ({"ratio": float("nan")}, "not finite"),
        ({"deep": nested(5)}, "nested deeper than 4"),
        ({f"f{i}": i for i in range(33)}, "extra fields, more than 32"),
        ({"many": list(range(300))}, "more than 256 values"),
        ({"note": "x" * 1025}, "longer than 1024"),
        ({"k" * 65: 1}, "key longer than 64"),
        ({"when": b"bytes"}, "not a JSON value"),
    ],
)
def test_extra_fields_that_a_store_cannot_hold_are_refused(extra: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidReading, match=reason):
        reading_from_mapping({**GOOD, **extra})


def test_extra_fields_within_the_limits_are_kept() -> None:
    extra = {"deep": nested(4), "count": 2**53 - 1, "ratio": -1.5e308, "note": "é" * 1024, "list": [None, True, "a"]}
    assert reading_from_mapping({**GOOD, **extra}).extra["count"] == 2**53 - 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"observed_at": "0001-01-01T00:00:00+14:00"}, "observed_at"),
        ({"observed_at": "1970-01-01T00:00:00Z"}, "before 2000: a camera clock that was reset"),
        ({"read_id": "r\u200b1"}, "invisible"),  # a zero-width space: looks like "r1"
        ({"camera_id": "LM-EISDEN\u202e"}, "invisible"),  # a right-to-left override
        ({"camera_id": "LM\u00a0EISDEN"}, "invisible"),  # a no-break space
    ],
)
def test_instants_out_of_range_and_invisible_characters_in_ids_are_refused(
    changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidReading, match=reason):
        reading_from_mapping({**GOOD, **changes})


# --- OCR candidates and a mobile camera's position: kept in extra, checked, exposed typed -----------------------

SCHEMA_GOOD = {k: v for k, v in GOOD.items() if k != "vehicle"}  # the schema wants a string there


def kafka(extra: dict[str, object]) -> Reading | str:
    return decode(InRecord("anpr.reads", 0, 0, b"cam", orjson.dumps({**SCHEMA_GOOD, **extra}), 0))


def test_candidates_and_position_are_exposed_typed_and_kept_in_extra() -> None:
    candidates = [{"plate": "1-ABC-I23", "confidence": 0.61}, {"plate": "1abc128", "confidence": None}, {"plate": "7"}]
    position = {"lat": 50.963, "lon": 5.749, "heading": 271.5}
    reading = reading_from_mapping({**GOOD, "candidates": candidates, "position": position})
    assert reading.candidates == (
        Candidate("1-ABC-I23", "1ABCI23", 0.61),
        Candidate("1abc128", "1ABC128", None),
        Candidate("7", "7", None),
    )
    assert reading.candidates[0].normalised == "1ABCI23"  # a tuple of (plate, normalised, confidence)
    assert reading.position == Position(50.963, 5.749, 271.5)
    assert reading.extra["candidates"] == candidates and reading.extra["position"] == position


@pytest.mark.parametrize(
    ("extra", "candidates", "position"),
    [
        ({}, (), None),
        ({"candidates": [], "position": None}, (), None),
        ({"candidates": None}, (), None),
        ({"candidates": [{"plate": "A", "confidence": 0}, {"plate": "B", "confidence": 1}]},
         (Candidate("A", "A", 0.0), Candidate("B", "B", 1.0)), None),
        ({"candidates": [{"plate": "АВ1234", "confidence": 0.5, "template": 1}]},  # Cyrillic; vendor keys are kept
         (Candidate("АВ1234", "AB1234", 0.5),), None),
        ({"candidates": [{"plate": "X" * 16}] * 10}, (Candidate("X" * 16, "X" * 16, None),) * 10, None),
        ({"position": {"lat": -90, "lon": 180}}, (), Position(-90.0, 180.0, None)),
        ({"position": {"lat": 90, "lon": -180, "heading": 360}}, (), Position(90.0, -180.0, 360.0)),
        ({"position": {"lat": 0, "lon": 0, "heading": 0, "speed_kmh": 50}}, (), Position(0.0, 0.0, 0.0)),
    ],
)  # fmt: skip
def test_accepted_candidates_and_positions(
    extra: dict[str, object], candidates: tuple[Candidate, ...], position: Position | None
) -> None:
    reading = reading_from_mapping({**GOOD, **extra})
    assert reading.candidates == candidates
    assert reading.position == position
    # The same through the Kafka path: JSON Schema first, then these checks.
    decoded = kafka(extra)
    assert isinstance(decoded, Reading) and decoded.candidates == candidates and decoded.position == position


HOSTILE_CANDIDATES_AND_POSITIONS = [
    ({"candidates": "1ABC123"}, "candidates must be an array"),
    ({"candidates": {"plate": "1ABC123"}}, "candidates must be an array"),
    ({"candidates": [{"plate": "A"}] * 11}, "11 candidates, more than 10"),
    ({"candidates": ["1ABC123"]}, r"candidates\[0\] must be an object"),
    ({"candidates": [None]}, r"candidates\[0\] must be an object"),
    ({"candidates": [{"confidence": 0.5}]}, r"candidates\[0\]\.plate must be a string"),
    ({"candidates": [{"plate": 1234}]}, r"candidates\[0\]\.plate must be a string"),
    ({"candidates": [{"plate": "A"}, {"plate": ""}]}, r"candidates\[1\]\.plate '' has no letters"),
    ({"candidates": [{"plate": "--- ---"}]}, "has no letters or digits"),
    ({"candidates": [{"plate": "A" * 17}]}, "more than 16 letters and digits"),
    ({"candidates": [{"plate": "A" * 33}]}, "longer than 32 characters"),
    ({"candidates": [{"plate": "1ABC\x00123"}]}, "control characters"),
    ({"candidates": [{"plate": "1ABC123", "confidence": 1.5}]}, "confidence must be a number from 0 to 1"),
    ({"candidates": [{"plate": "1ABC123", "confidence": -0.01}]}, "confidence must be a number from 0 to 1"),
    ({"candidates": [{"plate": "1ABC123", "confidence": "0.9"}]}, "confidence must be a number from 0 to 1"),
    ({"candidates": [{"plate": "1ABC123", "confidence": True}]}, "confidence must be a number from 0 to 1"),
    ({"candidates": [{"plate": "1ABC123", "confidence": float("nan")}]}, "not finite"),
    ({"candidates": [{"plate": "1ABC123", "confidence": 2**60}]}, "integer beyond"),
    ({"position": "50.9,5.7"}, "position must be an object"),
    ({"position": [50.9, 5.7]}, "position must be an object"),
    ({"position": {"lat": 50.9}}, "position.lon must be a number"),
    ({"position": {"lon": 5.7}}, "position.lat must be a number"),
    ({"position": {"lat": 90.0001, "lon": 5.7}}, "position.lat must be a number from -90 to 90"),
    ({"position": {"lat": 50.9, "lon": -180.5}}, "position.lon must be a number from -180 to 180"),
    ({"position": {"lat": "50.9", "lon": 5.7}}, "position.lat must be a number"),
    ({"position": {"lat": True, "lon": 5.7}}, "position.lat must be a number"),
    ({"position": {"lat": None, "lon": 5.7}}, "position.lat must be a number"),
    ({"position": {"lat": 50.9, "lon": 5.7, "heading": 360.5}}, "heading must be a number from 0 to 360"),
    ({"position": {"lat": 50.9, "lon": 5.7, "heading": -1}}, "heading must be a number from 0 to 360"),
    ({"position": {"lat": 50.9, "lon": 5.7, "heading": "N"}}, "heading must be a number from 0 to 360"),
    ({"position": {"lat": float("inf"), "lon": 5.7}}, "not finite"),
]


@pytest.mark.parametrize(("extra", "reason"), HOSTILE_CANDIDATES_AND_POSITIONS)
def test_hostile_candidates_and_positions_are_refused_with_a_reason(extra: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidReading, match=reason):
        reading_from_mapping({**GOOD, **extra})
    with pytest.raises(InvalidReading, match=reason):
        check_extra(extra)  # what the camera gateway checks an optional field with before adding it
    if reason != "not finite":  # JSON has no NaN or infinities; the Kafka path refuses the rest too, the schema first
        decoded = kafka(extra)
        assert isinstance(decoded, str)
        assert decoded.startswith(("schema: candidates", "schema: position")) or re.search(reason, decoded), decoded


_SCALARS = (
    st.text(max_size=1100)
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
)


@given(st.dictionaries(st.text(max_size=70), _SCALARS | st.lists(_SCALARS, max_size=3), max_size=6))
def test_the_flat_fast_path_accepts_nothing_the_full_walk_refuses(extra: dict[str, object]) -> None:
    """Cameras' usual extra fields skip the walk over every value (readings._flat_and_clean): only when the walk
    itself would accept them."""
    from anpr_stream.core.readings import _flat_and_clean, _walk

    if _flat_and_clean(extra):
        _walk(extra)  # raises InvalidReading if the fast path let through what the walk refuses
    with contextlib.suppress(InvalidReading):
        check_extra(extra)
