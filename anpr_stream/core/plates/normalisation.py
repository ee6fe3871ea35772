"""Plate normalisation: the one canonical spelling every comparison starts from (contract step 1)."""

from __future__ import annotations

import unicodedata

from anpr_stream.core import accel

# Cyrillic and Greek capitals that print like a Latin letter. Plates imported from other systems (and some OCR
# engines) carry them; without this map "АВ1234" (Cyrillic) silently never meets "AB1234". Lowercase forms need no
# entry: normalisation uppercases first.
HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "А": "A",
    "В": "B",
    "С": "C",
    "Е": "E",
    "Н": "H",
    "І": "I",
    "Ј": "J",
    "К": "K",
    "М": "M",
    "О": "O",
    "Р": "P",
    "Ѕ": "S",
    "Т": "T",
    "У": "Y",
    "Ү": "Y",
    "Х": "X",
    "Ԛ": "Q",
    "Ԝ": "W",
    # Greek
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    "Ϲ": "C",
    "Ϳ": "J",
}

_PLATE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_WILDCARDS = frozenset("?*")
_HOMOGLYPH_TABLE = str.maketrans(HOMOGLYPHS)

# ASCII fast path: NFKC leaves ASCII unchanged and no ASCII character is a homoglyph, so uppercasing and dropping
# everything outside A-Z0-9 is one bytes.translate call.
_ASCII_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_DROP = bytes(b for b in range(256) if chr(b) not in _PLATE_CHARS and not chr(b).islower())
_ASCII_DROP_PATTERN = bytes(b for b in _ASCII_DROP if chr(b) not in _WILDCARDS)


def normalise(raw: str) -> str:
    """NFKC, uppercase, homoglyphs to Latin, then keep only A-Z and 0-9."""
    fast = accel.native
    if fast is not None and (done := fast.normalise(raw)) is not None:  # ASCII only: the rest is the reference's
        return done
    if raw.isascii():
        return raw.encode("ascii").translate(_ASCII_UPPER, _ASCII_DROP).decode("ascii")
    text = unicodedata.normalize("NFKC", raw).upper().translate(_HOMOGLYPH_TABLE)
    return "".join(c for c in text if c in _PLATE_CHARS)


def normalise_pattern(raw: str) -> str:
    """Like `normalise` but keeps the wildcards `?` (one character) and `*` (any run); runs of `*` collapse."""
    if raw.isascii():
        text = raw.encode("ascii").translate(_ASCII_UPPER, _ASCII_DROP_PATTERN).decode("ascii")
    else:
        text = unicodedata.normalize("NFKC", raw).upper().translate(_HOMOGLYPH_TABLE)
        text = "".join(c for c in text if c in _PLATE_CHARS or c in _WILDCARDS)
    while "**" in text:
        text = text.replace("**", "*")
    return text


def is_pattern(raw: str) -> bool:
    """Whether a watchlist plate is a partial plate with wildcards."""
    return "?" in raw or "*" in raw
