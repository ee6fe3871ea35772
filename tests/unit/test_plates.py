"""Normalisation, confusion classes and plate formats: tables of real-world spellings."""

from __future__ import annotations

import random

import pytest
from rapidfuzz.distance import Levenshtein

from anpr_stream.core.plates import (
    CONFUSION_CLASSES,
    confusion_form,
    normalise,
    normalise_pattern,
    plate_format,
    plate_formats,
)
from anpr_stream.core.plates.synthetic import synthetic_candidates, synthetic_plate
from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)

# The reference and the native core alike (tests/unit/cores.py).
pytestmark = pytest.mark.usefixtures("each_core")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1-ABC-123", "1ABC123"),
        ("1 abc 123", "1ABC123"),
        ("1.ABC.123", "1ABC123"),
        (" 1-abc-123\n", "1ABC123"),
        ("ABC-123", "ABC123"),
        ("123-ABC", "123ABC"),
        ("GX-482-T", "GX482T"),
        ("HR-KV 4821", "HRKV4821"),
        ("B NO 1234", "BNO1234"),
        ("FD-218-KR", "FD218KR"),
        ("LM 2047", "LM2047"),
        # fullwidth forms (NFKC)
        ("１－ＡＢＣ－１２３", "1ABC123"),
        # Cyrillic lookalikes, upper and lower case
        ("1-АВС-123", "1ABC123"),
        ("1-авс-123", "1ABC123"),
        ("ХТ-КМ 15", "XTKM15"),
        ("ОРЕН", "OPEH"),
        # Greek lookalikes
        ("ΑΒΕ-123", "ABE123"),
        ("ΖΗ-ΙΚ-ΜΝ", "ZHIKMN"),
        ("ΟΡΤ-ΥΧ", "OPTYX"),
        # letters outside A-Z are dropped, not guessed
        ("TÜ-AB 12", "TAB12"),
        ("Ж-123", "123"),
        ("", ""),
        ("---", ""),
        ("?*", ""),
        # ASCII control characters are dropped too
        ("1\tABC\x00123", "1ABC123"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1-AB?-12*", "1AB?12*"),
        ("*-sl6-*", "*SL6*"),
        ("1-ZG?-31?", "1ZG?31?"),
        ("**AB***", "*AB*"),
        ("Ｇ？-12", "G?12"),
        ("1-АВ?-123", "1AB?123"),
    ],
)
def test_normalise_pattern_keeps_wildcards(raw: str, expected: str) -> None:
    assert normalise_pattern(raw) == expected


def test_confusion_classes_are_the_contract() -> None:
    assert {frozenset(c) for c in CONFUSION_CLASSES} == {
        frozenset("0ODQ"),
        frozenset("1IL"),
        frozenset("2Z"),
        frozenset("5S"),
        frozenset("8B"),
        frozenset("6G"),
    }


@pytest.mark.parametrize("cls", ["0ODQ", "1IL", "2Z", "5S", "8B", "6G"])
def test_every_member_of_a_class_has_one_form(cls: str) -> None:
    assert len({confusion_form(c) for c in cls}) == 1


@pytest.mark.parametrize(("a", "b"), [("0", "1"), ("O", "I"), ("B", "S"), ("U", "V"), ("7", "Z"), ("A", "4")])
def test_other_characters_stay_apart(a: str, b: str) -> None:
    assert confusion_form(a) != confusion_form(b)


def test_confusion_form_keeps_wildcards_and_plain_letters() -> None:
    assert confusion_form("1AB?12*") == confusion_form("IA8?L2*")
    assert confusion_form("AXY") == "AXY"


@pytest.mark.parametrize(
    ("plate", "country", "expected"),
    [
        ("1ABC123", "BE", "BE-current"),
        ("2XYZ999", None, "BE-current"),
        ("TABC123", "BE", "BE-category"),
        ("ABC123", "BE", "BE-1973"),
        ("123ABC", "BE", "BE-2008"),
        ("AB1234", "NL", "NL-sidecode-1"),
        ("1234AB", "NL", "NL-sidecode-2"),
        ("12AB34", "NL", "NL-sidecode-3"),
        ("BD12FG", "NL", "NL-sidecode-4"),
        ("BDFG12", "NL", "NL-sidecode-5"),
        ("12BDFG", "NL", "NL-sidecode-6"),
        ("12BDF3", "NL", "NL-sidecode-7"),
        ("1BDF23", "NL", "NL-sidecode-8"),
        ("BD123F", "NL", "NL-sidecode-9"),
        ("B123DF", "NL", "NL-sidecode-10"),
        ("BDF12G", "NL", "NL-sidecode-11"),
        ("B12DFG", "NL", "NL-sidecode-12"),
        ("1BD234", "NL", "NL-sidecode-13"),
        ("123BD4", "NL", "NL-sidecode-14"),
        ("BNO1234", "DE", "DE-standard"),
        ("HRKV4821", "DE", "DE-standard"),
        ("MAB12E", "DE", "DE-electric"),
        ("KAB12H", "DE", "DE-historic"),
        ("AB123CD", "FR", "FR-SIV"),
        ("1234AB75", "FR", "FR-FNI"),
        ("LM2047", "LU", "LU-standard"),
        ("123456", "LU", "LU-numeric"),
        # the camera's country is a hint: a Belgian plate read as "NL" still gets its format
        ("1ABC123", "NL", "BE-current"),
        # an unknown country falls back to the known formats
        ("AB123CD", "PL", "FR-SIV"),
        # fits nothing: no format, but never a rejection
        ("1A8C1Z3", "BE", None),
        ("X", None, None),
    ],
)
def test_plate_format(plate: str, country: str | None, expected: str | None) -> None:
    assert plate_format(plate, country) == expected


def test_nl_sidecodes_from_4_use_no_vowels() -> None:
    assert "NL-sidecode-4" not in plate_formats("AB12CD", "NL")
    assert "FR-SIV" not in plate_formats("AI123CD", "FR")


def test_ambiguous_plate_lists_every_fitting_format_country_first() -> None:
    assert plate_formats("AB1234", "LU")[0] == "LU-standard"
    assert set(plate_formats("AB1234")) >= {"NL-sidecode-1", "LU-standard", "DE-standard"}


@pytest.mark.parametrize("seed", range(20))
def test_synthetic_candidates_are_distinct_near_variants_with_falling_confidence(seed: int) -> None:
    rng = random.Random(seed)
    plate = normalise(synthetic_plate(rng, "BE"))
    found = synthetic_candidates(rng, plate, 5, 0.9)
    texts = [text for text, _ in found]
    confidences = [c for _, c in found]
    assert 3 <= len(found) <= 5 and len(set(texts)) == len(texts) and plate not in texts
    assert all(1 <= Levenshtein.distance(plate, text) <= 2 for text in texts)
    assert confidences == sorted(confidences, reverse=True) and all(0 < c < 0.9 for c in confidences)
    assert synthetic_candidates(random.Random(seed), plate, 0, 0.9) == []
