"""Watchlist statistics: what the lists hold and what fuzzy matching would cost in false hits on ordinary traffic."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.plates.synthetic import ZONE_TRAFFIC_MIX, synthetic_traffic
from anpr_stream.core.policy import MatchPolicy


@dataclass
class ListStats:
    entries: int = 0
    patterns: int = 0
    covert: int = 0
    expired: int = 0
    not_yet_valid: int = 0
    # Reads of synthetic traffic that raised at least one hit of each kind on this list.
    traffic_hits: Counter[str] = field(default_factory=Counter)

    @property
    def active(self) -> int:
        return self.entries - self.expired - self.not_yet_valid


def list_stats(entries: Iterable[WatchlistEntry], at: datetime) -> dict[str, ListStats]:
    """Counts per list, validity judged at `at`."""
    stats: dict[str, ListStats] = {}
    for entry in entries:
        s = stats.setdefault(entry.list, ListStats())
        s.entries += 1
        s.patterns += entry.is_pattern
        s.covert += entry.covert
        if entry.valid_until is not None and entry.valid_until <= at:
            s.expired += 1
        elif entry.valid_from is not None and entry.valid_from > at:
            s.not_yet_valid += 1
    return dict(sorted(stats.items()))


def estimate_false_hits(
    index: WatchlistIndex,
    stats: dict[str, ListStats],
    policy: MatchPolicy,
    at: datetime,
    samples: int,
    seed: int,
    mix: Mapping[str, float] = ZONE_TRAFFIC_MIX,
) -> None:
    """Run `samples` synthetic plates of the traffic mix through the index; count per list the reads with an
    ocr, fuzzy or pattern hit. A synthetic plate equal to an entry is a true hit of that car, so exact hits are
    counted apart and never as false."""
    rng = random.Random(seed)
    for plate, _ in synthetic_traffic(rng, samples, mix):
        kinds: dict[str, set[str]] = {}
        for match in index.match(plate, at, policy):
            kinds.setdefault(match.entry.list, set()).add(match.kind)
        for list_name, raised in kinds.items():
            stats.setdefault(list_name, ListStats()).traffic_hits.update(raised)
