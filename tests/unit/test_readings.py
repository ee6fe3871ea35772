"""Semantic validation of camera reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from anpr_stream.core.readings import InvalidReading, reading_from_mapping

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
