"""`anpr-stream authorisations` on the real database: register (the API's rules), list, show, revoke once; bad input
refused with its reason and exit 2, an unknown id or a second revocation with exit 1; every change in the audit chain,
tied to its authorisation, and the chain intact."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def when(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


def registration(reference: str, *extra: str) -> list[str]:
    return [
        "authorisations", "register", "--kind", "judicial_with_prosecutor_decision",
        "--authority", "procureur des Konings,  Limburg", "--issued-by", "M. Peeters", "--reference", reference,
        "--case", "LM.2026.0042", "--data-from", when(-200), "--data-until", when(-30), "--valid-until", when(30),
        *extra,
    ]  # fmt: skip


def registered_id(done: Any) -> int:
    assert done.returncode == 0, done.stderr.decode()
    found = re.search(r"^authorisation_id: (\d+)$", done.stdout.decode(), re.MULTILINE)
    assert found, done.stdout.decode()
    return int(found[1])


def refused(done: Any, status: int, reason: str) -> None:
    err = done.stderr.decode()
    assert done.returncode == status, (done.returncode, err, done.stdout.decode())
    assert reason in err and "Traceback" not in err, err


async def test_register_list_show_revoke(namespace: Namespace) -> None:
    cli = namespace.cli
    first = registered_id(cli(*registration("PK-LM-1", "--plates", "1-abc-123, 2xyz987", "--by", "im-anna")))
    second = registered_id(cli(*registration("PK-LM-2", "--cameras", "LM-EISDEN", "--note", "line one\nline two")))
    shown = json.loads(cli("authorisations", "show", str(first), "--json").stdout)
    assert {k: shown[k] for k in ("kind", "issuing_authority", "reference", "case_reference", "plates", "cameras",
                                  "registered_by", "registered_by_id", "revoked_at", "single_query")} == {
        "kind": "judicial_with_prosecutor_decision", "issuing_authority": "procureur des Konings, Limburg",
        "reference": "PK-LM-1", "case_reference": "LM.2026.0042", "plates": ["1ABC123", "2XYZ987"], "cameras": None,
        "registered_by": "im-anna", "registered_by_id": None, "revoked_at": None, "single_query": False,
    }  # fmt: skip
    text = cli("authorisations", "show", str(second)).stdout.decode()
    assert f"registered_by: cli:{getpass.getuser()}" in text and "state: current" in text
    assert 'note: "line one\\nline two"' in text  # control characters written as a JSON string

    listed = cli("authorisations", "list").stdout.decode().splitlines()
    assert [line.split("\t")[0] for line in listed] == [str(first), str(second)]
    assert listed[0].split("\t")[5] == "2 plates" and listed[0].endswith("\tcurrent")

    revoked = cli("authorisations", "revoke", str(first), "--reason", "decision  withdrawn", "--by", "im-bert")
    assert revoked.returncode == 0, revoked.stderr.decode()
    assert "revocation_reason: decision withdrawn" in revoked.stdout.decode()
    again = cli("authorisations", "revoke", str(first), "--reason", "twice")
    refused(again, 1, f"authorisation {first} was revoked on ")
    refused(cli("authorisations", "revoke", "999", "--reason", "none such"), 1, "no authorisation 999 is registered")
    refused(cli("authorisations", "revoke", str(second), "--reason", "  "), 2, "a revocation states its reason")
    refused(cli("authorisations", "show", "999"), 1, "no authorisation 999 is registered")

    current = cli("authorisations", "list", "--current", "--json")
    assert [a["authorisation_id"] for a in json.loads(current.stdout)] == [second]
    everything = cli("authorisations", "list", "--case", "LM.2026.0042").stdout.decode().splitlines()
    assert everything[0].split("\t")[-1].startswith("was revoked on ")
    assert cli("authorisations", "list", "--case", "LM.2026.0999").stdout == b""

    conn = await namespace.db()
    try:
        rows = await conn.fetch(
            "SELECT actor, actor_id, role, endpoint, allowed, case_reference, authorisation_reference, "
            "authorisation_id, result_count, parameters::text AS p FROM audit_log ORDER BY id"
        )
        stored = await conn.fetchrow("SELECT revoked_by, revoked_by_id, revocation_reason FROM authorisations "
                                     "WHERE authorisation_id = $1", first)  # fmt: skip
    finally:
        await conn.close()
    assert dict(stored) == {"revoked_by": "im-bert", "revoked_by_id": None, "revocation_reason": "decision withdrawn"}
    # Three changes, three rows; the refusals changed nothing and left none.
    assert [(r["endpoint"], r["actor"], r["authorisation_id"]) for r in rows] == [
        ("admin.authorisations.register", "im-anna", first),
        ("admin.authorisations.register", f"cli:{getpass.getuser()}", second),
        ("admin.authorisations.revoke", "im-bert", first),
    ]  # fmt: skip
    assert all(r["role"] == "admin-cli" and r["allowed"] and r["actor_id"] is None for r in rows)
    assert all(r["case_reference"] == "LM.2026.0042" and r["result_count"] == 1 for r in rows)
    assert rows[0]["authorisation_reference"] == "procureur des Konings, Limburg: PK-LM-1"
    params = [json.loads(r["p"]) for r in rows]
    assert params[0]["plates"] == ["1ABC123", "2XYZ987"] and params[0]["authorisation_id"] == first
    assert "registered_by" not in params[0] and params[0]["revoked_at"] is None
    assert params[2]["revocation_reason"] == "decision withdrawn" and params[2]["revoked_by"] == "im-bert"
    verified = cli("audit", "verify")
    assert verified.returncode == 0 and b"intact: 3 rows" in verified.stdout, verified.stdout.decode()


BAD_INPUT = [
    (["--kind", "senior_authorisation"], "restricted tier needs a judicial_with_prosecutor_decision"),
    ([], "no blanket authorisation"),
    (["--plates", " , "], "no blanket authorisation"),
    (["--plates", "!!"], "a plate in the scope has no letters or digits"),
    (["--plates", "1ABC123", "--valid-from", when(-5), "--valid-until", when(-1)], "is already past"),
    (["--plates", "1ABC123", "--data-from", when(-1)], "data_from must be before data_until"),
    (["--plates", "1ABC123", "--valid-from", "2026-01-01T00:00:00"], "has no UTC offset"),
    (["--plates", "1ABC123", "--valid-from", "soon"], "is not RFC 3339"),
    (["--plates", "1ABC123", "--case", " "], "case_reference is required"),
    (["--plates", "1ABC123", "--note", "x" * 2001], "note is longer than 2,000 characters"),
    (["--plates", "1ABC123", "--by", "im\x1b[31m"], "--by: at most 200 printable characters"),
    (["--plates", "1ABC123", "--kind", "open"], "invalid choice: 'open'"),
]


async def test_register_refuses_bad_input(namespace: Namespace) -> None:
    for change, reason in BAD_INPUT:
        refused(namespace.cli(*registration("PK-LM-9"), *change), 2, reason)  # an option given again: the last wins
    conn = await namespace.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM authorisations") == 0
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    finally:
        await conn.close()


async def test_reference_registered_once(namespace: Namespace) -> None:
    registered_id(namespace.cli(*registration("PK-LM-1", "--plates", "1ABC123")))
    again = namespace.cli(*registration("PK-LM-1", "--plates", "1ABC124"))
    refused(again, 1, "already has a registered decision 'PK-LM-1'")
    refused(namespace.cli("authorisations", "show", "x"), 2, "must be a positive integer")
    without = {k: v for k, v in namespace.env.items() if k != "ANPR_DATABASE_URL"}
    done = subprocess.run([sys.executable, "-m", "anpr_stream.cli", "authorisations", "list"], env=without,
                          capture_output=True, check=False, timeout=60)  # fmt: skip
    refused(done, 2, "ANPR_DATABASE_URL is not set")
    assert namespace.cli("audit", "verify").returncode == 0
