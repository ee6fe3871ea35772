"""Plate search terms: normalisation, wildcard to LIKE, fuzzy candidate patterns (recall against brute force),
and keyset cursors."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from anpr_stream.api.plate_query import (
    InvalidQuery,
    decode_cursor,
    encode_cursor,
    fuzzy_form,
    fuzzy_like_patterns,
    like_pattern,
    plate_term,
    wildcards_to_like,
)
from anpr_stream.core.plates import confusion_form
from tests.unit.test_pure_core import FORBIDDEN, PACKAGE, imported_modules


def like_matches(pattern: str, text: str) -> bool:
    """SQL LIKE semantics (escape `\\`), for checking patterns without a database."""
    regex = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
            regex.append(re.escape(pattern[i]))
        elif c == "%":
            regex.append(".*")
        elif c == "_":
            regex.append(".")
        else:
            regex.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(regex), text, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1-abc-123", "1ABC123"), (" 1 ABC 123 ", "1ABC123"), ("АВ-12-СD", "AB12CD"), ("xx.99.99", "XX9999")],
)
def test_plate_term_normalises(raw: str, expected: str) -> None:
    assert plate_term(raw) == expected


@pytest.mark.parametrize("raw", ["", "---", "?", "x" * 33])
def test_plate_term_refuses_empty_or_long(raw: str) -> None:
    with pytest.raises(InvalidQuery):
        plate_term(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1-ABC-*", "1ABC%"),
        ("1-A?C-123", "1A_C123"),
        ("*abc*", "%ABC%"),
        ("1**ABC", "1%ABC"),  # runs of * collapse
        ("?? 12 ??", "__12__"),
    ],
)
def test_wildcards_become_like(raw: str, expected: str) -> None:
    if sum(c.isalnum() for c in expected) < 3:
        with pytest.raises(InvalidQuery, match="at least 3"):
            like_pattern(raw)
    else:
        assert like_pattern(raw) == expected


def test_like_metacharacters_are_escaped() -> None:
    assert wildcards_to_like("A_B%C\\") == "A\\_B\\%C\\\\"
    assert like_matches(wildcards_to_like("A_B"), "A_B") and not like_matches(wildcards_to_like("A_B"), "AXB")


@pytest.mark.parametrize(("plate", "distance"), [("1ABC", 1), ("1ABC12", 3), ("1ABC12", 0)])
def test_fuzzy_refuses_short_plates_and_other_distances(plate: str, distance: int) -> None:
    with pytest.raises(InvalidQuery):
        fuzzy_form(plate, distance)


def test_fuzzy_compares_confusion_classes() -> None:
    assert fuzzy_form("1BOB800", 2) == confusion_form("1BOB800") == "18088" + "00"


def test_fuzzy_patterns_prefer_indexable_pieces() -> None:
    # Seven characters, distance 2: a two-character prefix, a three-character middle, a two-character suffix.
    assert fuzzy_like_patterns("1ABC123", 2) == ["1A%", "%BC1%", "%23"]
    assert fuzzy_like_patterns("1ABC123", 1) == ["1AB%", "%C123"]


_PLATE_CHARS = st.sampled_from("0123456789ABCEFHJKMNPRTUVWXY")
_PLATES = st.text(_PLATE_CHARS, min_size=5, max_size=9)


def _edited(rng: st.DrawFn, form: str, edits: int) -> str:
    text = list(form)
    for _ in range(edits):
        op = rng(st.sampled_from(["insert", "delete", "substitute"]))
        if op == "insert" or not text:
            text.insert(rng(st.integers(0, len(text))), rng(_PLATE_CHARS))
        elif op == "delete":
            del text[rng(st.integers(0, len(text) - 1))]
        else:
            text[rng(st.integers(0, len(text) - 1))] = rng(_PLATE_CHARS)
    return "".join(text)


@st.composite
def near_pairs(draw: st.DrawFn) -> tuple[str, str, int]:
    form = confusion_form(draw(_PLATES))
    distance = draw(st.integers(1, 2))
    return form, confusion_form(_edited(draw, form, draw(st.integers(0, distance)))), distance


@settings(max_examples=3000, deadline=None)
@given(near_pairs())
def test_fuzzy_patterns_never_miss_a_plate_within_the_distance(pair: tuple[str, str, int]) -> None:
    form, other, distance = pair
    assert Levenshtein.distance(form, other) <= distance
    assert any(like_matches(p, other) for p in fuzzy_like_patterns(form, distance)), (form, other)


@settings(max_examples=300, deadline=None)
@given(_PLATES, st.lists(_PLATES, min_size=50, max_size=200), st.integers(1, 2))
def test_fuzzy_patterns_against_brute_force(query: str, traffic: list[str], distance: int) -> None:
    """Recall on arbitrary traffic: every plate brute force finds within the distance is a candidate."""
    form = confusion_form(query)
    patterns = fuzzy_like_patterns(form, distance)
    within = {t for t in map(confusion_form, traffic) if Levenshtein.distance(form, t) <= distance}
    candidates = {t for t in map(confusion_form, traffic) if any(like_matches(p, t) for p in patterns)}
    assert within <= candidates


def test_cursor_round_trip_and_refusal() -> None:
    at = datetime(2026, 11, 1, 8, 15, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "cam|1:42")) == (at, "cam|1:42")
    for bad in ["nope", encode_cursor(at, "x")[:-3], "W10", "WyIyMDI2LTExLTAxVDA4OjE1OjAwIiwgIngiXQ"]:
        with pytest.raises(InvalidQuery, match="not one this API handed out"):
            decode_cursor(bad)


def test_plate_query_is_pure() -> None:
    assert not imported_modules(PACKAGE / "api" / "plate_query.py") & FORBIDDEN
