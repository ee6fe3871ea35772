"""Which watchlist entries are due for a tombstone: those whose validity ended more than a grace period ago (pure;
publishing the tombstones is `anpr_stream.stream.watchlist_expiry`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from anpr_stream.core.entry import WatchlistEntry

# A read is matched against the entries that applied when the plate was seen, and reads arrive late (a camera's
# spool after a network cut, a replay): an entry stays on the topic this long after its validity ended so that such
# reads still hit it. ANPR_WATCHLIST_EXPIRY_GRACE_HOURS.
DEFAULT_GRACE = timedelta(hours=24)


def expired(entries: Iterable[WatchlistEntry], now: datetime, grace: timedelta = DEFAULT_GRACE) -> list[WatchlistEntry]:
    """Entries whose `valid_until` is at least `grace` before `now`, by entry id; open-ended entries never expire."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    cutoff = now - grace
    return sorted((e for e in entries if e.valid_until is not None and e.valid_until <= cutoff),
                  key=lambda e: e.entry_id)  # fmt: skip
