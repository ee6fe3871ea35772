"""The native segment lookup (native/src/segment.rs, FormTable) against the Python reference, differentially: an index
built under either core and queried under either gives exactly the matches the reference gives, in the same order,
on entries made to collide (a small alphabet full of OCR-confusable characters, near misses at distance 1 and 2,
short plates, patterns, validity windows, replaced entries, lists with their own fuzzy distance)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.core import accel
from anpr_stream.core.matching import WatchlistIndex, match_read
from anpr_stream.core.plates import normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Candidate
from anpr_stream.watchlists import WatchlistEntry

pytestmark = pytest.mark.skipif(accel.NATIVE not in accel.available(), reason="anpr_native is not installed")

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Few characters, most of them in an OCR confusion class (0ODQ, 1IL, 2Z, 5S, 8B), so that forms collide.
ALPHABET = "AB08OD1IL5SZ2X"
LISTS = ("stolen_vehicle", "biker_club", "itinerant_gang")
POLICIES = (
    "default=fuzzy:1;biker_club=fuzzy:0",
    "default=fuzzy:0;itinerant_gang=fuzzy:1",
    "default=fuzzy:0",
    "default=fuzzy:1,candidates:2",
    "default=fuzzy:1;stolen_vehicle=fuzzy:0,candidates:3",
    "default=fuzzy:2;biker_club=fuzzy:1",  # above distance 1: the Python path under both cores
)
HOURS = st.none() | st.integers(-3, 3).map(lambda h: NOW + timedelta(hours=h))

plain_plates = st.text(ALPHABET, min_size=1, max_size=8)
pattern_plates = st.text(ALPHABET + "?*", min_size=1, max_size=8).filter(
    lambda p: ("?" in p or "*" in p) and p.strip("?*") != ""
)


@st.composite
def entries(draw: st.DrawFn) -> WatchlistEntry:
    valid_from, valid_until = draw(HOURS), draw(HOURS)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        valid_until = valid_from + timedelta(hours=1)
    return WatchlistEntry(
        entry_id=f"E{draw(st.integers(0, 40))}",  # repeats: later ones replace earlier, leaving dead slots
        list=draw(st.sampled_from(LISTS)),
        plate=draw(st.one_of(plain_plates, plain_plates, pattern_plates)),
        country="BE",
        priority=draw(st.integers(1, 3)),
        action="intercept",
        valid_from=valid_from,
        valid_until=valid_until,
        reference="PV",
        covert=False,
    )


@st.composite
def near(draw: st.DrawFn, listed: list[WatchlistEntry]) -> str:
    """A read: a listed plate after up to two edits (substitution, deletion, insertion), or any plate."""
    plate = draw(st.sampled_from(listed)).plate.replace("?", "").replace("*", "") or "A"
    if draw(st.booleans()):
        return draw(plain_plates)
    chars = list(plate)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(chars)))
        edit = draw(st.sampled_from(("substitute", "delete", "insert")))
        if edit == "insert" or not chars:
            chars.insert(at, draw(st.sampled_from(ALPHABET)))
        elif edit == "delete":
            del chars[min(at, len(chars) - 1)]
        else:
            chars[min(at, len(chars) - 1)] = draw(st.sampled_from(ALPHABET))
    return "".join(chars) or "A"


def built(core: str, batches: list[list[WatchlistEntry]], cores: list[str]) -> WatchlistIndex:
    """The first batch built under `core`, each later one added under the next of `cores` (segments of both kinds)."""
    with accel.use(core):
        index = WatchlistIndex.build(batches[0])
    for batch, other in zip(batches[1:], cores, strict=False):
        with accel.use(other):
            index = index.with_entries(batch)
    return index


def found(
    index: WatchlistIndex, read: str, candidates: tuple[Candidate, ...], at: datetime, policy: MatchPolicy
) -> list[tuple[str, str, int, int]]:
    matches = match_read(index, read, candidates, at, policy)
    return [(m.entry.entry_id, m.kind, m.distance, m.candidate_rank) for m in matches]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_build_and_query_core_gives_the_reference_matches(data: st.DataObject) -> None:
    batches = data.draw(st.lists(st.lists(entries(), min_size=1, max_size=25), min_size=1, max_size=3))
    cores = data.draw(st.lists(st.sampled_from(accel.available()), min_size=2, max_size=2))
    listed = [e for batch in batches for e in batch]
    policy = MatchPolicy.parse(data.draw(st.sampled_from(POLICIES)))
    at = NOW + timedelta(minutes=data.draw(st.integers(-240, 240)))
    reads = data.draw(st.lists(near(listed), min_size=1, max_size=6))
    reference_index = built(accel.PYTHON, batches, [accel.PYTHON] * 2)
    native_index = built(accel.NATIVE, batches, [accel.NATIVE] * 2)
    mixed_index = built(cores[0], batches, cores)
    for read in reads:
        candidates = tuple(Candidate(p, normalise(p), 0.5) for p in data.draw(st.lists(near(listed), max_size=3)))
        with accel.use(accel.PYTHON):
            expected = found(reference_index, read, candidates, at, policy)
        for index in (reference_index, native_index, mixed_index):
            for core in accel.available():
                with accel.use(core):
                    assert found(index, read, candidates, at, policy) == expected, (core, read)


def entry(entry_id: str, plate: str, list_name: str = "stolen_vehicle") -> WatchlistEntry:
    return WatchlistEntry(entry_id, list_name, plate, "BE", 1, "intercept", None, None, "PV", False)


def test_the_native_table_decides_every_kind() -> None:
    """The native path is really taken (a segment built under native has a table), and its codes are the kinds."""
    listed = [entry("exact", "1ABC123"), entry("far", "1ABC999"), entry("short", "AB12"), entry("pattern", "1A?C*")]
    with accel.use(accel.NATIVE):
        index = WatchlistIndex.build(listed)
        (segment,) = index._segments
        hits = segment.native_hits("1ABC123", "1A8C123", True)
        assert hits is not None
        assert sorted(hits) == [(0, 0, 0), (3, 3, 0)]
        assert sorted(segment.native_hits("IABC123", "1A8C123", True) or []) == [(0, 1, 0), (3, 3, 0)]
        assert sorted(segment.native_hits("1ABC1234", "1A8C1234", True) or []) == [(0, 2, 1), (3, 3, 0)]
        assert segment.native_hits("1ABC1234", "1A8C1234", False) == [(3, 3, 0)]
        assert segment.native_hits("AB13", "A813", True) == []  # short entries are never fuzzy
        policy = MatchPolicy.parse("default=fuzzy:1;biker_club=fuzzy:0")
        assert [(m.entry.entry_id, m.kind) for m in index.match("1ABC1234", NOW, policy)] == [
            ("exact", "fuzzy"),
            ("pattern", "pattern"),
        ]


def test_a_read_outside_ascii_goes_to_the_python_path() -> None:
    with accel.use(accel.NATIVE):
        index = WatchlistIndex.build([entry("e", "1ABC123")])
        (segment,) = index._segments
        assert segment.native_hits("1ABC12\u00c9", "1A8C12\u00c9", True) is None
        policy = MatchPolicy.parse("default=fuzzy:1")
        assert [m.kind for m in index.match_normalised("1ABC12\u00c9", "1A8C12\u00c9", NOW, policy)] == ["fuzzy"]


def test_memory_counts_the_native_table_and_the_python_table_once_built() -> None:
    listed = [entry(f"E{i}", f"1ABC{i:03d}") for i in range(200)]
    with accel.use(accel.NATIVE):
        index = WatchlistIndex.build(listed)
    (segment,) = index._segments
    assert segment._native is not None and segment._variants is None
    before = index.nbytes()
    assert before > segment._native.nbytes() > 200 * 8
    with accel.use(accel.PYTHON):
        matches = index.match("1ABC007", NOW, MatchPolicy.parse("default=fuzzy:1"))
    assert matches[0].entry.entry_id == "E7" and matches[0].kind == "exact"
    assert segment._variants is not None  # built for the reference on first use, and counted
    assert index.nbytes() == before + segment._variants.nbytes()
