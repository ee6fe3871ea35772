"""The matcher on real-world cases: every kind of hit, separators, lookalikes, validity edges, patterns, policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from anpr_stream.core.matching import Match, WatchlistIndex, score_match
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.watchlists import WatchlistEntry
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")

CET = timezone(timedelta(hours=1))
NOW = datetime(2025, 11, 25, 12, 0, tzinfo=CET)


def entry(entry_id: str, plate: str, list_name: str = "stolen_vehicle", **kw: object) -> WatchlistEntry:
    fields: dict[str, object] = {
        "country": "BE",
        "priority": 1,
        "action": "intercept",
        "valid_from": None,
        "valid_until": None,
        "reference": "PV",
        "covert": False,
    }
    fields.update(kw)
    return WatchlistEntry(entry_id=entry_id, list=list_name, plate=plate, **fields)  # type: ignore[arg-type]


LISTED = [
    entry("be-current", "1-ABC-123"),
    entry("be-1973", "ABC-123"),
    entry("be-2008", "123-ABC"),
    entry("nl-6", "12-BDFG", country="NL"),
    entry("de", "B NO 1234", country="DE"),
    entry("fr", "FD-218-KR", country="FR"),
    entry("lu", "LM 2047", country="LU"),
    entry("short", "AB12", country=None),
    entry("oqd", "1-OQD-500"),
    entry("gang", "2-XKR-482", "itinerant_gang"),
    entry("biker", "1-SSB-808", "biker_club"),
    entry("witness", "1-ZG?-31?", "itinerant_gang"),
    entry("witness-star", "*-SL6-*", "itinerant_gang"),
]
INDEX = WatchlistIndex.build(LISTED)


EXACT_AND_OCR = MatchPolicy()


def hits(read: str, policy: MatchPolicy = EXACT_AND_OCR, at: datetime = NOW) -> set[tuple[str, str, int]]:
    return {(m.entry.entry_id, m.kind, m.distance) for m in INDEX.match(read, at, policy)}


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        # exact, whatever the separators and case
        ("1ABC123", {("be-current", "exact", 0)}),
        ("1 abc 123", {("be-current", "exact", 0)}),
        ("1.ABC.123", {("be-current", "exact", 0)}),
        ("ABC123", {("be-1973", "exact", 0)}),
        ("123ABC", {("be-2008", "exact", 0)}),
        ("12-BD-FG", {("nl-6", "exact", 0)}),
        ("BN O 1234", {("de", "exact", 0)}),
        ("FD218KR", {("fr", "exact", 0)}),
        ("LM2047", {("lu", "exact", 0)}),
        ("ab-12", {("short", "exact", 0)}),
        # lookalike letters from other alphabets are exact
        ("1-АВС-123", {("be-current", "exact", 0)}),
        ("１ＡＢＣ１２３", {("be-current", "exact", 0)}),
        # every confusion class
        ("1-OQD-5OO", {("oqd", "ocr", 0)}),
        ("1-0D0-500", {("oqd", "ocr", 0)}),
        ("I-ABC-123", {("be-current", "ocr", 0)}),
        ("L-ABC-123", {("be-current", "ocr", 0)}),
        ("1-ABC-1Z3", {("be-current", "ocr", 0)}),
        ("1-ABC-12З", set()),  # Cyrillic Ze is not a lookalike of a letter: dropped
        ("1-5SB-8O8", {("biker", "ocr", 0)}),
        ("1-SS8-BOB", {("biker", "ocr", 0)}),
        ("FD-2I8-KR", {("fr", "ocr", 0)}),
        ("8 N0 I234", {("de", "ocr", 0)}),
        ("12-8DF6", {("nl-6", "ocr", 0)}),
        ("A8I2", {("short", "ocr", 0)}),
        # not confusion classes: U/V, 7/Z, A/4 are different plates without fuzzy
        ("1-ABC-I23", {("be-current", "ocr", 0)}),
        ("1-A8C-723", set()),
        # fuzzy is off by default
        ("1-ABC-124", set()),
        # patterns: ? one character, * any run, confusion classes apply
        ("1-ZGX-317", {("witness", "pattern", 0)}),
        ("I-2GX-3I7", {("witness", "pattern", 0)}),
        ("1-ZG-317", set()),
        ("1-ZGXX-317", set()),
        ("2-SL6-999", {("witness-star", "pattern", 0)}),
        ("SL6", {("witness-star", "pattern", 0)}),
        ("1-5L6-000", {("witness-star", "pattern", 0)}),
        # nothing
        ("9-ZZZ-999", set()),
        ("----", set()),
        ("", set()),
    ],
)
def test_exact_ocr_and_pattern(read: str, expected: set[tuple[str, str, int]]) -> None:
    assert hits(read) == expected


FUZZY_1 = MatchPolicy.uniform(1)


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("1-ABC-124", {("be-current", "fuzzy", 1)}),  # substitution
        ("1-ABC-12", {("be-current", "fuzzy", 1)}),  # lost character
        ("1-ABC-1234", {("be-current", "fuzzy", 1)}),  # extra character
        ("1-A8C-124", {("be-current", "fuzzy", 1)}),  # OCR class plus one edit
        ("1ABC12", {("be-current", "fuzzy", 1)}),
        ("BAC-123", set()),  # transposition is distance 2
        ("AB13", set()),  # entries shorter than 5 characters are never fuzzy
        ("ABC-124", {("be-1973", "fuzzy", 1)}),  # 1ABC123 is two edits away
        # patterns are never fuzzy
        ("1-ZG-31", set()),
        # exact beats fuzzy for the same entry
        ("1ABC123", {("be-current", "exact", 0), ("be-1973", "fuzzy", 1)}),
    ],
)
def test_fuzzy(read: str, expected: set[tuple[str, str, int]]) -> None:
    assert hits(read, FUZZY_1) == expected


def test_fuzzy_distance_two_and_per_list_policy() -> None:
    assert ("be-current", "fuzzy", 2) in hits("1-ABD-124", MatchPolicy.uniform(2))
    assert ("be-current", "fuzzy", 2) not in hits("1-ABD-124", FUZZY_1)
    policy = MatchPolicy.parse("default=fuzzy:1;stolen_vehicle=fuzzy:0")
    assert hits("2-XKR-48", policy) == {("gang", "fuzzy", 1)}
    assert hits("1-ABC-124", policy) == set()
    assert hits("1-ABC-1Z3", policy) == {("be-current", "ocr", 0)}  # ocr is always on


def test_country_never_blocks_a_match() -> None:
    # The read's country is not even an input: a Dutch-looking read of a Belgian entry matches.
    assert hits("12BDFG") == {("nl-6", "exact", 0)}


@pytest.mark.parametrize(
    ("at", "applies"),
    [
        (datetime(2025, 11, 1, 0, 0, tzinfo=CET) - timedelta(microseconds=1), False),
        (datetime(2025, 11, 1, 0, 0, tzinfo=CET), True),  # valid_from is inclusive
        (datetime(2025, 10, 31, 23, 0, tzinfo=UTC), True),  # same instant, other offset
        (datetime(2025, 12, 1, 0, 0, tzinfo=CET) - timedelta(microseconds=1), True),
        (datetime(2025, 12, 1, 0, 0, tzinfo=CET), False),  # valid_until is exclusive
        (datetime(2025, 12, 1, 5, 0, tzinfo=timezone(timedelta(hours=6))), False),
    ],
)
def test_validity_edges(at: datetime, applies: bool) -> None:
    windowed = WatchlistIndex.build(
        [
            entry(
                "w",
                "1-ABC-123",
                valid_from=datetime(2025, 11, 1, tzinfo=CET),
                valid_until=datetime(2025, 12, 1, tzinfo=CET),
            )
        ]
    )
    assert bool(windowed.match("1ABC123", at, MatchPolicy())) is applies
    assert bool(windowed.match("1A8C123", at, MatchPolicy())) is applies


def test_open_bounds() -> None:
    index = WatchlistIndex.build(
        [
            entry("from", "1-ABC-123", valid_from=NOW),
            entry("until", "1-ABC-123".replace("1-", "2-"), valid_until=NOW),
        ]
    )
    later = NOW + timedelta(days=3650)
    assert [m.entry.entry_id for m in index.match("1ABC123", later, MatchPolicy())] == ["from"]
    assert index.match("2ABC123", later, MatchPolicy()) == []
    assert [m.entry.entry_id for m in index.match("2ABC123", NOW - timedelta(days=3650), MatchPolicy())] == ["until"]


def test_matches_come_best_first_with_the_entry_as_listed() -> None:
    index = WatchlistIndex.build(
        [
            entry("low", "1-ABC-123", "itinerant_gang", priority=4, covert=True),
            entry("high-fuzzy", "1-ABC-124", priority=1),
            entry("high-exact", "1 abc 123", priority=1, reference="PV 2", valid_from=NOW - timedelta(days=1)),
        ]
    )
    found = index.match("1ABC123", NOW, FUZZY_1)
    assert [(m.entry.entry_id, m.kind) for m in found] == [
        ("high-exact", "exact"),
        ("high-fuzzy", "fuzzy"),
        ("low", "exact"),
    ]
    assert found[0].entry == entry("high-exact", "1 abc 123", reference="PV 2", valid_from=NOW - timedelta(days=1))
    assert found[0].entry.valid_from is not None and found[0].entry.valid_from.utcoffset() == timedelta(hours=1)
    assert found[2].entry.covert is True


def test_scores_order_kinds_and_discount_well_formed_reads() -> None:
    e = LISTED[0]
    assert score_match(Match(e, "exact", 0), "BE-current") == 1.0
    assert score_match(Match(e, "ocr", 0), None) > score_match(Match(e, "ocr", 0), "BE-current")
    assert score_match(Match(e, "fuzzy", 1), None) > score_match(Match(e, "fuzzy", 2), None)
    assert 0 < score_match(Match(e, "pattern", 0), None) < 1


def test_index_is_immutable_under_updates() -> None:
    base = WatchlistIndex.build(LISTED)
    added = base.with_entries([entry("new", "9-NEW-999")])
    removed = added.without(["be-current", "unknown"])
    replaced = removed.with_entries([entry("gang", "9-XKR-482", "itinerant_gang")])
    assert len(base) == len(LISTED)
    assert "new" not in base and "new" in added
    assert hits("9NEW999") == set()
    assert [m.entry.entry_id for m in added.match("9NEW999", NOW, MatchPolicy())] == ["new"]
    assert removed.match("1ABC123", NOW, MatchPolicy()) == []
    assert base.match("1ABC123", NOW, MatchPolicy())
    assert replaced.match("2XKR482", NOW, MatchPolicy()) == []
    assert [m.entry.entry_id for m in replaced.match("9XKR482", NOW, MatchPolicy())] == ["gang"]
    assert len(replaced) == len(LISTED)


def test_duplicate_ids_in_build_keep_the_last() -> None:
    index = WatchlistIndex.build([entry("x", "1-ABC-123"), entry("x", "1-ABC-999")])
    assert len(index) == 1
    assert index.get("x") == entry("x", "1-ABC-999")
    assert index.match("1ABC123", NOW, MatchPolicy()) == []


def test_many_single_updates_stay_few_segments() -> None:
    index = WatchlistIndex.build(entry(f"b{i}", f"1-AAA-{i:03d}") for i in range(500))
    for i in range(300):
        index = index.with_entries([entry(f"n{i}", f"2-BBB-{i:03d}")])
    assert len(index) == 800
    assert index.segment_count <= 8
    index = index.without(f"b{i}" for i in range(400))
    assert len(index) == 400
    assert index.get("b450") is not None and index.get("b10") is None
