"""Retention purge and the audit log on the real database: purge correctness over ~400 days of passages, audit
tamper detection (update, delete, insert in the middle), and the service role's missing UPDATE/DELETE privileges."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest

from anpr_stream.audit import AuditRecord, StoredRow, row_hash
from anpr_stream.audit.log import append_audit, verify_audit
from anpr_stream.retention import preset
from anpr_stream.retention.purge import purge, run_purge
from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


async def _append(conn: asyncpg.Connection, n: int, start: int = 0) -> list[StoredRow]:
    rows = []
    for i in range(start, start + n):
        record = AuditRecord(
            actor=f"inspector{i % 3}", role="investigator", endpoint="/passages", allowed=i % 4 != 0,
            parameters={"plate": f"1ABC{i:03d}", "from": "2026-01-01T00:00:00Z", "limit": 100, "ratio": 0.1 * i},
            # Every kind of character the SQL and the Python canonical forms must escape alike.
            purpose="burglary series" if i != 3 else 'q"uote \\ back\tslash\n\x01\x1f\x7f \u2028 é 🚓 €',
            case_reference=f"LM.{i}", authorisation_reference=None,
            reason=None if i % 4 else "no authorisation for data older than 30 days", result_count=i,
        )  # fmt: skip
        rows.append(await append_audit(conn, record))
    return rows


async def _tamper(conn: asyncpg.Connection, sql: str, *args: object) -> None:
    """The owner (or a superuser) gets past the append-only trigger only by disabling it: the attacker we verify."""
    async with conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute(sql, *args)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def _verify_cli(ns: Namespace) -> tuple[int, str]:
    done = ns.cli("audit", "verify")
    return done.returncode, done.stdout.decode() + done.stderr.decode()


async def test_audit_chain_intact_and_recomputable(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 6)
        stored = await conn.fetch("SELECT *, parameters::text AS parameters_json FROM audit_log ORDER BY id")
        prev = "0" * 64
        for row, mine in zip(stored, rows, strict=True):
            # Independent recomputation: sha256(prev_hash || canonical JSON array) from the stored columns, the form
            # the database's audit_append() hashes (format 2).
            assert row["format"] == 2
            values = [
                2, row["id"], row["at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), row["actor"], row["actor_id"], row["role"],
                row["endpoint"], row["parameters_json"], row["purpose"], row["case_reference"],
                row["authorisation_reference"], row["authorisation_id"], row["allowed"], row["reason"],
                row["result_count"],
            ]  # fmt: skip
            canonical = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
            assert row["prev_hash"] == prev
            assert row["row_hash"] == hashlib.sha256(prev.encode() + canonical).hexdigest() == mine.row_hash
            assert row_hash(prev, mine) == mine.row_hash
            prev = row["row_hash"]
        assert json.loads(stored[2]["parameters_json"]) == {
            "plate": "1ABC002", "from": "2026-01-01T00:00:00Z", "limit": 100, "ratio": 0.2,
        }  # fmt: skip
        result = await verify_audit(conn)
        assert result.intact and result.rows == 6 and result.last_id == rows[-1].id
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 0, out
    assert "intact: 6 rows" in out


async def test_empty_audit_log_is_intact(namespace: Namespace) -> None:
    code, out = _verify_cli(namespace)
    assert code == 0, out
    assert "intact: 0 rows" in out


def test_commands_refuse_bad_configuration(namespace: Namespace) -> None:
    env = {k: v for k, v in namespace.env.items() if k != "ANPR_DATABASE_URL"}
    for args in (("audit", "verify"), ("retention", "purge")):
        done = subprocess.run([sys.executable, "-m", "anpr_stream.cli", *args], env=env, capture_output=True,
                              check=False, timeout=60)  # fmt: skip
        assert done.returncode == 2 and b"ANPR_DATABASE_URL is not set" in done.stderr
    bad = namespace.cli("retention", "purge", "--now", "2026-11-28")
    assert bad.returncode == 2 and b"not RFC 3339" in bad.stderr
    namespace.env["ANPR_RETENTION_PASSAGES_DAYS"] = "400"
    bad = namespace.cli("retention", "purge")
    assert bad.returncode == 2 and b"legal maximum of 365 days" in bad.stderr


async def test_concurrent_appenders_keep_one_chain(namespace: Namespace) -> None:
    conns = [await namespace.db() for _ in range(4)]
    try:

        async def appender(conn: asyncpg.Connection, k: int) -> None:
            for i in range(15):
                await append_audit(conn, AuditRecord(actor=f"user{k}", role="investigator", endpoint="/hits",
                                                     allowed=True, parameters={"i": i}, result_count=i))  # fmt: skip

        await asyncio.gather(*(appender(conn, k) for k, conn in enumerate(conns)))
        result = await verify_audit(conns[0])
        assert result.intact, result.broken
        assert result.rows == 60
    finally:
        for conn in conns:
            await conn.close()


async def test_append_refuses_an_old_snapshot(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        async with conn.transaction(isolation="repeatable_read"):
            with pytest.raises(asyncpg.InvalidTransactionStateError, match="read committed"):
                await append_audit(conn, AuditRecord(actor="a", role="r", endpoint="/e", allowed=True))
    finally:
        await conn.close()


async def test_update_is_detected_and_named(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 8)
        await _tamper(conn, "UPDATE audit_log SET result_count = 0 WHERE id = $1", rows[3].id)
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 1, out
    assert f"altered: row id {rows[3].id}" in out


async def test_update_with_rehash_is_detected(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 8)
        target = rows[4]
        forged = StoredRow(**{**target.__dict__, "actor": "someone-else"})
        forged = StoredRow(**{**forged.__dict__, "row_hash": row_hash(forged.prev_hash, forged)})
        await _tamper(conn, "UPDATE audit_log SET actor = $2, row_hash = $3 WHERE id = $1", target.id,
                      forged.actor, forged.row_hash)  # fmt: skip
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 1, out
    assert f"altered: row id {target.id}" in out


async def test_delete_in_the_middle_is_detected_and_named(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 8)
        await _tamper(conn, "DELETE FROM audit_log WHERE id = $1", rows[5].id)
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 1, out
    assert f"removed: row id {rows[5].id}" in out


async def test_delete_of_the_first_row_is_detected(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 4)
        await _tamper(conn, "DELETE FROM audit_log WHERE id = $1", rows[0].id)
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 1, out
    assert f"removed: row id {rows[0].id}" in out


@pytest.mark.parametrize("forger_rehashes", [True, False])
async def test_insert_in_the_middle_is_detected_and_named(namespace: Namespace, forger_rehashes: bool) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 4)
        # A rolled-back append leaves an unused id: room for a forged row between two real ones.
        tx = conn.transaction()
        await tx.start()
        gap = await append_audit(conn, AuditRecord(actor="x", role="x", endpoint="/x", allowed=False))
        await tx.rollback()
        rows += await _append(conn, 4, start=4)
        before = rows[3]
        forged = StoredRow(**{**before.__dict__, "id": gap.id, "actor": "forger", "prev_hash": before.row_hash})
        forged = StoredRow(**{**forged.__dict__, "row_hash": row_hash(forged.prev_hash, forged) if forger_rehashes
                              else hashlib.sha256(b"anything").hexdigest()})  # fmt: skip
        await conn.execute(
            """INSERT INTO audit_log (id, at, actor, role, endpoint, parameters, purpose, case_reference,
                   authorisation_reference, allowed, reason, result_count, prev_hash, row_hash)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13, $14)""",
            forged.id, forged.at, forged.actor, forged.role, forged.endpoint, forged.parameters_json, forged.purpose,
            forged.case_reference, forged.authorisation_reference, forged.allowed, forged.reason,
            forged.result_count, forged.prev_hash, forged.row_hash,
        )  # fmt: skip
    finally:
        await conn.close()
    code, out = _verify_cli(namespace)
    assert code == 1, out
    assert f"inserted: row id {gap.id}" in out


async def test_append_only_for_everyone_while_the_trigger_stands(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        rows = await _append(conn, 2)
        for sql in ("UPDATE audit_log SET actor = 'x' WHERE id = $1", "DELETE FROM audit_log WHERE id = $1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql, rows[0].id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("TRUNCATE audit_log")
    finally:
        await conn.close()


async def test_service_role_may_append_but_not_update_or_delete(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        await _append(conn, 2)
        # The trigger would refuse too; disable it so that the privileges alone are what refuses.
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute("SET ROLE anpr_service")
        appended = await append_audit(conn, AuditRecord(actor="svc", role="service", endpoint="/hits", allowed=True))
        assert appended.id > 0
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 3
        for sql in (
            "UPDATE audit_log SET actor = 'x'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        await conn.execute("RESET ROLE")
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
        assert (await verify_audit(conn)).intact
    finally:
        await conn.close()


async def test_migrate_twice_and_role_exists_across_schemas(namespace: Namespace) -> None:
    again = namespace.cli("migrate")
    assert again.returncode == 0, again.stderr.decode()
    assert b"up to date" in again.stdout
    conn = await namespace.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = 'anpr_service'") == 1
        privileges = await conn.fetchval(
            "SELECT array_agg(privilege_type::text ORDER BY privilege_type) FROM information_schema.role_table_grants "
            "WHERE grantee = 'anpr_service' AND table_name = 'audit_log' AND table_schema = current_schema()"
        )
        # Appends go through audit_append() only: no direct INSERT (migration 0009).
        assert privileges == ["SELECT"]
        assert await conn.fetchval(
            "SELECT has_function_privilege('anpr_service', format('%I.audit_append(text, bigint, text, text, boolean, "
            "jsonb, text, text, text, bigint, text, integer)', current_schema()), 'EXECUTE')"
        )
    finally:
        await conn.close()


# --- purge ---------------------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HORIZON = NOW - timedelta(days=365)  # BE preset: 2025-11-28T12:00Z
DAYS = 400
# Within a day: the first instant, noon (the horizon's time of day), the last microsecond.
OFFSETS = (timedelta(0), timedelta(hours=12), timedelta(days=1) - timedelta(microseconds=1))


async def _fill(conn: asyncpg.Connection) -> list[datetime]:
    """Passages on each of the last DAYS days (and two days ahead), and a hit per 10 days."""
    first = NOW.date() - timedelta(days=DAYS)
    stamps = []
    for n in range(DAYS + 3):
        day = first + timedelta(days=n)
        await conn.execute("SELECT ensure_passage_partition($1)", day)
        start = datetime.combine(day, time(), tzinfo=UTC)
        stamps += [start + offset for offset in OFFSETS]
    await conn.executemany(
        """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, confidence,
               camera_known) VALUES ($1, 'LM-EISDEN', $2, '1-ABC-123', '1ABC123', '1ABC123', 0.9, true)""",
        [(f"r{i}", at) for i, at in enumerate(stamps)],
    )
    await conn.executemany(
        """INSERT INTO hits (hit_id, read_id, entry_id, list, camera_id, observed_at, plate_raw, plate_norm,
               plate_class, entry_plate, match_kind, distance, priority, action, covert, dispatch, suppressed,
               detected_at, payload)
           VALUES ($1, $2, 'e1', 'stolen', 'LM-EISDEN', $3, '1-ABC-123', '1ABC123', '1ABC123', '1ABC123', 'exact', 0,
               1, 'intercept', false, true, false, $3, '{}'::jsonb)""",
        [(uuid.uuid4(), f"r{i}", at) for i, at in enumerate(stamps) if i % 30 in (0, 1)],
    )  # fmt: skip
    return stamps


async def _partition_days(conn: asyncpg.Connection) -> list[date]:
    names = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'passages'::regclass"
    )
    return sorted(datetime.strptime(r["relname"], "passages_%Y%m%d").replace(tzinfo=UTC).date() for r in names)


async def test_purge_removes_exactly_what_is_past_the_horizon(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        stamps = await _fill(conn)
        hit_stamps = await conn.fetch("SELECT observed_at FROM hits")
        young = sum(at >= HORIZON for at in stamps)
        young_hits = sum(r["observed_at"] >= HORIZON for r in hit_stamps)
        whole_days_past = [at for at in stamps if at.date() + timedelta(days=1) <= HORIZON.date()]
        assert len(whole_days_past) > 0 and young > 0

        dry = namespace.cli("retention", "purge", "--dry-run", "--now", NOW.isoformat())
        assert dry.returncode == 0, dry.stderr.decode()
        assert f"would remove {len(whole_days_past) // 3} day partition(s) of passages, {len(whole_days_past)}" in (
            dry.stdout.decode()
        )
        assert await conn.fetchval("SELECT count(*) FROM passages") == len(stamps)
        assert await conn.fetchval("SELECT count(*) FROM purge_log") == 0

        done = namespace.cli("retention", "purge", "--now", NOW.isoformat())
        assert done.returncode == 0, done.stderr.decode()
        out = done.stdout.decode()
        assert (
            f"removed {len(whole_days_past) // 3} day partition(s) of passages, {len(whole_days_past)} passage" in out
        )
        assert f"removed {len(hit_stamps) - young_hits} hit(s)" in out
        assert "passages_20251128 holds the horizon" in out

        # Nothing younger than the horizon is lost, no partition entirely past it remains, and what remains
        # older than the horizon is only the straddling day's morning (never returned by queries).
        remaining = [r["observed_at"] for r in await conn.fetch("SELECT observed_at FROM passages")]
        assert sum(at >= HORIZON for at in remaining) == young
        assert all(at >= datetime.combine(HORIZON.date(), time(), tzinfo=UTC) for at in remaining)
        assert min(await _partition_days(conn)) == HORIZON.date()
        assert len(remaining) == len(stamps) - len(whole_days_past)
        assert await conn.fetchval("SELECT count(*) FROM hits WHERE observed_at < $1", HORIZON) == 0
        assert await conn.fetchval("SELECT count(*) FROM hits") == young_hits
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename = 'passages_20251127'") == 0

        log = await conn.fetchrow("SELECT * FROM purge_log")
        assert log["policy"] == "be" and log["as_of"] == NOW and log["passage_horizon"] == HORIZON
        assert log["passages_removed"] == len(whole_days_past)
        assert log["hits_removed"] == len(hit_stamps) - young_hits
        assert len(log["dropped_partitions"]) == len(whole_days_past) // 3
        assert "passages_20251127" in log["dropped_partitions"]

        again = namespace.cli("retention", "purge", "--now", NOW.isoformat())
        assert again.returncode == 0, again.stderr.decode()
        assert "nothing past the horizon: nothing removed" in again.stdout.decode()
        assert await conn.fetchval("SELECT count(*) FROM passages") == len(remaining)
        second = await conn.fetchrow("SELECT * FROM purge_log ORDER BY id DESC LIMIT 1")
        assert (second["passages_removed"], second["hits_removed"], second["dropped_partitions"]) == (0, 0, [])
        assert await conn.fetchval("SELECT count(*) FROM purge_log") == 2
    finally:
        await conn.close()


async def test_purge_one_day_later_drops_one_more_day(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        await _fill(conn)
        policy = preset("be")
        first = await purge(conn, policy, NOW)
        assert first.dropped_partitions[-1] == "passages_20251127"
        later = await purge(conn, policy, NOW + timedelta(days=1))
        assert later.dropped_partitions == ["passages_20251128"]
        assert later.passages_removed == 3
        assert min(await _partition_days(conn)) == date(2025, 11, 29)
    finally:
        await conn.close()


async def test_purge_finishes_an_interrupted_detach(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        await _fill(conn)
        # A purge that died between DETACH and DROP leaves the day as a table of its own.
        await conn.execute("ALTER TABLE passages DETACH PARTITION passages_20251120")
        report = await purge(conn, preset("be"), NOW)
        assert "passages_20251120" in report.dropped_partitions
        assert await conn.fetchval("SELECT to_regclass('passages_20251120')") is None
    finally:
        await conn.close()


async def test_run_purge_from_a_pool_with_the_nl_preset(namespace: Namespace) -> None:
    pool = await asyncpg.create_pool(namespace.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        async with pool.acquire() as conn:
            stamps = await _fill(conn)
        report = await run_purge(pool, preset("nl"), NOW)
        assert report is not None
        horizon = NOW - timedelta(days=28)
        assert report.passage_horizon == horizon
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM passages WHERE observed_at >= $1", horizon) == sum(
                at >= horizon for at in stamps
            )
            assert min(await _partition_days(conn)) == horizon.date()
    finally:
        await pool.close()


async def test_purge_removes_outcomes_past_their_horizon_and_with_their_hits(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        await _fill(conn)
        policy = replace(preset("be"), outcomes=timedelta(days=90))
        outcome_horizon = NOW - timedelta(days=90)
        hits = await conn.fetch("SELECT hit_id, observed_at FROM hits ORDER BY observed_at")
        # One outcome per hit, recorded a day after the hit was observed: old hits' outcomes go with their hits,
        # outcomes older than 90 days go on their own, the rest stays.
        await conn.executemany(
            "INSERT INTO hit_outcomes (hit_id, outcome, recorded_by, recorded_at) VALUES ($1, 'not_found', 'd', $2)",
            [(r["hit_id"], r["observed_at"] + timedelta(days=1)) for r in hits],
        )
        recorded = [r["observed_at"] + timedelta(days=1) for r in hits]
        with_hit = sum(r["observed_at"] < HORIZON for r in hits)
        doomed = sum(r["observed_at"] < HORIZON or at < outcome_horizon for r, at in zip(hits, recorded, strict=True))
        kept = len(hits) - doomed
        assert with_hit > 0 and doomed > with_hit and kept > 0

        dry = await purge(conn, policy, NOW, dry_run=True)
        assert dry.outcomes_removed == doomed and await conn.fetchval("SELECT count(*) FROM hit_outcomes") == len(hits)
        report = await purge(conn, policy, NOW)
        assert report.outcomes_removed == doomed
        assert f"removed {doomed} hit outcome(s)" in report.lines()
        assert await conn.fetchval("SELECT count(*) FROM hit_outcomes") == kept
        assert await conn.fetchval("SELECT min(recorded_at) FROM hit_outcomes") >= outcome_horizon
        log = await conn.fetchrow("SELECT * FROM purge_log")
        assert (log["outcomes_removed"], log["outcome_horizon"]) == (doomed, outcome_horizon)

        again = await purge(conn, policy, NOW)
        assert (again.outcomes_removed, again.hits_removed, again.removed_anything) == (0, 0, False)
        assert await conn.fetchval("SELECT count(*) FROM hit_outcomes") == kept
    finally:
        await conn.close()
