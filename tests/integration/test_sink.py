"""The PostgreSQL sink on the real database: two deciders (two workers) on one vehicle at the same moment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
import pytest

from anpr_stream.cameras import CameraRegistry
from anpr_stream.matching import WatchlistIndex
from anpr_stream.policy import MatchPolicy
from anpr_stream.sinks.postgres import PostgresSink
from anpr_stream.stream.hits import Hit, decide_suppression, hits_of
from anpr_stream.stream.process import InRecord, process_batch
from anpr_stream.watchlists import entry_from_mapping
from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WINDOW = timedelta(minutes=10)


def _hit(read_id: str, at: datetime, camera: str) -> Hit:
    entry = entry_from_mapping(
        {"entry_id": "SV-1", "list": "stolen_vehicle", "plate": "1-KXR-482", "country": "BE", "priority": "1",
         "action": "intercept", "valid_from": "", "valid_until": "", "reference": "PV", "covert": "false"}
    )  # fmt: skip
    value = orjson.dumps({"read_id": read_id, "camera_id": camera, "observed_at": at.isoformat(), "plate": "1KXR482",
                          "country": "BE", "confidence": 0.9})  # fmt: skip
    record = InRecord("reads", 0, 0, b"k", value, int(at.timestamp() * 1000))
    now = datetime.now(UTC)
    cameras = CameraRegistry.load(ROOT / "deploy" / "cameras.csv")
    result = process_batch(
        [record], WatchlistIndex.build([entry]), MatchPolicy(), cameras, now - timedelta(days=30), now
    )
    [hit] = hits_of(result.passages, lambda name: True)
    return hit


async def _decide_and_store(sink: PostgresSink, hit: Hit, hold: float) -> None:
    now = datetime.now(UTC)
    await sink.ensure_partitions_for([hit.passage], now)
    async with sink.transaction() as conn:
        stored, dispatched = await sink.stored_decisions(conn, [hit], WINDOW)
        decide_suppression([hit], stored, dispatched, WINDOW)
        await asyncio.sleep(hold)  # the other worker decides meanwhile
        hit.payload = b"{}"
        await sink.write(conn, [hit.passage], [hit], now)


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
