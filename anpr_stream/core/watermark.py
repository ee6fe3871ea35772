"""The event-time watermark of the consumer group: the time up to which every input partition is stored.

Reads of one vehicle come from several cameras, hence from several partitions owned by different workers. A hit is
dispatched only when no hit of the same vehicle and entry precedes it within the suppression window; that is known
only once every partition has been stored past the hit's time. Each owner records per partition the latest
observed_at it stored (table read_progress, in the transaction that stores the reads); the watermark is the least of
them. A partition with nothing left to read does not hold it back while its owner keeps that claim fresh (an idle
claim older than the TTL is ignored: its owner may be dead, and the partition counts again with what it stored).
A partition nobody has claimed yet holds everything. Pure functions here; the SQL is in sinks/progress.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

NOTHING = datetime.min.replace(tzinfo=UTC)  # no partition may be assumed stored: every alert waits
COMPLETE = datetime.max.replace(tzinfo=UTC)  # every partition idle: nothing can precede any stored hit


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    partition: int
    observed_upto: datetime | None  # the latest observed_at stored from the partition
    idle_since: datetime | None  # its owner found nothing left to read
    claimed_at: datetime  # when the owner last wrote the row (database clock)


def watermark(rows: Iterable[PartitionProgress], partitions: int, now: datetime, idle_ttl: timedelta) -> datetime:
    """Every partition is stored up to the result: a hit observed at or before it has all its predecessors stored
    (partitions deliver reads in event-time order). `now`: the database's clock, the same clock as `claimed_at`."""
    return holding(rows, partitions, now, idle_ttl)[0]


def holding(
    rows: Iterable[PartitionProgress], partitions: int, now: datetime, idle_ttl: timedelta
) -> tuple[datetime, int | None]:
    """The watermark and the partition that holds it there (None when every partition is idle): for the operator
    when alerts wait long (a stalled owner, a camera whose clock runs behind alone on its partition)."""
    by_partition = {row.partition: row for row in rows}
    low, holder = COMPLETE, None
    for partition in range(partitions):
        row = by_partition.get(partition)
        if row is None:
            return NOTHING, partition
        if row.idle_since is not None and now - row.claimed_at < idle_ttl:
            continue
        if row.observed_upto is None:
            return NOTHING, partition
        if row.observed_upto < low:
            low, holder = row.observed_upto, partition
    return low, holder
