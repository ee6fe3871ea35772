"""Random plates as printed, in the real formats of the countries seen in the zone (BE, NL, DE, FR, LU)."""

from __future__ import annotations

import random
from bisect import bisect
from itertools import accumulate

# Share of reads by plate country in the zone (border with Maastricht: Dutch plates are the largest foreign share).
COUNTRY_MIX: dict[str, float] = {"BE": 0.65, "NL": 0.20, "DE": 0.08, "FR": 0.04, "LU": 0.03}

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Dutch sidecodes 4 and later: no vowels, and C and Q are unused because they look like 0.
_NL_LETTERS = "BDFGHJKLMNPRSTVXZ"
# French SIV leaves out I, O and U (confusable with 1, 0 and V).
_FR_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"
_DIGITS = "0123456789"

# Templates as printed. L letter, C Dutch consonant, F French SIV letter, D digit, N digit 1-9, literal otherwise.
# Belgium: `1-ABC-123` since 2010, first digit 2 since 2021; `ABC-123` (1973-2008) and `123-ABC` (2008-2010) are
# still on the road; T taxi and M motorcycle category plates.
TEMPLATES: dict[str, tuple[tuple[str, float], ...]] = {
    "BE": (
        ("1-LLL-DDD", 0.58),
        ("2-LLL-DDD", 0.22),
        ("LLL-DDD", 0.08),
        ("DDD-LLL", 0.09),
        ("T-LLL-DDD", 0.01),
        ("M-LLL-DDD", 0.02),
    ),
    # Sidecodes 4-14, weighted roughly by how many are still registered.
    "NL": (
        ("CC-DD-CC", 0.04),
        ("CC-CC-DD", 0.06),
        ("DD-CC-CC", 0.10),
        ("DD-CCC-D", 0.17),
        ("D-CCC-DD", 0.17),
        ("CC-DDD-C", 0.13),
        ("C-DDD-CC", 0.13),
        ("CCC-DD-C", 0.08),
        ("C-DD-CCC", 0.06),
        ("D-CC-DDD", 0.05),
        ("DDD-CC-D", 0.01),
    ),
    "FR": (("FF-NDD-FF", 1.0),),
    "LU": (("LL NDDD", 0.85), ("NDDDD", 0.10), ("NDDDDD", 0.05)),
}

# German district codes, the neighbouring Rhineland first (Aachen, Heinsberg, Düren, Cologne...).
DE_DISTRICTS: tuple[tuple[str, float], ...] = (
    ("AC", 0.22),
    ("HS", 0.12),
    ("DN", 0.06),
    ("K", 0.10),
    ("D", 0.06),
    ("MG", 0.05),
    ("NE", 0.05),
    ("VIE", 0.04),
    ("KLE", 0.03),
    ("EU", 0.03),
    ("BN", 0.04),
    ("E", 0.03),
    ("DU", 0.03),
    ("B", 0.04),
    ("M", 0.03),
    ("F", 0.03),
    ("GL", 0.02),
    ("KR", 0.02),
)

_CLASSES = {"L": _LETTERS, "C": _NL_LETTERS, "F": _FR_LETTERS, "D": _DIGITS, "N": "123456789"}


def _cumulative(pairs: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], list[float]]:
    return tuple(p for p, _ in pairs), list(accumulate(w for _, w in pairs))


_TEMPLATE_CUM = {country: _cumulative(pairs) for country, pairs in TEMPLATES.items()}
_DISTRICT_CUM = _cumulative(DE_DISTRICTS)
_COUNTRY_CUM = _cumulative(tuple(COUNTRY_MIX.items()))


def pick(rng: random.Random, table: tuple[tuple[str, ...], list[float]]) -> str:
    """One value of a (values, cumulative weights) table; cheaper than rng.choices for one draw."""
    values, cum = table
    return values[bisect(cum, rng.random() * cum[-1])]


def random_country(rng: random.Random) -> str:
    return pick(rng, _COUNTRY_CUM)


def _from_template(rng: random.Random, template: str) -> str:
    rnd = rng.random
    out = []
    for c in template:
        alphabet = _CLASSES.get(c)
        out.append(alphabet[int(rnd() * len(alphabet))] if alphabet is not None else c)
    return "".join(out)


def _german(rng: random.Random, suffix_rate: float = 0.03) -> str:
    # District + 1-2 letters + 1-4 digits (no leading 0), at most 8 characters; E electric / H historic suffix.
    district = pick(rng, _DISTRICT_CUM)
    letters = _from_template(rng, "L" if rng.random() < 0.35 else "LL")
    room = 8 - len(district) - len(letters)
    digits = _from_template(rng, "N" + "D" * rng.randrange(min(4, room)))
    suffix = ("E" if rng.random() < 0.7 else "H") if rng.random() < suffix_rate else ""
    return f"{district}-{letters} {digits}{suffix}"


def random_plate(rng: random.Random, country: str, template: str | None = None) -> str:
    """One plate of `country` as printed with its separators, e.g. `1-ABC-123`, `AC-XY 123`, `AB-123-CD`."""
    if country == "DE":
        return _german(rng)
    return _from_template(rng, template if template is not None else pick(rng, _TEMPLATE_CUM[country]))


def compact(plate: str) -> str:
    """A printed plate without separators, uppercase (the generator's plates are plain ASCII)."""
    return plate.replace("-", "").replace(" ", "").upper()
