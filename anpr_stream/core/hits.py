"""A hit: one passage matched by one watchlist entry, with its alert decision (pending until decided)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from anpr_stream.core.batch import Passage
from anpr_stream.core.identity import hit_id
from anpr_stream.core.matching import Match


@dataclass(slots=True)
class Hit:
    hit_id: str
    passage: Passage
    match: Match
    dispatch: bool  # per-list policy: False = log-only
    suppressed: bool | None = False  # None: pending, waiting for the watermark
    payload: bytes = b""  # as published on anpr.hits and stored in hits.payload (set with the decision)

    @property
    def key(self) -> tuple[str, str]:
        """Repeat-suppression key: the confusion-class plate (so OCR jitter between reads of one car does not
        re-alert) and the entry."""
        return (self.passage.plate_class, self.match.entry.entry_id)

    @property
    def observed_at(self) -> datetime:
        return self.passage.reading.observed_at


def hits_of(passages: list[Passage], dispatch_of: Callable[[str], bool]) -> list[Hit]:
    """Every (passage, match) pair as a Hit, in observed_at order (suppression decides in that order)."""
    hits = [
        Hit(str(hit_id(p.passage_id, m.entry.entry_id)), p, m, dispatch_of(m.entry.list))
        for p in passages
        for m in p.matches
    ]
    hits.sort(key=lambda h: (h.observed_at, h.hit_id))
    return hits
