"""The trigram indexes on closed days only (migration 0014): the day partition being written carries the btree
indexes alone; the days that ended get their GIN trigram indexes from index_closed_passage_partitions, callable by
the least-privilege service login, run by `anpr-stream retention purge`; a wildcard search finds the same passages
on an indexed day and on today's unindexed one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from anpr_stream.sinks.postgres import index_closed_days
from tests.integration.conftest import Namespace
from tests.integration.test_api_investigate import HEADERS, plant
from tests.integration.test_least_privilege import service_url  # noqa: F401 -- the fixture

pytestmark = pytest.mark.integration

TRGM = """SELECT tablename, indexname FROM pg_indexes
           WHERE schemaname = current_schema() AND indexname LIKE '%trgm' ORDER BY 1, 2"""


async def test_trigram_indexes_come_when_the_day_ends(namespace: Namespace, service_url: str) -> None:  # noqa: F811
    import asyncpg

    ns = namespace
    now = datetime.now(UTC)
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    await plant(ns, [("y1", "LM-EISDEN", now - timedelta(days=1), "1-TRG-001"), ("t1", "LM-EISDEN", now, "1-TRG-002")])
    conn = await ns.db()
    try:
        assert await conn.fetch(TRGM) == [], "no partition has them before its day is indexed"
        assert await index_closed_days(conn, now) == 2
        assert await index_closed_days(conn, now) == 0, "built once"
        found = [(r["tablename"], r["indexname"]) for r in await conn.fetch(TRGM)]
        day = f"passages_{yesterday:%Y%m%d}"
        assert found == [(day, f"{day}_class_trgm"), (day, f"{day}_norm_trgm")], "yesterday only, not today"
    finally:
        await conn.close()

    # The service login (no DDL of its own) runs it through the SECURITY DEFINER function: today's, as of tomorrow.
    service = await asyncpg.connect(service_url)
    try:
        assert await index_closed_days(service, now + timedelta(days=1)) == 2
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await service.execute(f"CREATE INDEX nope ON passages_{today:%Y%m%d} (plate_raw)")
    finally:
        await service.close()

    # The same wildcard search answers alike from an indexed day and from one without the index.
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}", **HEADERS}, timeout=30) as http:
        got = http.get("/v1/plates/search", params={"plate": "1TRG00?", "mode": "wildcard"})
        assert got.status_code == 200, got.text
        assert sorted(p["read_id"] for p in got.json()["passages"]) == ["t1", "y1"]


async def test_the_purge_command_indexes_the_days_that_ended(namespace: Namespace) -> None:
    ns = namespace
    now = datetime.now(UTC)
    await plant(ns, [("old", "LM-EISDEN", now - timedelta(days=3), "1-TRG-003")])
    done = ns.cli("retention", "purge", "--by", "dpo-anne")
    assert done.returncode == 0, done.stderr.decode()
    conn = await ns.db()
    try:
        names = {r["indexname"] for r in await conn.fetch(TRGM)}
    finally:
        await conn.close()
    day = f"passages_{(now - timedelta(days=3)).date():%Y%m%d}"
    assert {f"{day}_norm_trgm", f"{day}_class_trgm"} <= names


async def test_callers_at_once_build_each_index_once(namespace: Namespace) -> None:
    """Two workers' loops (or a worker and the purge command) at the same moment: neither fails on the other's
    index, and each index is made once."""
    import asyncio

    ns = namespace
    now = datetime.now(UTC)
    await plant(ns, [(f"c{d}", "LM-EISDEN", now - timedelta(days=d), f"1-TRG-1{d:02d}") for d in range(1, 6)])
    conns = [await ns.db() for _ in range(3)]
    try:
        made = await asyncio.gather(*(index_closed_days(c, now) for c in conns))
        assert sorted(made) == [0, 0, 10], made
        assert len(await conns[0].fetch(TRGM)) == 10
    finally:
        for conn in conns:
            await conn.close()
