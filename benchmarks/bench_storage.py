"""The storage floor: how fast the same passages can be written at all, and what each index of `passages` costs.

Two measurements, used by `bench_report.py` (`make bench`) in the same run as the worker:

- `storage_floor`: a loop that consumes the same backlog as the worker (aiokafka `getmany`, batches of 2,000),
  decodes each read with orjson, builds the very rows the worker's sink COPYs (sinks/postgres.py: the same columns,
  plate normalised and its confusion form, extra fields as JSON) and COPYs them into the same migrated schema, one
  transaction per batch. No validation, no matching, no hits, no Kafka transaction: what storage allows. The worker's
  reads/s over this is how close it is to the floor.
- `index_costs`: the same rows (already built, in memory) COPYed into fresh migrated schemas, once with every index
  of the day being written, once without each of them in turn, once with the primary key alone, and once into days
  that ended (which also carry the GIN trigram indexes, migration 0014): each index's write cost is the floor
  without it over the floor with all of them.

Run alone: .venv/bin/python benchmarks/bench_storage.py --rows 100000 (needs the local infrastructure or ANPR_*).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from anpr_stream.core.plates import confusion_form, normalise
from anpr_stream.core.readings import READING_FIELDS
from anpr_stream.devinfra import endpoints
from anpr_stream.sinks.migrate import migrate
from anpr_stream.sinks.postgres import _PASSAGE_COLUMNS as PASSAGE_COLUMNS

BATCH = 2000
Row = tuple[Any, ...]


def passage_row(value: bytes, partition: int, offset: int) -> Row:
    """The row the worker's sink writes for a read (sinks/postgres.py write_passages), built with the least work:
    no validation, format detection or registry lookup."""
    d = orjson.loads(value)
    plate = d["plate"]
    norm = normalise(plate)
    extra = {k: v for k, v in d.items() if k not in READING_FIELDS}
    return (
        d["read_id"], d["camera_id"], datetime.fromisoformat(d["observed_at"]), plate, norm, confusion_form(norm),
        d.get("country") or None, float(d["confidence"]), None, True, False, orjson.dumps(extra).decode(),
        partition, offset,
    )  # fmt: skip


async def ensure_days(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    for day in sorted({row[2].astimezone(UTC).date() for row in rows}):
        await conn.execute("SELECT ensure_passage_partition($1)", day)


async def copy_batch(conn: asyncpg.Connection, rows: Sequence[Row]) -> None:
    async with conn.transaction():
        await conn.copy_records_to_table("passages", records=rows, columns=PASSAGE_COLUMNS)


async def storage_floor(
    bootstrap: str, topic: str, count: int, database_url: str, timeline: list[tuple[float, float]] | None = None
) -> float:
    """Consume `count` reads of `topic`, decode, build and COPY their passage rows into the schema of
    `database_url` (migrated), one transaction per batch; returns rows/s from the first read to the last row."""
    conn = await asyncpg.connect(database_url, server_settings={"jit": "off"})
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"bench-floor-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=BATCH,
    )  # fmt: skip
    await consumer.start()
    days: set[Any] = set()
    try:
        seen = 0
        started = 0.0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            rows = [passage_row(r.value, r.partition, r.offset) for records in batch.values() for r in records]
            if not rows:
                continue
            if not started:
                started = time.perf_counter()
            new_days = {row[2].astimezone(UTC).date() for row in rows} - days
            if new_days:
                for day in sorted(new_days):
                    await conn.execute("SELECT ensure_passage_partition($1)", day)
                days |= new_days
            await copy_batch(conn, rows)
            seen += len(rows)
            if timeline is not None:
                timeline.append((time.time(), float(seen)))
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()
        await conn.close()


async def passage_indexes(conn: asyncpg.Connection) -> list[str]:
    """The secondary indexes of the partitioned `passages` table (the primary key is not one to drop)."""
    names = await conn.fetch(
        """SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'passages'::regclass AND NOT i.indisprimary ORDER BY c.relname"""
    )
    return [r["relname"] for r in names]


async def _timed_copy(base_url: str, rows: Sequence[Row], drop: Sequence[str], closed: bool = False) -> float:
    """rows/s of COPYing `rows` in batches into a fresh migrated schema without the indexes `drop`; `closed`: into
    day partitions that carry the trigram indexes too, as the days that ended do (migration 0014)."""
    schema = f"bench_idx_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(endpoints.with_search_path(base_url, schema), server_settings={"jit": "off"})
    try:
        await migrate(conn)
        for name in drop:
            await conn.execute(f'DROP INDEX "{schema}"."{name}"')  # on the parent: its partitions' go with it
        await ensure_days(conn, rows)
        if closed:
            await conn.execute("SELECT index_closed_passage_partitions('infinity'::date)")
        started = time.perf_counter()
        for start in range(0, len(rows), BATCH):
            await copy_batch(conn, rows[start : start + BATCH])
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def index_costs(base_url: str, rows: Sequence[Row], repeats: int = 3) -> dict[str, Any]:
    """The floor with every index, without each secondary index in turn, and with the primary key alone; median of
    `repeats` runs each, the variants interleaved run by run so that the machine's drift falls on all alike."""
    probe = f"bench_idx_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{probe}"')
        conn = await asyncpg.connect(endpoints.with_search_path(base_url, probe))
        try:
            await migrate(conn)
            indexes = await passage_indexes(conn)
        finally:
            await conn.close()
        await admin.execute(f'DROP SCHEMA "{probe}" CASCADE')
    finally:
        await admin.close()
    # The day being written (all indexes of the parent) is the floor; a day that ended also has the GIN trigram
    # indexes (built once it has ended, migration 0014): what every write cost before them.
    variants: dict[str, tuple[list[str], bool]] = {
        "all indexes": ([], False),
        **{f"without {n}": ([n], False) for n in indexes},
        "primary key only": (list(indexes), False),
        "a closed day: + both GIN trigram indexes": ([], True),
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (drop, closed) in variants.items():
            runs[name].append(await _timed_copy(base_url, rows, drop, closed))
    floor = {name: statistics.median(rates) for name, rates in runs.items()}
    full = floor["all indexes"]
    table = [
        {
            "variant": name, "rows_per_s": round(rate), "x_all_indexes": round(rate / full, 3),
            # The share of the write time with every index that this index takes: 1 - t(all) ... as rates.
            "index_share": None if name == "all indexes" else round(1 - full / rate, 3),
        }
        for name, rate in floor.items()
    ]  # fmt: skip
    return {"rows": len(rows), "repeats": repeats, "indexes": indexes, "variants": table}


def synthetic_rows(count: int, seed: int = 7) -> list[Row]:
    """Passage rows of generated zone traffic (the same generator as the report's backlog), for running alone."""
    from anpr_stream.cameras import CameraRegistry
    from anpr_stream.traffic import generate

    start = datetime.now(UTC) - timedelta(hours=25)
    stream = generate(seed, start, timedelta(hours=24), count * 1.6, cameras=list(CameraRegistry.load()))
    rows = []
    for offset, (_, read) in enumerate(zip(range(count), stream, strict=False)):
        rows.append(passage_row(orjson.dumps(read), 0, offset))
    return rows


async def amain(args: argparse.Namespace) -> None:
    import os

    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    rows = synthetic_rows(args.rows)
    result = await index_costs(found.database_url, rows, args.repeats)
    for row in result["variants"]:
        print(f"{row['variant']:<40} {row['rows_per_s']:>9,} rows/s  x{row['x_all_indexes']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
