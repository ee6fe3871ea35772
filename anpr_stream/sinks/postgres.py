"""Passages and hits into PostgreSQL within one transaction per batch: COPY (or a staging table and INSERT ... ON
CONFLICT DO NOTHING), so that a read delivered again never makes a second row and its hits are published once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import orjson

from anpr_stream.core.batch import Passage
from anpr_stream.core.hits import Hit
from anpr_stream.core.suppression import Earlier

_PASSAGE_COLUMNS = (
    "read_id", "camera_id", "observed_at", "plate_raw", "plate_norm", "plate_class", "country", "confidence",
    "plate_format", "camera_known", "has_hit", "extra", "source_partition", "source_offset",
)  # fmt: skip
_HIT_COLUMNS = (
    "hit_id", "read_id", "entry_id", "list", "camera_id", "observed_at", "plate_raw", "plate_norm", "plate_class",
    "entry_plate", "match_kind", "distance", "priority", "action", "covert", "dispatch", "suppressed",
    "detected_at", "payload", "matched_plate", "candidate_rank", "candidate_confidence",
)  # fmt: skip

_PARTITION_LOCK = 0x616E7071  # advisory lock key of day-partition creation

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS passages_in (LIKE passages INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
_INSERT_PASSAGES = f"""
INSERT INTO passages ({", ".join(_PASSAGE_COLUMNS)}) SELECT {", ".join(_PASSAGE_COLUMNS)} FROM passages_in
ON CONFLICT DO NOTHING
"""  # noqa: S608 -- column names are constants of this module
# One row per hit, sent pipelined by executemany: one round trip where a staging table, its COPY and an INSERT from
# it took three (a batch has a few hits).
_INSERT_HITS = f"""
INSERT INTO hits ({", ".join(_HIT_COLUMNS)}) VALUES ({", ".join(f"${i}" for i in range(1, len(_HIT_COLUMNS) + 1))})
ON CONFLICT (hit_id) DO NOTHING
"""  # noqa: S608 -- column names are constants of this module
# Which record stored each of these reads first (its partition and offset; NULL for rows older than migration 0008).
_SOURCES = """
SELECT p.read_id, p.observed_at, p.camera_id, p.plate_norm, p.source_partition, p.source_offset
FROM passages p
JOIN unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) AS k(read_id, observed_at, camera_id, plate_norm)
  ON (p.read_id, p.observed_at, p.camera_id, p.plate_norm) = (k.read_id, k.observed_at, k.camera_id, k.plate_norm)
"""


class StoredBefore(Exception):
    """Some passages of the batch were stored before (write_passages' fast path): do the transaction again, slow."""


async def index_closed_days(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> int:
    """Build the trigram indexes of the day partitions whose (UTC) day has ended (migration 0014: the partition being
    written carries the btree indexes only); returns how many indexes were made (0: all built already)."""
    made = await conn.fetchval("SELECT index_closed_passage_partitions($1)", now.astimezone(UTC).date())
    return int(made or 0)


def _key(passage: Passage) -> tuple[str, datetime, str, str]:
    """The passages table's primary key (migration 0008): one read."""
    r = passage.reading
    return (r.read_id, r.observed_at, r.camera_id, passage.plate_norm)


def _passage_id(passage: Passage) -> str:
    return passage.passage_id


class PostgresSink:
    """Owns a connection pool; per batch the store stage opens `transaction()` and calls the writes in it."""

    def __init__(self, pool: asyncpg.Pool, days_ahead: int = 3) -> None:
        self.pool = pool
        self.days_ahead = days_ahead
        self._days: set[date] = set()

    async def ensure_partitions(self, days: Iterable[date]) -> None:
        missing = sorted(set(days) - self._days)
        if not missing:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            # CREATE TABLE IF NOT EXISTS is not safe against itself: two workers creating the same day at once
            # fail with DuplicateTableError (seen when three workers start together). Serialise the creators.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK)
            for day in missing:
                await conn.execute("SELECT ensure_passage_partition($1)", day)
        self._days.update(missing)

    async def ensure_partitions_for(self, passages: list[Passage], now: datetime) -> None:
        """Today's partition and the next `days_ahead`, and every day this batch needs (cached: free when known)."""
        today = now.astimezone(UTC).date()
        ahead = {today + timedelta(days=n) for n in range(self.days_ahead + 1)}
        if not passages:
            return await self.ensure_partitions(ahead)
        # A batch nearly always lies within one UTC day: its earliest and latest read say so, without a date per read.
        moments = [p.reading.observed_at for p in passages]
        first, last = min(moments).astimezone(UTC).date(), max(moments).astimezone(UTC).date()
        days = {first} if first == last else {m.astimezone(UTC).date() for m in moments}
        await self.ensure_partitions(ahead | days)

    @contextlib.asynccontextmanager
    async def transaction(self, commit: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """One connection in one transaction for a whole batch: decisions read and rows written together. With
        `commit=False` a probe: whatever happened in it is rolled back."""
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):  # a dropped connection cannot roll back: the server does
                    await tx.rollback()
                raise
            if commit:
                await tx.commit()
            else:
                await tx.rollback()

    async def write_passages(
        self, conn: asyncpg.Connection, passages: list[Passage], with_hit: set[str], fast: bool = True
    ) -> set[str]:
        """Store the reads not stored yet; returns the passage ids of those another record stored first (copies of a
        read: their hits are that record's to publish). `with_hit`: passage ids that carry a hit.

        `fast`: COPY straight into the partitioned table, and raise `StoredBefore` (the transaction is then lost)
        when a row exists already: a batch replayed after a crash, or holding a copy of a stored read. The caller
        does the transaction again with `fast=False`, which inserts only what is missing and asks who stored the
        rest. No savepoint around the COPY: it cost two round trips on every batch for what replays alone need."""
        if not passages:
            return set()
        # Sorted: two workers inserting copies of the same reads lock them in the same order (no deadlock). The
        # passage id is a digest of the primary key, so one order for every worker, and a plain string to compare.
        ordered = sorted(passages, key=_passage_id)
        rows = [
            (
                p.reading.read_id,
                p.reading.camera_id,
                p.reading.observed_at,
                p.reading.plate,
                p.plate_norm,
                p.plate_class,
                p.reading.country,
                p.reading.confidence,
                p.plate_format,
                p.camera_known,
                p.passage_id in with_hit,
                orjson.dumps(p.reading.extra).decode(),
                p.record.partition,
                p.record.offset,
            )
            for p in ordered
        ]
        if fast:
            try:
                await conn.copy_records_to_table("passages", records=rows, columns=_PASSAGE_COLUMNS)
            except asyncpg.UniqueViolationError as exc:
                raise StoredBefore from exc
            return set()
        await conn.execute(_STAGING)
        await conn.copy_records_to_table("passages_in", records=rows, columns=_PASSAGE_COLUMNS)
        await conn.execute(_INSERT_PASSAGES)
        keys = [_key(p) for p in ordered]
        found = await conn.fetch(_SOURCES, *(list(column) for column in zip(*keys, strict=True)))
        sources = {
            (r["read_id"], r["observed_at"], r["camera_id"], r["plate_norm"]): (
                r["source_partition"],
                r["source_offset"],
            )
            for r in found
        }
        copies = set()
        for passage in ordered:
            partition, offset = sources.get(_key(passage), (None, None))
            # NULL: stored before sources were recorded; treated as this record's (a replay republishes, as before).
            if partition is not None and (partition, offset) != (passage.record.partition, passage.record.offset):
                copies.add(passage.passage_id)
        return copies

    async def stored_decisions(
        self, conn: asyncpg.Connection, hits: list[Hit], window: timedelta
    ) -> tuple[dict[str, bool | None], Earlier]:
        """Decisions already recorded for these hits (replays keep them; None: stored, pending), and the
        dispatch-eligible hits per key in the window before these (repeat suppression survives restarts because it
        lives here)."""
        if not hits:
            return {}, {}
        ids = [h.hit_id for h in hits]
        classes = [h.key[0] for h in hits]
        entries = [h.key[1] for h in hits]
        low = min(h.observed_at for h in hits) - window
        high = max(h.observed_at for h in hits)
        # Serialise deciders per (plate, entry) across workers: a transaction-scoped advisory lock per key, taken
        # in sorted order (no deadlock between two batches sharing keys) and held until this batch's rows commit,
        # so a second worker deciding on the same vehicle sees the first one's hit.
        keys = sorted({f"{h.key[0]}\x1f{h.key[1]}" for h in hits})
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) FROM (SELECT unnest($1::text[]) AS k ORDER BY 1) s",
            keys,
        )
        # One round trip: the recorded decisions (kind 's') and the dispatch-eligible predecessors (kind 'd').
        rows = await conn.fetch(
            """SELECT 's' AS kind, hit_id::text AS hit_id, suppressed, NULL AS plate_class, NULL AS entry_id,
                      NULL::timestamptz AS observed_at
               FROM hits WHERE hit_id = ANY($5::uuid[])
               UNION ALL
               SELECT 'd', h.hit_id::text, NULL, h.plate_class, h.entry_id, h.observed_at
               FROM hits h JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS k(plate_class, entry_id)
                 ON h.plate_class = k.plate_class AND h.entry_id = k.entry_id
               WHERE h.dispatch AND h.observed_at BETWEEN $3 AND $4
                 AND NOT (h.hit_id = ANY($5::uuid[]))""",
            classes,
            entries,
            low,
            high,
            ids,
        )
        stored = {row["hit_id"]: row["suppressed"] for row in rows if row["kind"] == "s"}
        earlier: Earlier = {}
        for row in rows:
            if row["kind"] == "d":
                earlier.setdefault((row["plate_class"], row["entry_id"]), []).append(
                    (row["observed_at"], row["hit_id"])
                )
        return stored, earlier

    async def write_hits(self, conn: asyncpg.Connection, hits: list[Hit], now: datetime) -> None:
        """Within the caller's transaction; a replayed hit keeps its row (and its recorded decision)."""
        if not hits:
            return
        rows = [
            (
                h.hit_id,
                h.passage.reading.read_id,
                h.match.entry.entry_id,
                h.match.entry.list,
                h.passage.reading.camera_id,
                h.observed_at,
                h.passage.reading.plate,
                h.passage.plate_norm,
                h.passage.plate_class,
                h.match.entry.plate,
                h.match.kind,
                h.match.distance,
                h.match.entry.priority,
                h.match.entry.action,
                h.match.entry.covert,
                h.dispatch,
                h.suppressed,
                now,
                h.payload.decode(),
                h.match.matched_plate,  # NULL: the read's best plate matched (migration 0011)
                h.match.candidate_rank or None,
                None if h.match.candidate is None else h.match.candidate.confidence,
            )
            for h in hits
        ]
        await conn.executemany(_INSERT_HITS, rows)

    async def decide(self, conn: asyncpg.Connection, hits: list[Hit], now: datetime) -> None:
        """Write the decisions of stored pending hits (once: the table's trigger refuses a second write)."""
        if hits:
            await conn.executemany(
                """UPDATE hits SET suppressed = $2, detected_at = $3, payload = $4::jsonb
                   WHERE hit_id = $1 AND suppressed IS NULL""",
                [(h.hit_id, h.suppressed, now, h.payload.decode()) for h in hits],
            )
