"""Citing a registered authorisation through the real API and database: expired, not yet valid, of another case, of
the wrong kind, unknown, and out of scope. Each is refused (or cut to the open tier) with its reason, and the audit
row names the id cited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from tests.integration.conftest import Namespace
from tests.integration.test_api_access import headers

pytestmark = pytest.mark.integration

CASE = "LM.2026.0042"  # the case tests.integration.test_api_access.headers states


async def _register(ns: Namespace, *, kind: str = "judicial_with_prosecutor_decision", case: str = CASE,
                    valid_from: timedelta = timedelta(days=-1), valid_until: timedelta = timedelta(days=30),
                    plates: list[str] | None = None) -> int:  # fmt: skip
    now = datetime.now(UTC)
    conn = await ns.db()
    try:
        return int(await conn.fetchval(
            """INSERT INTO authorisations (kind, issuing_authority, issued_by, reference, case_reference, plates,
                   cameras, data_from, data_until, valid_from, valid_until, single_query, registered_by)
               VALUES ($1, 'procureur des Konings, Limburg', 'M. Peeters', $2, $3, $4, NULL, $5, $6, $7, $8, false,
                       'im') RETURNING authorisation_id""",
            kind, f"PK-{kind}-{case}-{valid_from.days}-{valid_until.days}-{plates}", case,
            plates or ["1ABC123"], now - timedelta(days=300), now, now + valid_from, now + valid_until,
        ))  # fmt: skip
    finally:
        await conn.close()


async def test_cited_authorisations_in_every_state(namespace: Namespace) -> None:
    ns = namespace
    token = ns.add_user("ines", "investigator")
    cases = {
        "expired": (await _register(ns, valid_from=timedelta(days=-20), valid_until=timedelta(days=-1)), 403,
                    "expired on"),
        "not yet valid": (await _register(ns, valid_from=timedelta(days=2), valid_until=timedelta(days=9)), 403,
                          "is not valid before"),
        "another case": (await _register(ns, case="LM.2026.0999"), 403, "was issued for another case"),
        "wrong kind": (await _register(ns, kind="senior_authorisation"), 403,
                       "is a senior_authorisation, not a judicial_with_prosecutor_decision"),
        "unknown": (987654321, 403, "no authorisation 987654321 is registered"),
        "out of scope": (await _register(ns, plates=["9ZZZ999"]), 200, None),
        "current": (await _register(ns), 200, None),
    }  # fmt: skip
    base = ns.start_api()
    since = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for name, (cited, status, reason) in cases.items():
            got = await client.get("/v1/plates/1ABC123/route", params={"since": since},
                                   headers=headers(token, "authorised", "be", cited))  # fmt: skip
            assert got.status_code == status, (name, got.text)
            if reason is not None:
                assert reason in got.json()["detail"], (name, got.text)
    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT allowed, reason, authorisation_id, parameters FROM audit_log WHERE endpoint = 'plates.route' "
            "ORDER BY id"
        )
    finally:
        await conn.close()
    assert len(rows) == len(cases)
    for (name, (cited, status, _)), row in zip(cases.items(), rows, strict=True):
        params = orjson.loads(row["parameters"])
        assert params["authorisation_cited"] == cited, name
        assert row["allowed"] is (status == 200), name
        if name == "out of scope":
            # Cut to the open tier: the authorisation covers another plate, so it was not relied on.
            assert row["authorisation_id"] is None and "are outside authorisation" in params["clamped"], name
        else:
            assert row["authorisation_id"] == cited, name
    verified = ns.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout.decode()
