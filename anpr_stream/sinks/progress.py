"""Per input partition, how far its reads are stored (table read_progress, migration 0007): written by the
partition's owner, read by every worker to compute the watermark (stream/watermark.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import asyncpg

from anpr_stream.core.watermark import PartitionProgress, holding

# A write is refused when the row was last written by a newer consumer-group generation: a worker that lost the
# partition in a rebalance (a zombie, frozen past its session timeout) cannot claim it idle for its new owner.
_STORED = """
INSERT INTO read_progress AS p (consumer_group, topic, partition, observed_upto, idle_since, claimed_at, generation)
SELECT $1, $2, k.partition, k.upto, NULL, clock_timestamp(), $5
FROM unnest($3::integer[], $4::timestamptz[]) AS k(partition, upto)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
SET observed_upto = GREATEST(p.observed_upto, EXCLUDED.observed_upto), idle_since = NULL,
    claimed_at = EXCLUDED.claimed_at, generation = EXCLUDED.generation
WHERE p.generation <= EXCLUDED.generation
"""
_IDLE = """
INSERT INTO read_progress AS p (consumer_group, topic, partition, observed_upto, idle_since, claimed_at, generation)
SELECT $1, $2, k.partition, NULL, clock_timestamp(), clock_timestamp(), $4
FROM unnest($3::integer[]) AS k(partition)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
SET idle_since = COALESCE(p.idle_since, EXCLUDED.idle_since), claimed_at = EXCLUDED.claimed_at,
    generation = EXCLUDED.generation
WHERE p.generation <= EXCLUDED.generation
"""
_TAKEN_OVER = """
INSERT INTO read_progress AS p (consumer_group, topic, partition, observed_upto, idle_since, claimed_at, generation)
VALUES ($1, $2, $3, NULL, NULL, clock_timestamp(), $4)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
SET idle_since = NULL, claimed_at = EXCLUDED.claimed_at, generation = EXCLUDED.generation
"""  # unconditional: a group that expired (no member for the offsets' retention) starts again at generation 1


class ReadProgress:
    def __init__(self, group: str, topic: str, idle_ttl: timedelta) -> None:
        self.group = group
        self.topic = topic
        self.idle_ttl = idle_ttl
        self.holder: int | None = None  # the partition that held the last watermark read

    async def stored(self, conn: asyncpg.Connection, upto: dict[int, datetime | None], generation: int) -> None:
        """The partitions' reads are stored up to these times (None: records, but no valid read): not idle."""
        if upto:
            await conn.execute(_STORED, self.group, self.topic, list(upto), list(upto.values()), generation)

    async def idle(self, conn: asyncpg.Connection, partitions: Iterable[int], generation: int) -> None:
        """Nothing is left to read in these partitions (claim refreshed by the owner while it holds)."""
        partitions = list(partitions)
        if partitions:
            await conn.execute(_IDLE, self.group, self.topic, partitions, generation)

    async def taken_over(self, conn: asyncpg.Connection, partition: int, generation: int) -> None:
        """A new owner: an idle claim of the previous one ends; what was stored stays."""
        await conn.execute(_TAKEN_OVER, self.group, self.topic, partition, generation)

    async def watermark(self, conn: asyncpg.Connection, partitions: int) -> datetime:
        rows = await conn.fetch(
            """SELECT partition, observed_upto, idle_since, claimed_at, clock_timestamp() AS now FROM read_progress
               WHERE consumer_group = $1 AND topic = $2""",
            self.group,
            self.topic,
        )
        progress = [
            PartitionProgress(r["partition"], r["observed_upto"], r["idle_since"], r["claimed_at"]) for r in rows
        ]
        now = rows[0]["now"] if rows else datetime.now().astimezone()
        mark, self.holder = holding(progress, partitions, now, self.idle_ttl)
        return mark
