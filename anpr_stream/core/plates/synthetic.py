"""Synthetic plates in the zone's traffic formats, and an OCR engine's candidates for them: for false-hit estimates,
benchmarks and tests."""

from __future__ import annotations

import random
from collections.abc import Mapping

from anpr_stream.core.plates.confusion import CONFUSION_CLASSES

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


# Characters an OCR engine takes for one another (DOMAIN.md, confusions seen in the field): the confusion classes the
# matcher folds, and pairs it does not fold (U/V, 7/Z), so that synthetic candidates also reach beyond the classes.
LOOKALIKE_GROUPS: tuple[str, ...] = (*CONFUSION_CLASSES, "UV", "7Z")
_LOOKALIKES: dict[str, str] = {
    c: "".join(g.replace(c, "") for g in LOOKALIKE_GROUPS if c in g) for c in "".join(LOOKALIKE_GROUPS)
}
_PLATE_ALPHABET = _CLASSES["L"] + _CLASSES["D"]
# How an engine's alternative differs from its best reading (a rough model, to size the cost of matching them):
# mostly one character taken for a lookalike, sometimes any other character (dirt, a bolt), sometimes one lost.
_LOOKALIKE_SHARE = 0.7
_DELETION_SHARE = 0.1
# Each rank's confidence is the previous one's times a factor drawn from this range.
_CONFIDENCE_DECAY = (0.6, 0.95)


def _variant(rng: random.Random, plate: str) -> str:
    position = rng.randrange(len(plate))
    draw = rng.random()
    if draw < _DELETION_SHARE and len(plate) > 1:
        return plate[:position] + plate[position + 1 :]
    lookalikes = _LOOKALIKES.get(plate[position], "")
    if lookalikes and draw < _DELETION_SHARE + _LOOKALIKE_SHARE:
        replacement = rng.choice(lookalikes)
    else:
        replacement = rng.choice(_PLATE_ALPHABET.replace(plate[position], ""))
    return plate[:position] + replacement + plate[position + 1 :]


def synthetic_candidates(rng: random.Random, plate: str, count: int, confidence: float) -> list[tuple[str, float]]:
    """An engine's top-`count` alternative readings of a normalised plate read with `confidence`, best first, with
    falling confidences: each one or two characters away from the plate, distinct from it and from each other."""
    found: dict[str, float] = {}
    for _ in range(count * 4):  # a few draws repeat one another or the plate
        if len(found) == count:
            break
        text = _variant(rng, plate)
        if rng.random() < 0.2:  # now and then a second character misread too
            text = _variant(rng, text)
        if text != plate and text not in found:
            confidence *= rng.uniform(*_CONFIDENCE_DECAY)
            found[text] = round(confidence, 3)
    return list(found.items())
