"""Which watchlist entries a run of `retention expire-watchlist` retracts: validity ended more than the grace ago."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.watchlists.expiry import DEFAULT_GRACE, expired
from tests.unit.fixtures import entry

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("valid_until", "grace", "retracted"),
    [
        (None, DEFAULT_GRACE, False),  # open-ended: never expires
        (NOW + H, DEFAULT_GRACE, False),
        (NOW - H, DEFAULT_GRACE, False),  # ended an hour ago: late reads may still hit it
        (NOW - 24 * H, DEFAULT_GRACE, True),  # exactly the grace
        (NOW - 400 * 24 * H, DEFAULT_GRACE, True),
        (NOW - H, timedelta(0), True),
        (NOW, timedelta(0), True),  # valid_until is exclusive
    ],
)
def test_expired(valid_until: datetime | None, grace: timedelta, retracted: bool) -> None:
    e = replace(entry("SV-1", "1-ABC-123"), valid_until=valid_until)
    assert (expired([e], NOW, grace) == [e]) is retracted


def test_expired_sorted_and_covert_alike() -> None:
    old = NOW - 48 * H
    entries = [replace(entry(i, "1-ABC-123", covert=i == "B"), valid_until=old) for i in ("C", "A", "B")]
    assert [e.entry_id for e in expired([*entries, entry("D", "1-XYZ-999")], NOW)] == ["A", "B", "C"]


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        expired([], datetime(2026, 12, 2))
