"""Least privilege on the real database: the worker and the API run as a login role that is a member of
anpr_service (made by `anpr-stream db create-service-login`); their writes work, and everything else is refused:
UPDATE/DELETE of the audit log and outcomes, DELETE of passages, DDL, the purge."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from anpr_stream.audit import AuditRecord
from anpr_stream.audit.log import append_audit, verify_audit
from anpr_stream.retention import preset
from anpr_stream.retention.purge import run_purge
from anpr_stream.sinks.migrate import migrate
from tests.integration.conftest import Namespace
from tests.integration.test_api_access import plant_hit
from tests.integration.test_pipeline import load_watchlist, reading

pytestmark = pytest.mark.integration


@pytest.fixture
async def service_url(namespace: Namespace) -> AsyncIterator[str]:
    """A login role for this test (role names are cluster-wide: dropped afterwards) and its URL."""
    name = f"anpr_t_{namespace.tag}"
    made = namespace.cli("db", "create-service-login", name)
    assert made.returncode == 0, made.stderr.decode()
    url = made.stdout.decode().strip()
    assert f"{name}:" in url and "search_path" in url
    yield url
    namespace.stop_workers()  # before its role goes
    conn = await namespace.db()
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await conn.close()


def test_create_service_login_refuses_bad_names_and_existing_roles(namespace: Namespace) -> None:
    bad = namespace.cli("db", "create-service-login", "Robert'); DROP TABLE passages;--")
    assert bad.returncode == 1 and b"lower-case letters" in bad.stderr
    again = namespace.cli("db", "create-service-login", "anpr_service")
    assert again.returncode == 1 and b"exists: --rotate" in again.stderr


async def test_service_login_writes_what_it_must_and_nothing_else(namespace: Namespace, service_url: str) -> None:
    svc = await asyncpg.connect(service_url)
    owner = await namespace.db()
    try:
        assert await svc.fetchval("SELECT pg_has_role(current_user, 'anpr_service', 'MEMBER')")
        assert await migrate(svc) == []  # the schema is current: no DDL attempted
        day = datetime.now(UTC).date() + timedelta(days=30)
        name = await svc.fetchval("SELECT ensure_passage_partition($1)", day)
        assert await owner.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = $1", name) == (
            await owner.fetchval("SELECT current_user")
        )
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
        await svc.copy_records_to_table(
            "passages", records=[("r1", "LM-EISDEN", at, "1ABC123", "1ABC123", "1ABC123", 0.9, True)],
            columns=("read_id", "camera_id", "observed_at", "plate_raw", "plate_norm", "plate_class", "confidence",
                     "camera_known"),
        )  # fmt: skip
        hit = await plant_hit(svc, timedelta(days=1))
        await svc.execute("INSERT INTO hit_outcomes (hit_id, outcome, recorded_by) VALUES ($1, 'not_found', 'd')", hit)
        await append_audit(svc, AuditRecord(actor="svc", role="service", endpoint="probe", allowed=True))
        assert (await verify_audit(svc)).intact

        # The trigger would refuse audit changes too: disable it (as the owner) so that privileges alone refuse.
        await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        refused = [
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DELETE FROM passages",
            "UPDATE passages SET plate_norm = 'X'",
            "DELETE FROM hits",
            "UPDATE hits SET suppressed = true",  # its column grant is for pending hits only (trigger: decided once)
            "UPDATE hits SET plate_norm = 'X'",
            "DELETE FROM hit_outcomes",
            "UPDATE hit_outcomes SET note = 'x'",
            "UPDATE api_users SET role = 'admin'",
            "INSERT INTO api_users SELECT * FROM api_users LIMIT 1",
            # A forged audit row: id, time and hashes of the service's choosing (migration 0009: appends go through
            # audit_append() only), and the function itself replaced.
            "INSERT INTO audit_log (id, at, actor, role, endpoint, allowed, prev_hash, row_hash) VALUES "
            "(9223372036854775807, now(), 'x', 'x', 'x', true, repeat('0', 64), repeat('1', 64))",
            "CREATE OR REPLACE FUNCTION audit_canonical_v2() RETURNS text LANGUAGE sql AS 'SELECT 1'",
            "DELETE FROM authorisations",
            "UPDATE authorisations SET valid_until = valid_until + interval '1 year'",
            "DELETE FROM purge_log",
            "DROP TABLE passages",
            "DROP TABLE audit_log",
            f'DROP TABLE "{name}"',
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "CREATE TABLE passages_19990101 PARTITION OF passages FOR VALUES FROM ('1999-01-01') TO ('1999-01-02')",
            "ALTER TABLE passages DETACH PARTITION " + name,
            "CREATE OR REPLACE FUNCTION ensure_passage_partition(day date) RETURNS text LANGUAGE sql AS 'SELECT 1'",
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'x')",
        ]
        for sql in refused:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await svc.execute(sql)
        await owner.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
        assert await owner.fetchval("SELECT count(*) FROM passages") == 1
        assert await owner.fetchval("SELECT count(*) FROM audit_log") == 1

        # The purge is the owner's: the worker's schedule skips it, the command says why.
        assert await run_purge_on(service_url) is None
        cli = subprocess.run(
            [sys.executable, "-m", "anpr_stream.cli", "retention", "purge"],
            env={**namespace.env, "ANPR_DATABASE_URL": service_url}, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 1 and b"does not own passages" in cli.stderr
    finally:
        await svc.close()
        await owner.close()


async def run_purge_on(url: str) -> Any:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        return await run_purge(pool, preset("be"), datetime.now(UTC))
    finally:
        await pool.close()


async def test_partition_function_ignores_the_callers_search_path(namespace: Namespace, service_url: str) -> None:
    """SECURITY DEFINER with a pinned search_path: a caller's temporary `passages` cannot take the owner's rights
    elsewhere."""
    svc = await asyncpg.connect(service_url)
    try:
        await svc.execute("CREATE TEMP TABLE passages (observed_at timestamptz) PARTITION BY RANGE (observed_at)")
        await svc.execute(f"SET search_path = pg_temp, {namespace.schema}")
        day = datetime.now(UTC).date() + timedelta(days=40)
        name = await svc.fetchval(f"SELECT {namespace.schema}.ensure_passage_partition($1)", day)
        parent = await svc.fetchval(
            "SELECT i.inhparent::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND n.nspname = $2",
            name, namespace.schema,
        )  # fmt: skip
        assert parent == f"{namespace.schema}.passages"
    finally:
        await svc.close()


async def test_worker_and_api_run_as_the_service_login(namespace: Namespace, service_url: str, tmp_path: Any) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(ns, tmp_path, ["SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false"])
    ns.start_worker(extra_env={"ANPR_DATABASE_URL": service_url})
    await ns.produce([reading("ok-1", "1-XYZ-001", now), reading("ok-hit", "1-HGT-904", now)])
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 2) == 2
    assert await ns.wait_for_rows("SELECT count(*) FROM hits", 1) == 1
    token = ns.add_user("disp", "dispatcher")
    dpo = ns.add_user("dpo1", "dpo")
    base = ns.start_api(extra_env={"ANPR_DATABASE_URL": service_url})
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "dispatch", "X-Case-Reference": "LM-1"}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        listed = await client.get("/v1/hits", headers=headers)
        assert listed.status_code == 200, listed.text
        hit_id = listed.json()["hits"][0]["hit_id"]
        acked = await client.post(f"/v1/hits/{hit_id}/ack", headers=headers, json={"outcome": "intercepted"})
        assert acked.status_code == 200, acked.text
        report = await client.get("/v1/dpo/report", headers={"Authorization": f"Bearer {dpo}"})
        assert report.status_code == 200, report.text
        assert report.json()["audit_chain"]["intact"] is True
    conn = await ns.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM hit_outcomes") == 1
        # The three requests; `users add` and `watchlist load` have their own rows (admin.*).
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE allowed AND endpoint NOT LIKE 'admin.%'") == 3
    finally:
        await conn.close()
