"""The matcher against an independent brute-force implementation of the contract, on randomised inputs.

Nothing here imports the matcher's internals: normalisation, lookalikes, confusion classes, Levenshtein distance
and wildcard matching are written again with plain loops, straight from the contract text.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anpr_stream.core.matching import WatchlistIndex, match_read
from anpr_stream.core.policy import ListPolicy, MatchPolicy
from anpr_stream.core.readings import Candidate
from anpr_stream.watchlists import WatchlistEntry
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")

# --- the oracle -------------------------------------------------------------------------------------------------

# (lookalike, Latin twin) pairs, Cyrillic then Greek capitals.
ORACLE_LOOKALIKES = [
    ("\u0410", "A"), ("\u0412", "B"), ("\u0421", "C"), ("\u0415", "E"), ("\u041d", "H"), ("\u0406", "I"),
    ("\u0408", "J"), ("\u041a", "K"), ("\u041c", "M"), ("\u041e", "O"), ("\u0420", "P"), ("\u0405", "S"),
    ("\u0422", "T"), ("\u0423", "Y"), ("\u04ae", "Y"), ("\u0425", "X"), ("\u051a", "Q"), ("\u051c", "W"),
    ("\u0391", "A"), ("\u0392", "B"), ("\u0395", "E"), ("\u0396", "Z"), ("\u0397", "H"), ("\u0399", "I"),
    ("\u039a", "K"), ("\u039c", "M"), ("\u039d", "N"), ("\u039f", "O"), ("\u03a1", "P"), ("\u03a4", "T"),
    ("\u03a5", "Y"), ("\u03a7", "X"), ("\u03f9", "C"), ("\u037f", "J"),
]  # fmt: skip
ORACLE_CLASSES = ["0ODQ", "1IL", "2Z", "5S", "8B", "6G"]


def oracle_normalise(raw: str, keep_wildcards: bool) -> str:
    text = unicodedata.normalize("NFKC", raw).upper()
    out = ""
    for ch in text:
        for lookalike, latin in ORACLE_LOOKALIKES:
            if ch == lookalike:
                ch = latin
        if ("A" <= ch <= "Z") or ("0" <= ch <= "9") or (keep_wildcards and ch in "?*"):
            out += ch
    return out


def oracle_class(ch: str) -> str:
    for number, members in enumerate(ORACLE_CLASSES):
        if ch in members:
            return f"<{number}>"
    return ch


def oracle_classes(plate: str) -> list[str]:
    return [oracle_class(ch) for ch in plate]


def oracle_levenshtein(a: list[str], b: list[str]) -> int:
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (0 if a[i - 1] == b[j - 1] else 1))
        previous = current
    return previous[len(b)]


def oracle_wildcard(pattern: list[str], text: list[str]) -> bool:
    if not pattern:
        return not text
    head = pattern[0]
    if head == "*":
        return any(oracle_wildcard(pattern[1:], text[k:]) for k in range(len(text) + 1))
    if not text:
        return False
    return (head == "?" or head == text[0]) and oracle_wildcard(pattern[1:], text[1:])


def oracle_match(
    entries: list[WatchlistEntry], raw: str, observed_at: datetime, policy: MatchPolicy
) -> set[tuple[str, str, int]]:
    live: dict[str, WatchlistEntry] = {}
    for entry in entries:
        live[entry.entry_id] = entry  # later entries with the same id replace earlier ones
    read = oracle_normalise(raw, keep_wildcards=False)
    hits: set[tuple[str, str, int]] = set()
    if not read:
        return hits
    for entry in live.values():
        if entry.valid_from is not None and observed_at < entry.valid_from:
            continue
        if entry.valid_until is not None and observed_at >= entry.valid_until:
            continue
        if "?" in entry.plate or "*" in entry.plate:
            pattern = oracle_classes(oracle_normalise(entry.plate, keep_wildcards=True))
            if oracle_wildcard(pattern, oracle_classes(read)):
                hits.add((entry.entry_id, "pattern", 0))
            continue
        listed = oracle_normalise(entry.plate, keep_wildcards=False)
        if listed == read:
            hits.add((entry.entry_id, "exact", 0))
        elif oracle_classes(listed) == oracle_classes(read):
            hits.add((entry.entry_id, "ocr", 0))
        else:
            list_policy = policy.for_list(entry.list)
            if list_policy.fuzzy and len(listed) >= 5:
                distance = oracle_levenshtein(oracle_classes(listed), oracle_classes(read))
                if distance <= list_policy.max_distance:
                    hits.add((entry.entry_id, "fuzzy", distance))
    return hits


def oracle_match_read(
    entries: list[WatchlistEntry],
    raw: str,
    candidates: list[tuple[str, float | None]],
    observed_at: datetime,
    policy: MatchPolicy,
) -> dict[str, tuple[str, int, int]]:
    """Per entry (kind, distance, candidate rank; 0: the best plate): the best plate under the policy; then each
    candidate in rank order, without fuzzy reach, for entries whose list takes that many candidates at that
    confidence; an entry keeps its first match."""
    found = {
        entry_id: (kind, distance, 0) for entry_id, kind, distance in oracle_match(entries, raw, observed_at, policy)
    }
    lists = {entry.entry_id: entry.list for entry in entries}  # the later entry of an id is the live one
    for rank, (plate, confidence) in enumerate(candidates, start=1):
        for entry_id, kind, distance in oracle_match(entries, plate, observed_at, MatchPolicy()):
            list_policy = policy.for_list(lists[entry_id])
            if entry_id in found or rank > list_policy.candidates:
                continue
            if confidence is None and list_policy.min_candidate_confidence > 0:
                continue
            if confidence is not None and confidence < list_policy.min_candidate_confidence:
                continue
            found[entry_id] = (kind, distance, rank)
    return found


# --- strategies -------------------------------------------------------------------------------------------------

# Heavy on confusable characters so that OCR and fuzzy cases are common; with separators, lowercase and lookalikes.
PLATE_CHARS = "0ODQ1IL2Z5S8B6GAXK7" + "ols" + "-  ." + "\u0410\u041e\u039f\u0396\u0430\u03bf" + "\uff21\uff10"
LISTS = ["itinerant_gang", "stolen_vehicle", "biker_club"]
BASE = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
INSTANTS = [BASE + timedelta(hours=h) for h in range(-2, 3)]

plates = st.text(alphabet=PLATE_CHARS, min_size=1, max_size=9)


@st.composite
def pattern_plates(draw: st.DrawFn) -> str:
    base = draw(st.text(alphabet="0ODQ1IL2Z5S8B6GAXK7", min_size=1, max_size=7))
    chars = list(base)
    for _ in range(draw(st.integers(1, 3))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from("?*")))
    return "".join(chars)


@st.composite
def entries(draw: st.DrawFn, entry_id: str) -> WatchlistEntry:
    plate = draw(st.one_of(plates, plates, plates, pattern_plates()))
    bounds = sorted(draw(st.lists(st.sampled_from(INSTANTS), min_size=2, max_size=2, unique=True)))
    valid_from = draw(st.sampled_from([None, bounds[0]]))
    valid_until = draw(st.sampled_from([None, bounds[1]]))
    return WatchlistEntry(
        entry_id=entry_id,
        list=draw(st.sampled_from(LISTS)),
        plate=plate,
        country=draw(st.sampled_from([None, "BE", "NL"])),
        priority=draw(st.integers(1, 5)),
        action=draw(st.sampled_from(["intercept", "observe"])),
        valid_from=valid_from,
        valid_until=valid_until,
        reference="ref",
        covert=draw(st.booleans()),
    )


@st.composite
def entry_lists(draw: st.DrawFn, max_size: int = 12) -> list[WatchlistEntry]:
    count = draw(st.integers(0, max_size))
    # ids drawn from a small pool so that duplicates (later replaces earlier) happen
    return [draw(entries(f"e{draw(st.integers(0, max_size))}")) for _ in range(count)]


list_policies = st.sampled_from(
    [ListPolicy(), ListPolicy(True, 1), ListPolicy(True, 2), ListPolicy(True, 1, dispatch=False)]
)


@st.composite
def policies(draw: st.DrawFn) -> MatchPolicy:
    per_list = draw(st.dictionaries(st.sampled_from(LISTS), list_policies, max_size=3))
    return MatchPolicy(default=draw(list_policies), per_list=per_list)


@st.composite
def reads_near(draw: st.DrawFn, listed: list[WatchlistEntry]) -> str:
    """A read that is often close to a listed plate: the plate itself with a few random edits."""
    if not listed or draw(st.booleans()):
        return draw(plates)
    chars = list(draw(st.sampled_from(listed)).plate.replace("?", "A").replace("*", ""))
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["sub", "ins", "del"]))
        position = draw(st.integers(0, max(len(chars) - 1, 0)))
        if op == "del" and chars:
            del chars[position]
        elif op == "ins":
            chars.insert(position, draw(st.sampled_from(PLATE_CHARS)))
        elif chars:
            chars[position] = draw(st.sampled_from(PLATE_CHARS))
    return "".join(chars) or "X"


def _result(index: WatchlistIndex, raw: str, at: datetime, policy: MatchPolicy) -> set[tuple[str, str, int]]:
    matches = index.match(raw, at, policy)
    found = [(m.entry.entry_id, m.kind, m.distance) for m in matches]
    assert len(found) == len(set(found)), "an entry matched twice"
    assert len({entry_id for entry_id, _, _ in found}) == len(found), "an entry gave two kinds of match"
    return set(found)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(data=st.data(), listed=entry_lists(), policy=policies(), at=st.sampled_from(INSTANTS))
def test_index_agrees_with_brute_force(
    data: st.DataObject, listed: list[WatchlistEntry], policy: MatchPolicy, at: datetime
) -> None:
    index = WatchlistIndex.build(listed)
    for _ in range(5):
        raw = data.draw(reads_near(listed))
        assert _result(index, raw, at, policy) == oracle_match(listed, raw, at, policy)


@FAST
@given(
    data=st.data(),
    first=entry_lists(),
    added=entry_lists(max_size=6),
    removed=st.lists(st.integers(0, 12).map(lambda n: f"e{n}"), max_size=4),
    policy=policies(),
    at=st.sampled_from(INSTANTS),
)
def test_updates_agree_with_brute_force(
    data: st.DataObject,
    first: list[WatchlistEntry],
    added: list[WatchlistEntry],
    removed: list[str],
    policy: MatchPolicy,
    at: datetime,
) -> None:
    index = WatchlistIndex.build(first)
    for entry in added:  # one at a time: many small segments, merges
        index = index.with_entries([entry])
    index = index.without(removed)
    live = {e.entry_id: e for e in [*first, *added]}
    for entry_id in removed:
        live.pop(entry_id, None)
    expected = list(live.values())
    assert len(index) == len(expected)
    assert {e.entry_id: e for e in index} == live
    for entry_id, entry in live.items():
        assert index.get(entry_id) == entry
    for entry_id in removed:
        assert index.get(entry_id) is None
    for _ in range(5):
        raw = data.draw(reads_near(expected))
        assert _result(index, raw, at, policy) == oracle_match(expected, raw, at, policy)


candidate_list_policies = st.builds(
    ListPolicy,
    fuzzy=st.just(False),
    max_distance=st.just(0),
    dispatch=st.booleans(),
    candidates=st.integers(0, 4),
    min_candidate_confidence=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
) | st.builds(
    ListPolicy,
    fuzzy=st.just(True),
    max_distance=st.integers(1, 2),
    candidates=st.integers(0, 4),
    min_candidate_confidence=st.sampled_from([0.0, 0.5]),
)


@st.composite
def candidate_policies(draw: st.DrawFn) -> MatchPolicy:
    per_list = draw(st.dictionaries(st.sampled_from(LISTS), candidate_list_policies, max_size=3))
    return MatchPolicy(default=draw(candidate_list_policies), per_list=per_list)


@FAST
@given(data=st.data(), listed=entry_lists(), policy=candidate_policies(), at=st.sampled_from(INSTANTS))
def test_matching_with_candidates_agrees_with_brute_force(
    data: st.DataObject, listed: list[WatchlistEntry], policy: MatchPolicy, at: datetime
) -> None:
    index = WatchlistIndex.build(listed)
    for _ in range(3):
        raw = data.draw(reads_near(listed))
        offered = data.draw(
            st.lists(
                st.tuples(
                    reads_near(listed).filter(lambda p: 0 < len(oracle_normalise(p, keep_wildcards=False)) <= 16),
                    st.sampled_from([None, 0.0, 0.3, 0.5, 0.9, 1.0]),
                ),
                max_size=5,
            )
        )
        candidates = tuple(Candidate(p, oracle_normalise(p, keep_wildcards=False), c) for p, c in offered)
        matches = match_read(index, raw, candidates, at, policy)
        got = {m.entry.entry_id: (m.kind, m.distance, m.candidate_rank) for m in matches}
        assert len(got) == len(matches), "an entry matched twice"
        for m in matches:
            assert (m.candidate is None) == (m.candidate_rank == 0)
            assert m.candidate is None or m.candidate == candidates[m.candidate_rank - 1]
        assert got == oracle_match_read(listed, raw, offered, at, policy)
