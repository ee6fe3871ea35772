"""Known plate formats of the zone's traffic (BE, NL, DE, FR, LU), on normalised plates without separators.

A format says how plausible a read is; it never rejects one: foreign, personalised, diplomatic and trade plates
are real and must still be matched.
"""

from __future__ import annotations

import re

# Dutch sidecodes 4 and later use no vowels and never C or Q (they look like 0); older sidecodes use any letter.
_NL_LETTER = "[BDFGHJKLMNPRSTVXZ]"
# French SIV leaves out I, O and U (confusable with 1, 0 and V).
_FR_LETTER = "[A-HJ-NP-TV-Z]"

# Order matters only for plates that fit several formats: the first fitting one in a country wins.
FORMATS: dict[str, tuple[tuple[str, str], ...]] = {
    "BE": (
        ("BE-current", "[1-9][A-Z]{3}[0-9]{3}"),
        ("BE-category", "[MWOQT][A-Z]{3}[0-9]{3}"),
        ("BE-1973", "[A-Z]{3}[0-9]{3}"),
        ("BE-2008", "[0-9]{3}[A-Z]{3}"),
    ),
    "NL": (
        ("NL-sidecode-1", "[A-Z]{2}[0-9]{4}"),
        ("NL-sidecode-2", "[0-9]{4}[A-Z]{2}"),
        ("NL-sidecode-3", "[0-9]{2}[A-Z]{2}[0-9]{2}"),
        ("NL-sidecode-4", f"{_NL_LETTER}{{2}}[0-9]{{2}}{_NL_LETTER}{{2}}"),
        ("NL-sidecode-5", f"{_NL_LETTER}{{4}}[0-9]{{2}}"),
        ("NL-sidecode-6", f"[0-9]{{2}}{_NL_LETTER}{{4}}"),
        ("NL-sidecode-7", f"[0-9]{{2}}{_NL_LETTER}{{3}}[0-9]"),
        ("NL-sidecode-8", f"[0-9]{_NL_LETTER}{{3}}[0-9]{{2}}"),
        ("NL-sidecode-9", f"{_NL_LETTER}{{2}}[0-9]{{3}}{_NL_LETTER}"),
        ("NL-sidecode-10", f"{_NL_LETTER}[0-9]{{3}}{_NL_LETTER}{{2}}"),
        ("NL-sidecode-11", f"{_NL_LETTER}{{3}}[0-9]{{2}}{_NL_LETTER}"),
        ("NL-sidecode-12", f"{_NL_LETTER}[0-9]{{2}}{_NL_LETTER}{{3}}"),
        ("NL-sidecode-13", f"[0-9]{_NL_LETTER}{{2}}[0-9]{{3}}"),
        ("NL-sidecode-14", f"[0-9]{{3}}{_NL_LETTER}{{2}}[0-9]"),
    ),
    "DE": (
        # District (1-3 letters) + 1-2 letters + 1-4 digits, at most 8 characters; E electric, H historic.
        ("DE-electric", "(?=.{3,9}$)[A-Z]{2,5}[1-9][0-9]{0,3}E"),
        ("DE-historic", "(?=.{3,9}$)[A-Z]{2,5}[1-9][0-9]{0,3}H"),
        ("DE-standard", "(?=.{3,8}$)[A-Z]{2,5}[1-9][0-9]{0,3}"),
    ),
    "FR": (
        ("FR-SIV", f"{_FR_LETTER}{{2}}[0-9]{{3}}{_FR_LETTER}{{2}}"),
        ("FR-FNI", "[0-9]{1,4}[A-Z]{1,3}(?:[0-9]{2}|2A|2B|97[1-6])"),
    ),
    "LU": (
        ("LU-standard", "[A-Z]{2}[0-9]{4}"),
        ("LU-numeric", "[1-9][0-9]{0,5}"),
    ),
}

COUNTRIES: tuple[str, ...] = tuple(FORMATS)

_COMPILED: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    country: tuple((name, re.compile(regex)) for name, regex in formats) for country, formats in FORMATS.items()
}


def plate_formats(normalised: str, country: str | None = None) -> tuple[str, ...]:
    """Every known format the plate fits, the given country's first (camera country is only a hint)."""
    order = [country] if country in _COMPILED else []
    order += [c for c in COUNTRIES if c != country]
    return tuple(name for c in order for name, regex in _COMPILED[c] if regex.fullmatch(normalised) is not None)


def _in_order(country: str | None) -> tuple[tuple[str, str], ...]:
    """Every format, the given country's first: the order in which the first fitting one wins."""
    first = [country] if country in FORMATS else []
    return tuple(f for c in first + [c for c in COUNTRIES if c != country] for f in FORMATS[c])


def _alternation(formats: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """One regex of every format in order, each its own group: `fullmatch` backtracks through the alternatives in
    order, so the group that matched (`lastindex`: the outermost group closes last) is the first format that fits.
    One C call per read where the loop of `plate_formats` made up to 24 (3 us a read when none fits)."""
    regex = re.compile("|".join(f"({pattern})" for _, pattern in formats))
    if regex.groups != len(formats):
        raise ValueError("a plate format holds a capturing group: write it (?:...)")
    return regex, tuple(name for name, _ in formats)


_FIRST_FIT: dict[str | None, tuple[re.Pattern[str], tuple[str, ...]]] = {
    country: _alternation(_in_order(country)) for country in (None, *COUNTRIES)
}


def plate_format(normalised: str, country: str | None = None) -> str | None:
    """The most plausible known format of a normalised plate, or None when it fits none."""
    regex, names = _FIRST_FIT.get(country) or _FIRST_FIT[None]
    found = regex.fullmatch(normalised)
    return None if found is None or found.lastindex is None else names[found.lastindex - 1]
