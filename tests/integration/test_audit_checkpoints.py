"""Signed audit checkpoints on the real database and broker: the signer's key and directory, the checkpoint topic,
and `audit verify` against them detecting what the database owner can do to the table unseen by the hash chain
alone (rows rewritten and re-hashed, removed, inserted, the tail truncated and the sequence reset), forged or dropped
checkpoints; the signer refusing to continue a rewritten log, and checkpointing as soon as a purge commits."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from anpr_stream.audit import AuditRecord, StoredRow, row_hash
from anpr_stream.audit.chain import GENESIS
from anpr_stream.audit.log import SELECT_CHAIN, append_audit
from tests.integration.conftest import ARTIFACTS, ROOT, Namespace
from tests.integration.test_retention_audit import _append

pytestmark = pytest.mark.integration

COLUMNS = ("id, at, actor, actor_id, role, endpoint, parameters, purpose, case_reference, authorisation_reference, "
           "authorisation_id, allowed, reason, result_count, prev_hash, row_hash, format")  # fmt: skip


class Signer:
    """The signer's files for one test, and the commands run with them."""

    def __init__(self, ns: Namespace, tmp: Path) -> None:
        self.ns = ns
        self.private, self.public, self.dir = tmp / "signer.key", tmp / "signer.pub", tmp / "checkpoints"
        made = ns.cli("audit", "keygen", "--private-key", str(self.private), "--public-key", str(self.public))
        assert made.returncode == 0, made.stderr.decode()

    def checkpoint(self, *extra: str) -> subprocess.CompletedProcess[bytes]:
        return self.ns.cli("audit", "checkpoint", "--private-key", str(self.private), "--dir", str(self.dir), *extra)

    def verify(self, *extra: str) -> tuple[int, str]:
        done = self.ns.cli("audit", "verify", "--public-key", str(self.public), "--checkpoints", str(self.dir), *extra)
        return done.returncode, done.stdout.decode() + done.stderr.decode()

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("checkpoint-*.json"))


@pytest.fixture
def signer(namespace: Namespace, tmp_path: Path) -> Signer:
    return Signer(namespace, tmp_path)


async def _stored(conn: asyncpg.Connection) -> list[StoredRow]:
    return [StoredRow(**dict(r)) for r in await conn.fetch(SELECT_CHAIN)]


async def _rewrite(conn: asyncpg.Connection, change: Callable[[list[StoredRow]], list[StoredRow]]) -> None:
    """What the owner can do: take the rows, change them, recompute every hash with the project's own chain code,
    and put the result in place of the table with the triggers disabled. The chain alone then verifies."""
    rows = change(await _stored(conn))
    prev = GENESIS
    rehashed = []
    for row in rows:
        row = replace(row, prev_hash=prev)
        row = replace(row, row_hash=row_hash(prev, row))
        rehashed.append(row)
        prev = row.row_hash
    async with conn.transaction():
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        await conn.execute("DELETE FROM audit_log")
        for r in rehashed:
            await conn.execute(
                f"INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11,"  # noqa: S608 -- constant
                " $12, $13, $14, $15, $16, $17)",
                r.id, r.at, r.actor, r.actor_id, r.role, r.endpoint, r.parameters_json, r.purpose, r.case_reference,
                r.authorisation_reference, r.authorisation_id, r.allowed, r.reason, r.result_count, r.prev_hash,
                r.row_hash, r.format,
            )  # fmt: skip
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")


def _chain_only(ns: Namespace) -> tuple[int, str]:
    done = ns.cli("audit", "verify")
    return done.returncode, done.stdout.decode()


async def _signed_log(ns: Namespace, signer: Signer, n: int = 8) -> list[StoredRow]:
    """n rows in two checkpoints (the second after a gap in the ids: an append rolled back)."""
    conn = await ns.db()
    try:
        first = await _append(conn, n // 2)
        done = signer.checkpoint()
        assert done.returncode == 0, done.stderr.decode()
        await conn.execute("SELECT nextval('audit_log_id_seq')")  # an unused id, as a rolled-back append leaves
        second = await _append(conn, n - n // 2, start=n // 2)
        done = signer.checkpoint()
        assert done.returncode == 0, done.stderr.decode()
        return first + second
    finally:
        await conn.close()


async def test_keys_checkpoints_and_a_clean_verification(namespace: Namespace, signer: Signer) -> None:
    assert stat.S_IMODE(signer.private.stat().st_mode) == 0o400
    again = namespace.cli("audit", "keygen", "--private-key", str(signer.private), "--public-key", str(signer.public))
    assert again.returncode == 2 and b"not overwritten" in again.stderr
    rows = await _signed_log(namespace, signer)
    files = signer.files()
    assert [f.name for f in files] == ["checkpoint-0000000001.json", "checkpoint-0000000002.json"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o444 for f in files)
    second = json.loads(files[1].read_text())["checkpoint"]
    assert [r[0] for r in second["rows"]] == [r.id for r in rows[4:]] and second["total_rows"] == 8
    assert second["head_hash"] == rows[-1].row_hash
    # Nothing appended since: an interval run writes nothing, a manual run an empty checkpoint.
    code, out = signer.verify("--kafka")
    assert code == 0, out
    assert "intact: 8 rows" in out and "8 row(s) match 2 signed checkpoint(s)" in out
    conn = await namespace.db()
    try:
        verified = await conn.fetchrow("SELECT * FROM audit_log ORDER BY id DESC LIMIT 1")
        assert verified["endpoint"] == "admin.audit.verify" and verified["result_count"] == 8
        assert json.loads(verified["parameters"])["intact"] is True
    finally:
        await conn.close()
    # The verification row is appended after the walk: the next verification finds it unsigned, not broken.
    code, out = signer.verify("--kafka")
    assert code == 0 and "1 row(s) after the last checkpoint" in out, out


@pytest.mark.parametrize("forgery", ["rewrite", "remove", "insert", "truncate-and-reset", "reset-and-append"])
async def test_owner_forgeries_are_detected_with_the_checkpoints(namespace: Namespace, signer: Signer,
                                                                 forgery: str) -> None:  # fmt: skip
    rows = await _signed_log(namespace, signer)
    conn = await namespace.db()
    try:
        if forgery == "rewrite":
            target = rows[2].id
            await _rewrite(conn, lambda rs: [replace(r, purpose="routine check") if r.id == target else r
                                             for r in rs])  # fmt: skip
        elif forgery == "remove":
            target = rows[5].id
            await _rewrite(conn, lambda rs: [r for r in rs if r.id != target])
        elif forgery == "insert":
            gap = rows[3].id + 1  # the id the rolled-back append left
            assert rows[4].id == gap + 1
            target = gap
            await _rewrite(conn, lambda rs: sorted([*rs, replace(rows[3], id=gap, actor="forger")],
                                                   key=lambda r: r.id))  # fmt: skip
        elif forgery == "truncate-and-reset":
            target = rows[6].id
            await _rewrite(conn, lambda rs: [r for r in rs if r.id < target])
            await conn.execute("SELECT setval('audit_log_id_seq', $1)", target - 1)
        else:  # the tail replaced by rows appended through the database's own function, ids reused
            target = rows[5].id
            await _rewrite(conn, lambda rs: [r for r in rs if r.id < target])
            await conn.execute("SELECT setval('audit_log_id_seq', $1)", target - 1)
            for i in range(3):
                await append_audit(conn, AuditRecord(actor="forger", role="investigator", endpoint="/passages",
                                                     allowed=True, purpose=f"harmless {i}"))  # fmt: skip
    finally:
        await conn.close()
    code, out = signer.verify()
    assert code == 1, out
    kind = {"rewrite": "altered", "remove": "removed", "insert": "inserted", "truncate-and-reset": "truncated",
            "reset-and-append": "altered"}[forgery]  # fmt: skip
    assert f"BROKEN (first affected row id {target}): {kind}: row id {target}" in out, out
    # The hash chain alone cannot see it (the reason for checkpoints). Verifications append their own row, after
    # the walk: here the first one took the next id after the forger's sequence reset.
    code, out = _chain_only(namespace)
    assert code == 0 and "intact" in out and "note: ids" not in out, out
    # And the signer will not sign the forged log.
    refused = signer.checkpoint()
    assert refused.returncode == 1 and b"refused" in refused.stderr, refused.stderr.decode()


async def test_forged_altered_and_dropped_checkpoints(namespace: Namespace, signer: Signer, tmp_path: Path) -> None:
    rows = await _signed_log(namespace, signer)
    first, second = signer.files()
    # An altered checkpoint (one signed hash changed to match a rewrite): its signature no longer verifies.
    doc = json.loads(second.read_text())
    doc["checkpoint"]["rows"][0][1] = "0" * 64
    second.chmod(0o644)
    second.write_text(json.dumps(doc))
    code, out = signer.verify()
    assert code == 1 and f"bad-checkpoint: row id {rows[4].id}: checkpoint 2 does not verify" in out, out
    # The same checkpoint removed from the directory: the topic still holds it.
    second.unlink()
    code, out = signer.verify("--kafka")
    assert code == 1 and "the directory lacks checkpoint(s) 2" in out, out
    # Without the topic, the directory alone shows the first checkpoint intact and the rest as unsigned.
    code, out = signer.verify()
    assert code == 0 and "row(s) after the last checkpoint" in out, out
    # A checkpoint signed with another key (a forger who made his own key pair) is refused.
    other = tmp_path / "other"
    other.mkdir()
    made = namespace.cli("audit", "keygen", "--private-key", str(other / "k"), "--public-key", str(other / "p"))
    assert made.returncode == 0
    forged = namespace.cli("audit", "checkpoint", "--private-key", str(other / "k"), "--dir", str(signer.dir),
                           "--no-kafka")  # fmt: skip
    assert forged.returncode == 1 and b"not signed with this key" in forged.stderr
    assert first.exists()


async def test_the_service_login_cannot_write_the_log_directly(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        await conn.execute("SET ROLE anpr_service")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO audit_log (id, at, actor, role, endpoint, parameters, allowed, prev_hash, row_hash) "
                "VALUES (9223372036854775000, now(), 'forger', 'dpo', '/x', '{}', true, $1, $1)",
                "0" * 64,
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SELECT setval('audit_log_id_seq', 1000000)")
    finally:
        await conn.close()


async def test_the_signer_checkpoints_as_soon_as_a_purge_commits(namespace: Namespace, signer: Signer) -> None:
    await _signed_log(namespace, signer, n=4)
    before = len(signer.files())
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"signer-{namespace.tag}.log", "ab")  # noqa: SIM115 -- handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "anpr_stream.cli", "audit", "checkpoint", "--private-key", str(signer.private),
         "--dir", str(signer.dir), "--every", "3600"],
        env=namespace.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    try:
        await asyncio.sleep(3)  # the signer's first turn (nothing new: no file) and its LISTEN
        assert len(signer.files()) == before
        purged = namespace.cli("retention", "purge", "--by", "dpo-desk")
        assert purged.returncode == 0, purged.stderr.decode()
        for _ in range(100):
            if len(signer.files()) > before:
                break
            await asyncio.sleep(0.1)
        newest = json.loads(signer.files()[-1].read_text())["checkpoint"]
        assert newest["reason"] == "purge" and len(signer.files()) == before + 1
        conn = await namespace.db()
        try:
            purge_row = await conn.fetchrow("SELECT * FROM audit_log WHERE endpoint = 'admin.retention.purge'")
        finally:
            await conn.close()
        assert purge_row["actor"] == "dpo-desk" and json.loads(purge_row["parameters"])["policy"] == "be"
        assert newest["head_id"] == purge_row["id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    code, out = signer.verify("--kafka")
    assert code == 0, out


def test_verify_refuses_checkpoints_without_a_key(namespace: Namespace, tmp_path: Path) -> None:
    done = namespace.cli("audit", "verify", "--checkpoints", str(tmp_path))
    assert done.returncode == 2 and b"needs --public-key" in done.stderr
    (tmp_path / "pub").write_text("not a key")
    done = namespace.cli("audit", "verify", "--public-key", str(tmp_path / "pub"))
    assert done.returncode == 2 and b"pub" in done.stderr
