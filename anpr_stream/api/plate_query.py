"""Plate search terms (pure): what an investigator types becomes a normalised plate, a confusion class, a LIKE
pattern, or LIKE patterns that no plate within a Levenshtein distance can escape; and keyset cursors.

Fuzzy candidates (pigeonhole): cut the searched form into d+1 non-empty pieces. d edits (insertions, deletions,
substitutions) touch at most d pieces, so every plate within distance d keeps one piece intact: it starts with the
first piece, ends with the last, or contains a middle one. `fuzzy_like_patterns` returns those d+1 LIKE patterns;
the trigram index serves each one that holds a trigram, and the exact distance is verified afterwards. Nothing
within distance d is missed (tests/unit/test_api_plate_query.py checks this against brute force); what the cut
decides is only how many candidates the index returns.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from itertools import combinations, pairwise

from anpr_stream.core.plates import confusion_form, normalise, normalise_pattern

# As in the live matcher (matching.segment.MIN_FUZZY_LENGTH): shorter plates are near far too much traffic.
MIN_FUZZY_LENGTH = 5
MAX_FUZZY_DISTANCE = 2
# A wildcard search names at least this many characters: "1*" would return most of the traffic.
MIN_WILDCARD_LITERALS = 3
MAX_PLATE_INPUT = 32
# Letters and digits left after confusion classes are merged (36 - 9): a rough odds of one character matching.
_CLASS_ALPHABET = 27


class SearchMode(StrEnum):
    EXACT = "exact"  # the normalised plate
    OCR = "ocr"  # the confusion class: 0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, 6/G are one character
    FUZZY = "fuzzy"  # within a Levenshtein distance of the confusion class (as the live matcher's fuzzy hits)
    WILDCARD = "wildcard"  # `?` one character, `*` any run, on the normalised plate


class InvalidQuery(ValueError):
    """A search term that cannot be run; the message is the reason given to the caller."""


def plate_term(raw: str) -> str:
    """The normalised plate of a search or path parameter; InvalidQuery when nothing is left."""
    if len(raw) > MAX_PLATE_INPUT:
        raise InvalidQuery(f"plate is longer than {MAX_PLATE_INPUT} characters")
    normalised = normalise(raw)
    if not normalised:
        raise InvalidQuery(f"plate {raw!r} has no letters or digits")
    return normalised


def like_pattern(raw: str) -> str:
    """A wildcard plate (`?` one character, `*` any run) as a LIKE pattern on normalised plates (escape `\\`)."""
    if len(raw) > MAX_PLATE_INPUT:
        raise InvalidQuery(f"pattern is longer than {MAX_PLATE_INPUT} characters")
    pattern = normalise_pattern(raw)
    check_literals(pattern, raw, "a wildcard search")
    return wildcards_to_like(pattern)


def check_literals(pattern: str, raw: str, what: str) -> None:
    """InvalidQuery unless the (normalised) pattern names MIN_WILDCARD_LITERALS letters or digits: `1*` or `??5*`
    would pull most of the traffic (plate search, retroactive hits of a partial plate alike)."""
    literals = len(pattern) - pattern.count("?") - pattern.count("*")
    if literals < MIN_WILDCARD_LITERALS:
        raise InvalidQuery(f"{what} needs at least {MIN_WILDCARD_LITERALS} letters or digits, {raw!r} has {literals}")


def wildcards_to_like(pattern: str) -> str:
    """`?` -> `_`, `*` -> `%`; LIKE's own metacharacters are escaped (normalised plates never hold them, but a
    pattern must not depend on that)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("?", "_").replace("*", "%")


def fuzzy_form(normalised: str, distance: int) -> str:
    """The confusion form a fuzzy search compares; InvalidQuery for distances or plates it does not support."""
    if not 1 <= distance <= MAX_FUZZY_DISTANCE:
        raise InvalidQuery(f"fuzzy distance must be from 1 to {MAX_FUZZY_DISTANCE}, got {distance}")
    if len(normalised) < MIN_FUZZY_LENGTH:
        raise InvalidQuery(
            f"a fuzzy search needs a plate of at least {MIN_FUZZY_LENGTH} characters ({normalised!r} has "
            f"{len(normalised)}): shorter plates are near too much traffic; use a wildcard search"
        )
    return confusion_form(normalised)


def _expected_share(pieces: list[str]) -> float:
    """Rough share of plates a set of piece patterns lets through the trigram index (lower is better). pg_trgm
    pads a word with two blanks in front and one behind, so an anchored first piece of one character still has a
    trigram and a last piece needs two; a middle piece needs three, else its pattern scans the whole window."""
    share = 0.0
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        length = len(piece)
        if i == 0:
            share += _CLASS_ALPHABET**-length
        elif i == last:
            share += _CLASS_ALPHABET**-length if length >= 2 else 1.0
        else:
            share += 8 * _CLASS_ALPHABET**-length if length >= 3 else 1.0
    return share


def fuzzy_like_patterns(form: str, distance: int) -> list[str]:
    """LIKE patterns, one per piece, such that every string within `distance` edits of `form` matches one.
    Needs len(form) > distance (every piece non-empty)."""
    if len(form) <= distance:
        raise ValueError(f"{form!r} is too short to be cut into {distance + 1} pieces")
    best: list[str] | None = None
    for cuts in combinations(range(1, len(form)), distance):
        bounds = (0, *cuts, len(form))
        pieces = [form[a:b] for a, b in pairwise(bounds)]
        if best is None or _expected_share(pieces) < _expected_share(best):
            best = pieces
    assert best is not None
    escaped = [wildcards_to_like(p) for p in best]
    last = len(escaped) - 1
    return [
        f"{p}%" if i == 0 else f"%{p}" if i == last else f"%{p}%"
        for i, p in enumerate(escaped)
    ]  # fmt: skip


def encode_cursor(observed_at: datetime, read_id: str) -> str:
    """An opaque keyset cursor: the last row's (observed_at, read_id)."""
    return base64.urlsafe_b64encode(json.dumps([observed_at.isoformat(), read_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (observed_at, read_id) of a cursor this API handed out; InvalidQuery otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, read_id = data
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or not isinstance(read_id, str):
            raise ValueError(cursor)
        return parsed, read_id
    except (ValueError, TypeError, binascii.Error):  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidQuery(f"cursor {cursor!r} is not one this API handed out") from None
