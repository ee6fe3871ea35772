"""Watchlist statistics: what the lists hold and what fuzzy and OCR-candidate matching would cost in false hits on
ordinary traffic."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.core.matching import WatchlistIndex, match_read
from anpr_stream.core.plates import normalise
from anpr_stream.core.plates.synthetic import ZONE_TRAFFIC_MIX, synthetic_candidates, synthetic_traffic
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Candidate

# Confidence of the engine's best reading in synthetic traffic (its candidates' confidences fall from it).
BEST_CONFIDENCE = (0.75, 0.99)


@dataclass
class ListStats:
    entries: int = 0
    patterns: int = 0
    covert: int = 0
    expired: int = 0
    not_yet_valid: int = 0
    # Reads of synthetic traffic that raised at least one hit of each kind on this list.
    traffic_hits: Counter[str] = field(default_factory=Counter)
    # Reads whose OCR candidates raised hits on this list beyond the best plate's, per kind of the candidates' matches
    # ("any": at least one). Every one is false: the best reading of synthetic traffic is the car's plate.
    candidate_hits: Counter[str] = field(default_factory=Counter)

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
    """Run `samples` synthetic plates of the traffic mix through the matcher; count per list the reads with an
    ocr, fuzzy or pattern hit. A synthetic plate equal to an entry is a true hit of that car, so exact hits are
    counted apart and never as false. When the policy matches OCR candidates on some list, each read also carries
    as many synthetic candidates (core/plates/synthetic.py: lookalike characters, falling confidences), and the hits
    only they raise are counted per list apart, exact ones included (they are another car's plate)."""
    rng = random.Random(seed)
    traffic = synthetic_traffic(rng, samples, mix)
    wanted = policy.max_candidates
    # Their own stream: the traffic drawn for a seed is the same whether candidates are matched or not.
    candidate_rng = random.Random(f"{seed}-candidates")
    for plate, _ in traffic:
        candidates: tuple[Candidate, ...] = ()
        if wanted:
            norm = normalise(plate)
            confidence = candidate_rng.uniform(*BEST_CONFIDENCE)
            candidates = tuple(
                Candidate(text, text, c) for text, c in synthetic_candidates(candidate_rng, norm, wanted, confidence)
            )
        kinds: dict[str, set[str]] = {}
        by_candidate: dict[str, set[str]] = {}
        for match in match_read(index, plate, candidates, at, policy):
            raised = kinds if match.candidate is None else by_candidate
            raised.setdefault(match.entry.list, set()).add(match.kind)
        for list_name, raised_kinds in kinds.items():
            stats.setdefault(list_name, ListStats()).traffic_hits.update(raised_kinds)
        for list_name, raised_kinds in by_candidate.items():
            stats.setdefault(list_name, ListStats()).candidate_hits.update({*raised_kinds, "any"})
