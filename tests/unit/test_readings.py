"""Semantic validation of camera reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from anpr_stream.readings import InvalidReading, reading_from_mapping

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
