"""Passage and hit identities (core/identity.py): derived alike everywhere, one per read, distinct for a reused id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anpr_stream.core.identity import epoch_micros, hit_id, passage_id, passage_key, read_hit_id
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)
from tests.unit.fixtures import body

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")

AT = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)


def test_the_same_read_has_one_identity_in_any_utc_offset() -> None:
    local = AT.astimezone(timezone(timedelta(hours=1)))
    assert passage_id("r1", "CAM", AT, "1ABC123") == passage_id("r1", "CAM", local, "1ABC123")
    assert epoch_micros(AT) == int(AT.replace(microsecond=0).timestamp()) * 1_000_000 + 123_456


def test_a_reused_read_id_is_another_passage() -> None:
    first = passage_id("r1", "CAM", AT, "1ABC123")
    others = {
        passage_id("r1", "CAM-2", AT, "1ABC123"),
        passage_id("r1", "CAM", AT + timedelta(microseconds=1), "1ABC123"),
        passage_id("r1", "CAM", AT, "1ABC124"),
        passage_id("r1C", "AM", AT, "1ABC123"),  # fields cannot slide into each other
    }
    assert first not in others and len(others) == 4


def test_hit_ids_are_deterministic_and_distinct() -> None:
    p, q = passage_id("r1", "CAM", AT, "1ABC123"), passage_id("r2", "CAM", AT, "1ABC123")
    assert hit_id(p, "SV-1") == hit_id(str(p), "SV-1")
    assert len({hit_id(p, "SV-1"), hit_id(p, "SV-2"), hit_id(q, "SV-1")}) == 3


def test_a_consumer_computes_a_hit_id_from_the_read_as_sent() -> None:
    read = body("r1", "1 hgt 904", AT.astimezone(timezone(timedelta(hours=-3))), camera="CAM")
    assert read_hit_id(read, "SV-1") == str(hit_id(passage_id("r1", "CAM", AT, "1HGT904"), "SV-1"))


@given(
    st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20),
    st.datetimes(timezones=st.just(UTC)), st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True),
)  # fmt: skip
def test_the_worker_s_passage_key_is_the_passage_id(read_id: str, camera: str, at: datetime, plate: str) -> None:
    """The hot path's string form (no UUID object) is the same id every other caller derives."""
    assert passage_key(read_id, camera, at, plate) == str(passage_id(read_id, camera, at, plate))
