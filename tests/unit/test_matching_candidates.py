"""Matching a read with its OCR candidates (core/matching/candidates.py), through the batch, the hits and what is
published: off unless a list opts in, one hit per read and entry, the hit saying which candidate matched."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from anpr_stream.core.batch import classify
from anpr_stream.core.hits import Hit, hits_of
from anpr_stream.core.matching import Match, WatchlistIndex, match_read, score_match
from anpr_stream.core.outgoing import hit_payload
from anpr_stream.core.plates import normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Candidate
from anpr_stream.watchlists import entry_from_mapping
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)
from tests.unit.fixtures import CAMERAS, NOW, entry, read, record

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")

SV = entry("SV-1", "1-HGT-904")
SV2 = entry("SV-2", "1-HGT-907")
GANG = entry("IG-1", "2-KLM-555", lst="itinerant_gang")
PATTERN = entry("IG-2", "2-KLM-5?8", lst="itinerant_gang")
INDEX = WatchlistIndex.build([SV, SV2, GANG, PATTERN])


def cands(*items: tuple[str, float | None]) -> tuple[Candidate, ...]:
    return tuple(Candidate(plate, normalise(plate), confidence) for plate, confidence in items)


def found(plate: str, candidates: tuple[Candidate, ...], policy: str) -> list[tuple[str, str, int, float | None]]:
    matches = match_read(INDEX, plate, candidates, NOW, MatchPolicy.parse(policy))
    ids = [m.entry.entry_id for m in matches]
    assert len(ids) == len(set(ids)), "one match per entry"
    return [
        (m.entry.entry_id, m.kind, m.candidate_rank, None if m.candidate is None else m.candidate.confidence)
        for m in matches
    ]


READ = "1-HGT-9O9"  # a misread: matches nothing itself
OFFERED = cands(("1HGT904", 0.6), ("2KLM555", 0.4), ("1HGT907", 0.3))


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # Off by default and off for lists that do not opt in: existing behaviour unchanged.
        ("", []),
        ("default=fuzzy:0", []),
        ("itinerant_gang=candidates:0", []),
        # On: in rank order, each hit saying its rank and the engine's confidence.
        ("default=candidates:1", [("SV-1", "exact", 1, 0.6)]),
        ("default=candidates:3", [("SV-1", "exact", 1, 0.6), ("IG-1", "exact", 2, 0.4), ("SV-2", "exact", 3, 0.3)]),
        ("default=candidates:10", [("SV-1", "exact", 1, 0.6), ("IG-1", "exact", 2, 0.4), ("SV-2", "exact", 3, 0.3)]),
        # Per list: only the lists that opt in, each with its own depth.
        ("stolen_vehicle=candidates:3", [("SV-1", "exact", 1, 0.6), ("SV-2", "exact", 3, 0.3)]),
        ("itinerant_gang=candidates:2", [("IG-1", "exact", 2, 0.4)]),
        ("itinerant_gang=candidates:1", []),  # its candidate is rank 2
        # The minimum confidence, inclusive.
        ("default=candidates:3,candidate-confidence:0.4", [("SV-1", "exact", 1, 0.6), ("IG-1", "exact", 2, 0.4)]),
        ("default=candidates:3,candidate-confidence:0.41", [("SV-1", "exact", 1, 0.6)]),
        ("default=candidates:3,candidate-confidence:0.7", []),
        # Fuzzy reach applies to the best plate only: READ is within distance 1 of SV-1 and SV-2 (9O9 ~ 904 / 907).
        ("default=fuzzy:1", [("SV-1", "fuzzy", 0, None), ("SV-2", "fuzzy", 0, None)]),
        (
            "default=fuzzy:1,candidates:3",  # the best plate's fuzzy hits win over the candidates' exact ones
            [("SV-1", "fuzzy", 0, None), ("SV-2", "fuzzy", 0, None), ("IG-1", "exact", 2, 0.4)],
        ),
    ],
)
def test_candidate_policy(policy: str, expected: list[tuple[str, str, int, float | None]]) -> None:
    assert found(READ, OFFERED, policy) == expected


def test_the_best_plate_wins_over_a_candidate_of_the_same_entry() -> None:
    offered = cands(("1HGT904", 0.9), ("2KLM555", 0.5))
    assert found("1-HGT-904", offered, "default=candidates:2") == [
        ("SV-1", "exact", 0, None),
        ("IG-1", "exact", 2, 0.5),
    ]
    # OCR-equivalent best plate (0 for O), exact candidate: still the best plate's hit.
    assert found("1-HGT-9O4", offered, "default=candidates:2")[0] == ("SV-1", "ocr", 0, None)


def test_the_higher_ranked_candidate_wins_and_repeats_are_matched_once() -> None:
    # Rank 1 and 3 both reach SV-1 (exact and OCR-equivalent), rank 2 repeats rank 1's text.
    offered = cands(("1HGT904", 0.5), ("1-hgt-904", 0.45), ("1HGT9O4", 0.9))
    assert found(READ, offered, "default=candidates:3") == [("SV-1", "exact", 1, 0.5)]
    # Under a minimum only rank 3 passes: the entry is reached by it, once.
    assert found(READ, offered, "default=candidates:3,candidate-confidence:0.8") == [("SV-1", "ocr", 3, 0.9)]
    # A repeated text at a lower rank with enough confidence is still taken (its own rank and confidence).
    repeated = cands(("2KLM555", 0.2), ("2KLM555", 0.8))
    assert found(READ, repeated, "default=candidates:2,candidate-confidence:0.5") == [("IG-1", "exact", 2, 0.8)]


def test_candidates_reach_patterns_and_ocr_equivalents_and_skip_the_best_plate_itself() -> None:
    offered = cands(("1-HGT-904", None), ("2KLM5S8", None))  # the best plate again; then S for 5: a pattern hit
    result = found("1-HGT-904", offered, "default=candidates:2")
    assert result == [("SV-1", "exact", 0, None), ("IG-2", "pattern", 2, None)]


def test_a_candidate_without_a_confidence_passes_only_without_a_minimum() -> None:
    offered = cands(("1HGT904", None))
    assert found(READ, offered, "default=candidates:1") == [("SV-1", "exact", 1, None)]
    assert found(READ, offered, "default=candidates:1,candidate-confidence:0.01") == []


def test_candidates_respect_validity() -> None:
    expired = entry_from_mapping(
        {"entry_id": "X-1", "list": "stolen_vehicle", "plate": "1-ABC-123", "country": "BE", "priority": "1",
         "action": "intercept", "valid_from": "", "valid_until": (NOW - timedelta(days=1)).isoformat(),
         "reference": "", "covert": "false"}
    )  # fmt: skip
    index = WatchlistIndex.build([expired])
    policy = MatchPolicy.parse("default=candidates:1")
    assert match_read(index, "1ABC12B", cands(("1ABC123", 0.9)), NOW, policy) == []
    assert match_read(index, "1ABC12B", cands(("1ABC123", 0.9)), NOW - timedelta(days=2), policy) != []


def test_without_candidates_or_without_any_list_taking_them_the_best_plate_is_matched_as_before() -> None:
    policy = MatchPolicy.parse("default=fuzzy:1")
    assert match_read(INDEX, READ, OFFERED, NOW, policy) == INDEX.match(READ, NOW, policy)
    on = MatchPolicy.parse("default=fuzzy:1,candidates:3")
    assert match_read(INDEX, READ, (), NOW, on) == INDEX.match(READ, NOW, on)


def test_a_candidate_hit_scores_below_the_same_hit_on_the_best_plate() -> None:
    best = Match(SV, "exact", 0)
    first = Match(SV, "exact", 0, OFFERED[0], 1)
    third = Match(SV, "exact", 0, OFFERED[2], 3)
    assert score_match(best, None) > score_match(first, None) > score_match(third, None) > 0


# --- through the batch: hits, identity and what dispatch receives -------------------------------------------------


def _hits(policy: str, *reads: bytes) -> list[Hit]:
    match_policy = MatchPolicy.parse(policy)
    records = [record(value, offset) for offset, value in enumerate(reads)]
    result = classify(records, INDEX, match_policy, CAMERAS, NOW - timedelta(days=365), NOW)
    return hits_of(result.passages, lambda name: match_policy.for_list(name).dispatch)


CANDIDATES_JSON = [{"plate": "1-HGT-904", "confidence": 0.61}, {"plate": "2-KLM-555", "confidence": None}]


def test_a_candidate_hit_through_the_batch_says_which_candidate_matched() -> None:
    value = read("r1", READ, candidates=CANDIDATES_JSON)
    assert _hits("", value) == []  # nobody opted in
    hits = _hits("stolen_vehicle=candidates:2,log-only", value)
    [hit] = hits
    assert hit.match.entry.entry_id == "SV-1" and hit.dispatch is False  # the list's dispatch policy holds
    payload = hit_payload(hit, CAMERAS, NOW)
    assert (payload["matched_plate"], payload["candidate_rank"], payload["candidate_confidence"]) == (
        "1-HGT-904",
        1,
        0.61,
    )
    assert payload["read"]["plate"] == READ and payload["read"]["candidates"] == CANDIDATES_JSON
    orjson.dumps(payload)


def test_a_best_plate_hit_payload_names_the_read_plate_and_no_candidate() -> None:
    [hit] = _hits("default=candidates:2", read("r1", "1-HGT-904", candidates=[{"plate": "1-HGT-904"}]))
    payload = hit_payload(hit, CAMERAS, NOW)
    assert (payload["matched_plate"], payload["candidate_rank"], payload["candidate_confidence"]) == (
        "1-HGT-904",
        None,
        None,
    )


def test_hit_identity_stays_one_per_read_and_entry() -> None:
    # Best plate and both candidates reach SV-1 (the third by OCR equivalence): one hit, the best plate's.
    value = read("r1", "1-HGT-904", candidates=[{"plate": "1HGT904"}, {"plate": "1HGT9O4"}, {"plate": "2KLM555"}])
    hits = _hits("default=candidates:3", value)
    assert sorted((h.match.entry.entry_id, h.match.candidate_rank) for h in hits) == [("IG-1", 3), ("SV-1", 0)]
    assert len({h.hit_id for h in hits}) == 2
    # The same read without candidates gives SV-1 the same hit id: matching candidates changes no identity.
    [plain] = _hits("", read("r1", "1-HGT-904"))
    assert plain.hit_id in {h.hit_id for h in hits}


def test_a_covert_candidate_hit_does_not_say_which_candidate_matched() -> None:
    covert = entry("BC-1", "M-JKR-66", covert=True, lst="biker_club")
    index = WatchlistIndex.build([covert])
    policy = MatchPolicy.parse("default=candidates:2")
    value = read("r1", "M-JKR-88", candidates=[{"plate": "M-JKR-86"}, {"plate": "M-JKR-66", "confidence": 0.3}])
    result = classify([record(value)], index, policy, CAMERAS, NOW - timedelta(days=365), NOW)
    [hit] = hits_of(result.passages, lambda name: True)
    assert hit.match.candidate_rank == 2
    payload = hit_payload(hit, CAMERAS, NOW)
    assert payload["entry"]["covert"] is True
    assert (payload["matched_plate"], payload["candidate_rank"], payload["candidate_confidence"]) == (None, None, None)
