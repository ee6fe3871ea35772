"""The DPO report on the real database, by the CLI and the API: holdings against the policy (violations named),
purge history, requests per user and purpose, denials, the audit chain's state; JSON and CSV; audited."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from anpr_stream.audit import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.retention import preset
from anpr_stream.retention.purge import purge
from tests.integration.conftest import Namespace
from tests.integration.test_api_access import plant_hit

pytestmark = pytest.mark.integration


@pytest.fixture
async def planted(namespace: Namespace) -> datetime:
    """Passages 400 and 2 days old (the old day is past the BE horizon: a violation), a hit and its outcome, audit
    rows of two users, one purge run. Returns the instant it was planted at."""
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
    assert held["outcomes"]["rows"] == 1 and held["audit"]["rows"] == 4
    assert report["policy"] == "be" and len(report["purges"]) == 1
    requests = {(r["actor"], r["purpose"]): (r["allowed"], r["denied"], r["results"]) for r in report["requests"]}
    assert requests == {("alice", "burglary"): (2, 0, 6), ("alice", "theft"): (0, 1, 0), ("bob", None): (0, 1, 0)}
    assert [d["actor"] for d in report["denied"]] == ["bob", "alice"] and report["denied_total"] == 2
    assert report["audit_chain"] == {"intact": True, "rows": 4, "last_id": 4, "broken": None, "note": None}

    out = f"{tmp_path}/report.csv"
    done = namespace.cli("dpo", "report", "--format", "csv", "--output", out)
    assert done.returncode == 1, done.stderr.decode()
    with open(out, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # the first run is a request by now (cli:<operator>)
    assert [r["section"] for r in rows] == ["holding"] * 4 + ["purge"] + ["request"] * 4 + ["denied"] * 2 + [
        "audit_chain"
    ]
    assert rows[0]["data_class"] == "passages" and rows[0]["past_horizon"] == "true" and rows[0]["partitions"] == "2"
    denied = namespace.cli("dpo", "report", "--format", "csv", "--section", "denied")
    only = list(csv.DictReader(io.StringIO(denied.stdout.decode())))
    assert list(only[0]) == ["id", "at", "actor", "role", "endpoint", "reason", "purpose", "case_reference"]
    assert [r["reason"] for r in only] == ["bob refused", "alice refused"]

    conn = await namespace.db()
    try:  # every run is audited: the first run's row is the second run's history
        rows = await conn.fetch("SELECT actor, role, endpoint, allowed, parameters FROM audit_log WHERE id > 4")
    finally:
        await conn.close()
    assert len(rows) == 3 and all(r["actor"].startswith("cli:") and r["endpoint"] == "dpo.report" for r in rows)
    assert json.loads(rows[1]["parameters"])["format"] == "csv"
    verify = namespace.cli("audit", "verify")
    assert verify.returncode == 0 and b"intact: 7 rows" in verify.stdout


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
