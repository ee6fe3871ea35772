"""The DPO report on the real database, by the CLI and the API: holdings against the policy (violations named),
purge history, requests per user and purpose, denials, the audit chain's state (against the signed checkpoints when
the API has the public key and the checkpoint directory); JSON and CSV; audited."""

from __future__ import annotations

import csv
import getpass
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from anpr_stream.api.registry import Registration, insert
from anpr_stream.audit import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.dpo.report import NO_CHECKPOINTS, build_report
from anpr_stream.retention import preset
from anpr_stream.retention.policy import Access
from anpr_stream.retention.purge import purge
from tests.integration.conftest import Namespace
from tests.integration.test_api_access import headers, plant_hit
from tests.integration.test_audit_checkpoints import Signer, _rewrite, _signed_log
from tests.integration.test_authorisations_cli import registered_id, registration
from tests.integration.test_retention_audit import _append

pytestmark = pytest.mark.integration


@pytest.fixture
async def planted(namespace: Namespace) -> datetime:
    """Passages 400 and 2 days old (the old day is past the BE horizon: a violation), a hit and its outcome, audit
    rows of two users, one purge run (audited too: the fifth row). Returns the instant it was planted at."""
    now = datetime.now(UTC)
    conn = await namespace.db()
    try:
        for age in (400, 2):
            at = now - timedelta(days=age, minutes=1)
            await conn.execute("SELECT ensure_passage_partition($1)", at.date())
            await conn.execute(
                """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class,
                       confidence, camera_known) VALUES ($1, 'LM-EISDEN', $2, '1ABC123', '1ABC123', '1ABC123', 0.9,
                       true)""",
                f"r{age}", at,
            )  # fmt: skip
        hit = await plant_hit(conn, timedelta(days=2))
        await conn.execute("INSERT INTO hit_outcomes (hit_id, outcome, recorded_by) VALUES ($1, 'intercepted', 'd')",
                           hit)  # fmt: skip
        for actor, purpose, allowed in [("alice", "burglary", True), ("alice", "burglary", True),
                                        ("alice", "theft", False), ("bob", None, False)]:  # fmt: skip
            await append_audit(conn, AuditRecord(
                actor=actor, role="investigator", endpoint="hits.list", allowed=allowed, purpose=purpose,
                case_reference="LM.1" if purpose else None, reason=None if allowed else f"{actor} refused",
                result_count=3 if allowed else None,
            ))  # fmt: skip
        # A purge as of 40 days ago (horizon 405 days back): records a run, removes nothing planted.
        assert not (await purge(conn, preset("be"), now - timedelta(days=40))).removed_anything
    finally:
        await conn.close()
    return now


async def test_cli_report_json_and_csv(namespace: Namespace, planted: datetime, tmp_path: object) -> None:
    now = planted
    done = namespace.cli("dpo", "report")
    assert done.returncode == 1, done.stderr.decode()  # a violation: exit 1, report written
    report = json.loads(done.stdout)
    held = {h["data_class"]: h for h in report["holdings"]}
    assert held["passages"]["rows"] == 2 and held["passages"]["oldest_age_days"] == 400
    assert held["passages"]["past_horizon"] and held["passages"]["partitions"] == 2
    old_day = (now - timedelta(days=400)).date().isoformat()
    assert report["violations"] == [f"passages: oldest {old_day} is 400 days old, policy be keeps 365"]
    assert b"violation: passages: oldest" in done.stderr
    assert held["hits"]["rows"] == 1 and held["hits"]["violation"] is None and not held["hits"]["past_horizon"]
    assert held["outcomes"]["rows"] == 1 and held["audit"]["rows"] == 5
    assert report["policy"] == "be" and len(report["purges"]) == 1
    requests = {(r["actor"], r["purpose"]): (r["allowed"], r["denied"], r["results"]) for r in report["requests"]}
    assert requests == {("alice", "burglary"): (2, 0, 6), ("alice", "theft"): (0, 1, 0), ("bob", None): (0, 1, 0),
                        ("system:purge", None): (1, 0, 0)}  # fmt: skip
    assert [d["actor"] for d in report["denied"]] == ["bob", "alice"] and report["denied_total"] == 2
    # The CLI passes no checkpoints: the hash chain alone, and the report says so.
    assert report["audit_chain"] == {
        "intact": True, "rows": 5, "last_id": 5, "broken": None, "note": NO_CHECKPOINTS, "checkpoints_verified": False,
        "checkpoints": None, "last_checkpoint": None, "signed_rows": None, "unsigned_tail": None, "findings": [],
    }  # fmt: skip

    out = f"{tmp_path}/report.csv"
    done = namespace.cli("dpo", "report", "--format", "csv", "--output", out)
    assert done.returncode == 1, done.stderr.decode()
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # the first run is a request by now (cli:<operator>)
    sections = [r["section"] for r in rows]
    assert sections[:14] == ["holding"] * 4 + ["purge"] + ["request"] * 5 + ["denied"] * 2 + ["audit_chain"] + [
        "retention_check"]  # fmt: skip
    assert sections[14:] == ["retention_topic"] * sections.count("retention_topic") + ["retention_table"] * 4
    assert rows[0]["data_class"] == "passages" and rows[0]["past_horizon"] == "true" and rows[0]["partitions"] == "2"
    denied = namespace.cli("dpo", "report", "--format", "csv", "--section", "denied")
    only = list(csv.DictReader(io.StringIO(denied.stdout.decode())))
    assert list(only[0]) == ["id", "at", "actor", "role", "endpoint", "reason", "purpose", "case_reference"]
    assert [r["reason"] for r in only] == ["bob refused", "alice refused"]

    conn = await namespace.db()
    try:  # every run is audited: the first run's row is the second run's history
        rows = await conn.fetch("SELECT actor, role, endpoint, allowed, parameters FROM audit_log WHERE id > 5")
    finally:
        await conn.close()
    assert len(rows) == 3 and all(r["actor"].startswith("cli:") and r["endpoint"] == "dpo.report" for r in rows)
    assert json.loads(rows[1]["parameters"])["format"] == "csv"
    verify = namespace.cli("audit", "verify")
    assert verify.returncode == 0 and b"intact: 8 rows" in verify.stdout


def test_cli_report_refuses_bad_windows(namespace: Namespace) -> None:
    bad = namespace.cli("dpo", "report", "--since", "2026-11-02T00:00:00Z", "--until", "2026-11-01T00:00:00Z")
    assert bad.returncode == 2 and b"is not after" in bad.stderr
    bad = namespace.cli("dpo", "report", "--section", "denied")
    assert bad.returncode == 2 and b"--format csv" in bad.stderr


async def test_api_report_for_dpo_and_admin_only(namespace: Namespace, planted: datetime) -> None:
    now = planted
    tokens = {role: namespace.add_user(f"u-{role}", role) for role in ("dpo", "admin", "dispatcher", "investigator")}
    base = namespace.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for role, token in tokens.items():
            got = await client.get("/v1/dpo/report", headers={"Authorization": f"Bearer {token}"})
            if role in ("dpo", "admin"):
                assert got.status_code == 200, got.text
                assert got.json()["violations"][0].startswith("passages: oldest")
                chain = got.json()["audit_chain"]  # no ANPR_AUDIT_PUBLIC_KEY / ANPR_AUDIT_CHECKPOINT_DIR: chain only
                assert chain["intact"] and not chain["checkpoints_verified"] and chain["note"] == NO_CHECKPOINTS
                assert chain["last_checkpoint"] is None and chain["findings"] == []
            else:
                assert got.status_code == 403 and f"role {role} may not use dpo.report" in got.json()["detail"]
        auth = {"Authorization": f"Bearer {tokens['dpo']}"}
        since = (now - timedelta(days=1)).isoformat()
        got = await client.get("/v1/dpo/report", headers=auth, params={"format": "csv", "since": since})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.headers["content-disposition"].startswith('attachment; filename="dpo-report-')
        sections = [r["section"] for r in csv.DictReader(io.StringIO(got.text))]
        assert sections.count("holding") == 4 and "audit_chain" in sections
        got = await client.get("/v1/dpo/report", headers=auth, params={"format": "csv", "section": "request"})
        assert got.status_code == 200 and got.text.startswith("actor,role,endpoint,purpose,allowed,denied,results")
        bad = [({"since": "2026-01-01T00:00:00"}, 422), ({"section": "request"}, 400),
               ({"since": now.isoformat(), "until": since}, 400), ({"format": "xml"}, 422)]  # fmt: skip
        for params, status in bad:
            got = await client.get("/v1/dpo/report", headers=auth, params=params)
            assert got.status_code == status, (params, got.text)
    conn = await namespace.db()
    try:
        rows = await conn.fetch("SELECT actor, allowed, result_count FROM audit_log WHERE endpoint = 'dpo.report'")
    finally:
        await conn.close()
    assert len(rows) == 4 + 2 + 4
    assert sum(r["allowed"] for r in rows) == 4 and all(r["result_count"] for r in rows if r["allowed"])
    assert namespace.cli("audit", "verify").returncode == 0


def _request(actor: str, authorisation_id: int | None, allowed: bool = True, **extra: Any) -> AuditRecord:
    fields: dict[str, Any] = {
        "actor": actor, "actor_id": 11, "role": "investigator", "endpoint": "plates.route", "allowed": allowed,
        "purpose": "burglary", "case_reference": "LM.2026.0042", "authorisation_id": authorisation_id,
        "result_count": 5 if allowed else None, "reason": None if allowed else "refused",
    }  # fmt: skip
    return AuditRecord(**(fields | extra))


def _past(reference: str, valid_from: timedelta, valid_until: timedelta) -> Registration:
    """Registered as the table takes it (checked() refuses a validity already past: these are history)."""
    now = datetime.now(UTC)
    return Registration(
        kind=Access.JUDICIAL_WITH_PROSECUTOR_DECISION, issuing_authority="PK Limburg", issued_by="M. Peeters",
        reference=reference, case_reference="LM.2026.0042", plates=("1ABC123",), cameras=None,
        data_from=now - timedelta(days=300), data_until=now - timedelta(days=200), valid_from=now + valid_from,
        valid_until=now + valid_until,
    )  # fmt: skip


def _report(namespace: Namespace, *args: str) -> dict[str, Any]:
    done = namespace.cli("dpo", "report", *args)
    assert done.returncode == 0, done.stderr.decode()
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def test_report_registry_sections(namespace: Namespace) -> None:
    """Restricted-tier requests with their authorisation, requests under an authorisation revoked after them (in the
    window, or revoked in it), authorisations in force in the window that no allowed request relied on; the
    registry's own audit rows (which carry the authorisation id) count as none of these."""
    cli = namespace.cli
    a1, a2, a3, a4, a5 = (registered_id(cli(*registration(f"PK-{n}", "--plates", "1ABC123"))) for n in range(1, 6))
    conn = await namespace.db()
    try:
        a6 = (await insert(conn, _past("PK-6", timedelta(days=-100), timedelta(days=-40)), "im", None))[0]
        a7 = (await insert(conn, _past("PK-7", timedelta(days=-20), timedelta(days=-1)), "im", None))[0]
        r1 = await append_audit(conn, _request("alice", a1))
        r2 = await append_audit(conn, _request("bob", a2, endpoint="cameras.passages", actor_id=None))
        r3 = await append_audit(conn, _request("carol", a4, allowed=False))
        await append_audit(conn, _request("alice", None, endpoint="hits.list"))  # open tier: none of these
        middle = await conn.fetchval("SELECT clock_timestamp()")
        r5 = await append_audit(conn, _request("alice", a1))
        revoked = cli("authorisations", "revoke", str(a1), "--reason", "decision withdrawn", "--by", "im-anna")
        assert revoked.returncode == 0, revoked.stderr.decode()
        assert cli("authorisations", "revoke", str(a5), "--reason", "case closed").returncode == 0
        r6 = await append_audit(conn, _request('=HYPERLINK("http://x")', a1, allowed=False))  # after the revocation
        a1_revoked = await conn.fetchval("SELECT revoked_at FROM authorisations WHERE authorisation_id = $1", a1)
    finally:
        await conn.close()

    report = _report(namespace)
    restricted = report["restricted_requests"]
    assert [r["id"] for r in restricted] == [r1.id, r2.id, r3.id, r5.id, r6.id]
    assert restricted[0] == {
        "id": r1.id, "at": r1.at.isoformat().replace("+00:00", "Z"), "actor": "alice", "actor_id": 11,
        "role": "investigator", "endpoint": "plates.route", "purpose": "burglary", "case_reference": "LM.2026.0042",
        "authorisation_id": a1, "kind": "judicial_with_prosecutor_decision",
        "issuing_authority": "procureur des Konings, Limburg", "reference": "PK-1", "allowed": True, "result_count": 5,
    }  # fmt: skip
    assert [(r["actor"], r["actor_id"], r["endpoint"], r["authorisation_id"], r["allowed"], r["result_count"])
            for r in restricted[1:]] == [
        ("bob", None, "cameras.passages", a2, True, 5), ("carol", 11, "plates.route", a4, False, None),
        ("alice", 11, "plates.route", a1, True, 5), ('=HYPERLINK("http://x")', 11, "plates.route", a1, False, None),
    ]  # fmt: skip
    under_revoked = report["revoked_requests"]
    assert [r["id"] for r in under_revoked] == [r1.id, r5.id]  # r6 came after the revocation
    assert under_revoked[0] == restricted[0] | {
        "revoked_at": a1_revoked.isoformat().replace("+00:00", "Z"), "revoked_by": "im-anna",
        "revocation_reason": "decision withdrawn",
    }  # fmt: skip
    unused = {u["authorisation_id"]: u for u in report["unused_authorisations"]}
    # a4 only refused, a5 revoked unused, a7 expired yesterday; a6 was no longer valid in the window
    assert {i: (u["current"], u["revoked_at"] is not None) for i, u in unused.items()} == {
        a3: (True, False), a4: (True, False), a5: (False, True), a7: (False, False),
    }  # fmt: skip
    assert a6 not in unused and unused[a3]["registered_by"] == f"cli:{getpass.getuser()}"
    assert {k: unused[a7][k] for k in ("kind", "issuing_authority", "reference", "case_reference", "single_query",
                                       "used_at", "registered_by")} == {
        "kind": "judicial_with_prosecutor_decision", "issuing_authority": "PK Limburg", "reference": "PK-7",
        "case_reference": "LM.2026.0042", "single_query": False, "used_at": None, "registered_by": "im",
    }  # fmt: skip

    # From the middle on: r1 is before the window but its authorisation was revoked in it; a7 expired before it.
    later = _report(namespace, "--since", middle.isoformat())
    assert [r["id"] for r in later["restricted_requests"]] == [r5.id, r6.id]
    assert [r["id"] for r in later["revoked_requests"]] == [r1.id, r5.id]
    assert [u["authorisation_id"] for u in later["unused_authorisations"]] == [a3, a4, a5]
    # Up to the middle: r1 is in the window and was revoked since; a5 was revoked after the window, so in force in it.
    earlier = _report(namespace, "--until", middle.isoformat())
    assert [r["id"] for r in earlier["restricted_requests"]] == [r1.id, r2.id, r3.id]
    assert [r["id"] for r in earlier["revoked_requests"]] == [r1.id]
    assert [u["authorisation_id"] for u in earlier["unused_authorisations"]] == [a3, a4, a5, a7]

    done = cli("dpo", "report", "--format", "csv", "--section", "restricted_request")
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert list(rows[0]) == [
        "id", "at", "actor", "actor_id", "role", "endpoint", "purpose", "case_reference", "authorisation_id", "kind",
        "issuing_authority", "reference", "allowed", "result_count",
    ]  # fmt: skip
    assert [r["actor"] for r in rows] == ["alice", "bob", "carol", "alice", '\'=HYPERLINK("http://x")']
    assert (rows[1]["actor_id"], rows[2]["allowed"], rows[2]["result_count"]) == ("", "false", "")
    done = cli("dpo", "report", "--format", "csv")
    sections = [r["section"] for r in csv.DictReader(io.StringIO(done.stdout.decode()))]
    tail = sections[sections.index("audit_chain") + 1 :]
    assert tail[:12] == ["restricted_request"] * 5 + ["revoked_request"] * 2 + ["unused_authorisation"] * 4 + [
        "retention_check"]  # fmt: skip
    assert tail[12:] == ["retention_topic"] * tail.count("retention_topic") + ["retention_table"] * 4
    revoked_csv = list(csv.DictReader(io.StringIO(cli("dpo", "report", "--format", "csv", "--section",
                                                      "revoked_request").stdout.decode())))  # fmt: skip
    assert [(r["id"], r["revoked_by"], r["revocation_reason"]) for r in revoked_csv] == [
        (str(r1.id), "im-anna", "decision withdrawn"), (str(r5.id), "im-anna", "decision withdrawn")]  # fmt: skip
    assert cli("audit", "verify").returncode == 0


async def test_api_report_registry_sections(namespace: Namespace) -> None:
    """Through the running API: the information manager registers two authorisations, an investigator relies on one
    for a route into the restricted tier, the manager revokes it; the DPO's report names the request, the
    revocation and the authorisation never used."""
    tokens = {role: namespace.add_user(f"r-{role}", role) for role in ("information_manager", "investigator", "dpo")}
    base = namespace.start_api()
    now = datetime.now(UTC)
    body = {
        "kind": "judicial_with_prosecutor_decision", "issuing_authority": "procureur des Konings, Limburg",
        "issued_by": "M. Peeters", "case_reference": "LM.2026.0042", "plates": ["1-abc-123"],
        "data_from": (now - timedelta(days=200)).isoformat(), "data_until": now.isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat(),
    }  # fmt: skip
    manager = headers(tokens["information_manager"], "none", "be")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        used, spare = [
            (await client.post("/v1/registry/authorisations", json=body | {"reference": ref}, headers=manager)).json()
            for ref in ("PK-LM-1", "PK-LM-2")
        ]
        cite = headers(tokens["investigator"], "authorised", "be", used["authorisation_id"])
        since = {"since": (now - timedelta(days=100)).isoformat()}
        route = await client.get("/v1/plates/1ABC123/route", params=since, headers=cite)
        assert route.status_code == 200, route.text
        revoke = await client.post(f"/v1/registry/authorisations/{used['authorisation_id']}/revoke",
                                   json={"reason": "=decision withdrawn"}, headers=manager)  # fmt: skip
        assert revoke.status_code == 200, revoke.text
        dpo = {"Authorization": f"Bearer {tokens['dpo']}"}
        got = await client.get("/v1/dpo/report", headers=dpo)
        assert got.status_code == 200, got.text
        report = got.json()
        csv_got = await client.get(
            "/v1/dpo/report", headers=dpo, params={"format": "csv", "section": "revoked_request"}
        )
    conn = await namespace.db()
    try:
        investigator = await conn.fetchval("SELECT user_id FROM api_users WHERE name = 'r-investigator'")
        cited = await conn.fetchval("SELECT id FROM audit_log WHERE endpoint = 'plates.route' AND allowed")
    finally:
        await conn.close()
    (request,) = report["restricted_requests"]
    assert {k: request[k] for k in ("id", "actor", "actor_id", "role", "endpoint", "case_reference",
                                    "authorisation_id", "issuing_authority", "reference", "allowed")} == {
        "id": cited, "actor": "r-investigator", "actor_id": investigator, "role": "investigator",
        "endpoint": "plates.route", "case_reference": "LM.2026.0042", "authorisation_id": used["authorisation_id"],
        "issuing_authority": "procureur des Konings, Limburg", "reference": "PK-LM-1", "allowed": True,
    }  # fmt: skip
    (under,) = report["revoked_requests"]
    assert (under["id"], under["revoked_by"], under["revocation_reason"]) == (
        cited, "r-information_manager", "=decision withdrawn")  # fmt: skip
    assert [(u["authorisation_id"], u["current"]) for u in report["unused_authorisations"]] == [
        (spare["authorisation_id"], True)]  # fmt: skip
    (row,) = csv.DictReader(io.StringIO(csv_got.text))
    assert row["revocation_reason"] == "'=decision withdrawn" and row["id"] == str(cited)


async def test_api_report_states_the_last_signed_checkpoint(namespace: Namespace, tmp_path: Path) -> None:
    """With ANPR_AUDIT_PUBLIC_KEY and ANPR_AUDIT_CHECKPOINT_DIR the API's report verifies the audit chain against the
    signed checkpoints: the last one, the rows appended since; a signed row rewritten and re-hashed by the database
    owner (unseen by the hash chain alone) makes it not intact, with a finding naming the row."""
    token = namespace.add_user("cp-dpo", "dpo")
    signer = Signer(namespace, tmp_path)
    rows = await _signed_log(namespace, signer)  # two checkpoints
    last = json.loads(signer.files()[-1].read_text())["checkpoint"]
    conn = await namespace.db()
    try:
        await _append(conn, 3, start=8)  # after the last checkpoint
        total = await conn.fetchval("SELECT count(*) FROM audit_log")
        tail = await conn.fetchval("SELECT count(*) FROM audit_log WHERE id > $1", last["head_id"])
    finally:
        await conn.close()
    assert last["head_id"] == rows[-1].id and tail == 3
    base = namespace.start_api(extra_env={"ANPR_AUDIT_PUBLIC_KEY": str(signer.public),
                                          "ANPR_AUDIT_CHECKPOINT_DIR": str(signer.dir)})  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        got = await client.get("/v1/dpo/report", headers=auth)
        assert got.status_code == 200, got.text
        chain = got.json()["audit_chain"]
        assert {k: chain[k] for k in ("intact", "rows", "broken", "checkpoints_verified", "checkpoints", "signed_rows",
                                      "unsigned_tail", "findings")} == {
            "intact": True, "rows": total, "broken": None, "checkpoints_verified": True, "checkpoints": 2,
            "signed_rows": last["total_rows"], "unsigned_tail": 3, "findings": [],
        }  # fmt: skip
        assert chain["last_checkpoint"] == {
            "seq": 2, "issued_at": last["issued_at"].replace("+00:00", "Z"), "reason": "manual",
            "head_id": rows[-1].id, "total_rows": last["total_rows"], "key_id": last["key_id"],
        }  # fmt: skip
        assert "3 row(s) after the last checkpoint (2," in chain["note"]
        got = await client.get("/v1/dpo/report", headers=auth, params={"format": "csv", "section": "audit_chain"})
        (row,) = csv.DictReader(io.StringIO(got.text))
        # The first report's own audit row (appended after its walk) is unsigned too by now.
        assert (row["intact"], row["checkpoints_verified"], row["checkpoint_seq"], row["checkpoint_head_id"],
                row["unsigned_tail"], row["findings"]) == ("true", "true", "2", str(rows[-1].id), "4", "")  # fmt: skip

        # The owner rewrites a signed row and re-hashes the chain: the hash chain alone still verifies.
        target = rows[2].id
        conn = await namespace.db()
        try:
            await _rewrite(conn, lambda rs: [replace(r, purpose="routine check") if r.id == target else r
                                             for r in rs])  # fmt: skip
        finally:
            await conn.close()
        assert namespace.cli("audit", "verify").returncode == 0
        got = await client.get("/v1/dpo/report", headers=auth)
        assert got.status_code == 200, got.text
        chain = got.json()["audit_chain"]
        assert not chain["intact"] and chain["checkpoints_verified"]
        assert chain["broken"] == chain["findings"][0]
        assert chain["findings"][0].startswith(f"altered: row id {target}: its row_hash is not the one signed in "
                                               "checkpoint 1"), chain  # fmt: skip
        got = await client.get("/v1/dpo/report", headers=auth, params={"format": "csv", "section": "audit_chain"})
        (row,) = csv.DictReader(io.StringIO(got.text))
        assert row["intact"] == "false" and row["findings"].startswith(f"altered: row id {target}")

    # A key file that cannot be read: the report still answers, not intact, saying why.
    bad = tmp_path / "not-a-key.pub"
    bad.write_text("not a key")
    base = namespace.start_api(extra_env={"ANPR_AUDIT_PUBLIC_KEY": str(bad),
                                          "ANPR_AUDIT_CHECKPOINT_DIR": str(signer.dir)})  # fmt: skip
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        got = await client.get("/v1/dpo/report", headers=auth)
    assert got.status_code == 200, got.text
    chain = got.json()["audit_chain"]
    assert not chain["intact"] and not chain["checkpoints_verified"] and chain["last_checkpoint"] is None
    assert chain["findings"][0].startswith(f"the public key {bad} cannot be read") and str(bad) in chain["note"]


async def test_build_report_with_and_without_checkpoints(namespace: Namespace, tmp_path: Path) -> None:
    """build_report itself: the key as a file or loaded, an empty or missing directory, only one of the two."""
    signer = Signer(namespace, tmp_path)
    conn = await namespace.db()
    try:
        await _append(conn, 2)
        now = datetime.now(UTC)
        args = (conn, preset("be"), now, now - timedelta(days=30), now)
        # No checkpoint yet: verified, nothing signed, every row in the unsigned tail.
        empty = (await build_report(*args, public_key=signer.public, checkpoint_dir=signer.dir)).audit_chain
        assert (empty.intact, empty.checkpoints_verified, empty.checkpoints, empty.last_checkpoint,
                empty.unsigned_tail) == (True, True, 0, None, 2)  # fmt: skip
        assert empty.note is not None and f"no checkpoints in {signer.dir}" in empty.note
        done = signer.checkpoint("--no-kafka")
        assert done.returncode == 0, done.stderr.decode()
        await _append(conn, 1, start=2)
        chain = (await build_report(*args, public_key=signer.public, checkpoint_dir=signer.dir)).audit_chain
        assert chain.intact and chain.last_checkpoint is not None and chain.last_checkpoint.seq == 1
        assert (chain.signed_rows, chain.unsigned_tail, chain.last_checkpoint.total_rows) == (2, 1, 2)
        # Only the key, or only the directory: the hash chain alone, with the note.
        for key, directory in ((signer.public, None), (None, signer.dir)):
            alone = (await build_report(*args, public_key=key, checkpoint_dir=directory)).audit_chain
            assert alone.intact and not alone.checkpoints_verified and alone.note == NO_CHECKPOINTS
        # A missing key file: not intact, the reason named.
        missing = (await build_report(*args, public_key=tmp_path / "gone.pub", checkpoint_dir=signer.dir)).audit_chain
        assert not missing.intact and not missing.checkpoints_verified
        assert "gone.pub cannot be read" in missing.findings[0]
    finally:
        await conn.close()
