"""The PostgreSQL sink and the store stage on the real database: two deciders (two workers) on one vehicle at the
same moment; a read the database cannot hold isolated from its batch; copies of a read told from its replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.batch import STORE, Passage, classify
from anpr_stream.core.hits import Hit, hits_of
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Reading
from anpr_stream.core.record import InRecord
from anpr_stream.core.suppression import decide_suppression
from anpr_stream.sinks.postgres import PostgresSink, StoredBefore
from anpr_stream.sinks.progress import ReadProgress
from anpr_stream.sinks.store import BatchStore, StoreBatch
from anpr_stream.watchlists import entry_from_mapping
from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WINDOW = timedelta(minutes=10)


CAMERAS = CameraRegistry.load(ROOT / "anpr_stream" / "examples" / "cameras.csv")


def _passages(*reads: tuple[str, datetime, str, str], partition: int = 0, first_offset: int = 0) -> list[Passage]:
    """(read_id, observed_at, camera, plate) as records of one partition, through the real classification."""
    entry = entry_from_mapping(
        {"entry_id": "SV-1", "list": "stolen_vehicle", "plate": "1-KXR-482", "country": "BE", "priority": "1",
         "action": "intercept", "valid_from": "", "valid_until": "", "reference": "PV", "covert": "false"}
    )  # fmt: skip
    records = [
        InRecord("reads", partition, first_offset + i, b"k", orjson.dumps(
            {"read_id": read_id, "camera_id": camera, "observed_at": at.isoformat(), "plate": plate, "country": "BE",
             "confidence": 0.9}), int(at.timestamp() * 1000))
        for i, (read_id, at, camera, plate) in enumerate(reads)
    ]  # fmt: skip
    now = datetime.now(UTC)
    result = classify(records, WatchlistIndex.build([entry]), MatchPolicy(), CAMERAS, now - timedelta(days=30), now)
    return result.passages


def _hit(read_id: str, at: datetime, camera: str) -> Hit:
    [hit] = hits_of(_passages((read_id, at, camera, "1KXR482")), lambda name: True)
    return hit


async def _decide_and_store(sink: PostgresSink, hit: Hit, hold: float) -> None:
    now = datetime.now(UTC)
    await sink.ensure_partitions_for([hit.passage], now)
    async with sink.transaction() as conn:
        stored, dispatched = await sink.stored_decisions(conn, [hit], WINDOW)
        decide_suppression([hit], stored, dispatched, WINDOW)
        await asyncio.sleep(hold)  # the other worker decides meanwhile
        hit.payload = b"{}"
        await sink.write_passages(conn, [hit.passage], {hit.passage.passage_id})
        await sink.write_hits(conn, [hit], now)


async def test_concurrent_deciders_on_one_vehicle_dispatch_it_once(namespace: Namespace) -> None:
    pool = await asyncpg.create_pool(namespace.database_url, min_size=2, max_size=4)
    try:
        at = datetime.now(UTC) - timedelta(minutes=5)
        first = _hit("a-1", at, "LM-E314-BOORSEM-IN")
        second = _hit("b-1", at + timedelta(seconds=40), "LM-VELDWEZELT-IN")
        worker_a, worker_b = PostgresSink(pool), PostgresSink(pool)
        task_a = asyncio.create_task(_decide_and_store(worker_a, first, hold=1.0))
        await asyncio.sleep(0.3)  # A has decided and holds its transaction open
        await _decide_and_store(worker_b, second, hold=0.0)
        await task_a
        rows = await pool.fetch("SELECT read_id, suppressed FROM hits ORDER BY read_id")
        assert [(r["read_id"], r["suppressed"]) for r in rows] == [("a-1", False), ("b-1", True)]
    finally:
        await pool.close()


def _poisoned(passage: Passage, extra: dict[str, object]) -> Passage:
    """A passage whose read slipped past validation (as a bug in it would let one): the store is the last line."""
    r = passage.reading
    reading = Reading(r.read_id, r.camera_id, r.observed_at, r.plate, r.country, r.confidence, extra)
    return Passage(passage.record, reading, passage.passage_id, passage.plate_norm, passage.plate_class,
                   passage.plate_format, passage.camera_known, passage.matches)  # fmt: skip


async def test_reads_the_database_refuses_are_isolated_and_the_rest_of_the_batch_is_stored(
    namespace: Namespace,
) -> None:
    pool = await asyncpg.create_pool(namespace.database_url, min_size=1, max_size=2)
    try:
        at = datetime.now(UTC) - timedelta(minutes=5)
        passages = _passages(
            *((f"ok-{i}", at + timedelta(seconds=i), "LM-EISDEN", "1KXR482" if i % 10 == 0 else f"1AAA{i:03d}")
              for i in range(40))
        )  # fmt: skip
        passages[7] = _poisoned(passages[7], {"direction": "towards\x00NL"})  # text/jsonb cannot hold NUL
        passages[30] = _poisoned(passages[30], {"nested": {"k\x00": 1}})  # nor in a key
        passages[20] = _poisoned(passages[20], {"big": 2**70})  # orjson cannot encode it
        sink = PostgresSink(pool)
        await sink.ensure_partitions_for(passages, datetime.now(UTC))
        store = BatchStore(sink, ReadProgress("g", "reads", timedelta(seconds=2)), CAMERAS, WINDOW, 0.0)
        hits = hits_of(passages, lambda name: True)
        batch = StoreBatch(passages, hits, [], {0: passages[-1].reading.observed_at}, [], 1, 1)
        stored = await store.store(batch, 0.0)
        assert sorted(r.record.offset for r in stored.refused) == [7, 20, 30]
        assert all(r.stage == STORE and "database refused" in r.reason for r in stored.refused)
        assert any("SQLSTATE 22" in r.reason for r in stored.refused), [r.reason for r in stored.refused]
        kept = {r["read_id"] for r in await pool.fetch("SELECT read_id FROM passages")}
        assert kept == {f"ok-{i}" for i in range(40)} - {"ok-7", "ok-20", "ok-30"}
        assert {h.passage.reading.read_id for h in stored.hits} == {"ok-0", "ok-10"}  # 20 and 30 were refused
        assert await pool.fetchval("SELECT count(*) FROM hits") == len(stored.hits)
    finally:
        await pool.close()


async def test_a_copy_of_a_stored_read_is_told_from_a_replay_of_its_record(namespace: Namespace) -> None:
    pool = await asyncpg.create_pool(namespace.database_url, min_size=1, max_size=2)
    try:
        at = datetime.now(UTC) - timedelta(minutes=5)
        read = ("r-1", at, "LM-EISDEN", "1KXR482")
        [original] = _passages(read, partition=0, first_offset=5)
        [replayed] = _passages(read, partition=0, first_offset=5)  # the same record, read again after a crash
        [copy] = _passages(read, partition=2, first_offset=9)  # the read sent again: another record
        [reused] = _passages(("r-1", at, "LM-SMEERMAAS-IN", "1KXR482"), partition=2, first_offset=10)
        sink = PostgresSink(pool)
        await sink.ensure_partitions_for([original], datetime.now(UTC))
        async with sink.transaction() as conn:
            assert await sink.write_passages(conn, [original], set()) == set()
        again = [replayed, copy, reused]
        with pytest.raises(StoredBefore):  # the fast path (COPY) meets a stored row: the transaction is lost
            async with sink.transaction() as conn:
                await sink.write_passages(conn, again, set())
        async with sink.transaction() as conn:  # done again the slow way, as the batch store does
            assert await sink.write_passages(conn, again, set(), fast=False) == {copy.passage_id}
        rows = await pool.fetch("SELECT camera_id, source_partition, source_offset FROM passages ORDER BY camera_id")
        assert [tuple(r) for r in rows] == [("LM-EISDEN", 0, 5), ("LM-SMEERMAAS-IN", 2, 10)]
    finally:
        await pool.close()
