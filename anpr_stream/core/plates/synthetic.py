"""Synthetic plates in the zone's traffic formats: for false-hit estimates, benchmarks and tests."""

from __future__ import annotations

import random
from collections.abc import Mapping

# Border zone next to Maastricht: mostly Belgian and Dutch plates, some German, few French and Luxembourgish.
ZONE_TRAFFIC_MIX: dict[str, float] = {"BE": 0.55, "NL": 0.35, "DE": 0.05, "FR": 0.03, "LU": 0.02}

# Templates as printed: L letter, C Dutch consonant, F French SIV letter, D digit, N digit 1-9; other characters
# are literal. Weights roughly follow how many such plates are on the road.
TEMPLATES: dict[str, tuple[tuple[str, float], ...]] = {
    "BE": (("N-LLL-DDD", 0.75), ("LLL-DDD", 0.15), ("DDD-LLL", 0.08), ("T-LLL-DDD", 0.02)),
    "NL": (
        ("DD-CCC-D", 0.20),
        ("D-CCC-DD", 0.15),
        ("CC-DDD-C", 0.10),
        ("C-DDD-CC", 0.15),
        ("CCC-DD-C", 0.10),
        ("C-DD-CCC", 0.10),
        ("D-CC-DDD", 0.10),
        ("DD-CCCC", 0.05),
        ("CC-DD-CC", 0.05),
    ),
    "DE": (("LL-LL ND", 0.3), ("L-LL NDD", 0.3), ("LLL-L NDDD", 0.2), ("LL-L NDDE", 0.1), ("L-LL NDH", 0.1)),
    "FR": (("FF-DDD-FF", 1.0),),
    "LU": (("LL DDDD", 0.9), ("NDDDD", 0.1)),
}

_CLASSES = {
    "L": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "C": "BDFGHJKLMNPRSTVXZ",
    "F": "ABCDEFGHJKLMNPQRSTVWXYZ",
    "D": "0123456789",
    "N": "123456789",
}


def synthetic_plate(rng: random.Random, country: str) -> str:
    """One random plate of a country, as printed (with separators)."""
    templates = TEMPLATES[country]
    template = rng.choices([t for t, _ in templates], weights=[w for _, w in templates])[0]
    return "".join(rng.choice(_CLASSES[c]) if c in _CLASSES else c for c in template)


def synthetic_traffic(
    rng: random.Random, count: int, mix: Mapping[str, float] = ZONE_TRAFFIC_MIX
) -> list[tuple[str, str]]:
    """`count` (plate, country) pairs drawn from a traffic mix of countries."""
    countries = rng.choices(list(mix), weights=list(mix.values()), k=count)
    return [(synthetic_plate(rng, c), c) for c in countries]
