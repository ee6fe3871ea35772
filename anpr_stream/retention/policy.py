"""Retention presets per jurisdiction (pure: the caller passes `now`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetentionPolicy:
    name: str
    passages: timedelta  # non-hit passages
    hits: timedelta
    outcomes: timedelta
    audit: timedelta
    open_access: timedelta  # younger data: any justified police purpose

    def passage_horizon(self, now: datetime) -> datetime:
        """Reads observed before this instant are past retention: never stored (late replays), purged if held."""
        return now - self.passages

    def hit_horizon(self, now: datetime) -> datetime:
        return now - self.hits


_DAY = timedelta(days=1)

PRESETS: dict[str, RetentionPolicy] = {
    # Belgium, Police Function Act (2018): at most 12 months; after the first month only judicial purposes with a
    # written, reasoned decision of the procureur des Konings.
    "be": RetentionPolicy("be", passages=365 * _DAY, hits=365 * _DAY, outcomes=365 * _DAY, audit=5 * 365 * _DAY,
                          open_access=30 * _DAY),
    # Netherlands: 28 days; the prosecutor approves every query (no open window).
    "nl": RetentionPolicy("nl", passages=28 * _DAY, hits=28 * _DAY, outcomes=28 * _DAY, audit=5 * 365 * _DAY,
                          open_access=0 * _DAY),
    # UK forces: 90 days open, up to 12 months with senior authorisation.
    "uk": RetentionPolicy("uk", passages=365 * _DAY, hits=365 * _DAY, outcomes=365 * _DAY, audit=5 * 365 * _DAY,
                          open_access=90 * _DAY),
}  # fmt: skip


def preset(name: str) -> RetentionPolicy:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown retention preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None
