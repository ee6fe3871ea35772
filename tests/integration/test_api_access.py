"""Who sees what through the running API, on the real database: the role x endpoint x data-age x justification
matrix (driven by access.PERMISSIONS), the nl and uk presets, camera scope, covert visibility, revoked tokens, and
exactly one audit row per request (allowed, 400, 401, 403, 404, 422) with the chain intact afterwards."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import APIRouter, Request

from anpr_stream.api.access import DATA_ENDPOINTS, PERMISSIONS, Role
from anpr_stream.api.app import create_app
from anpr_stream.api.context import services
from anpr_stream.api.server import build_app
from anpr_stream.config import Settings
from anpr_stream.core.outgoing import COVERT_INSTRUCTION
from anpr_stream.evidence import EvidenceStore
from tests.integration.conftest import Namespace
from tests.integration.evidence_support import plant_passage, png, store_images

pytestmark = pytest.mark.integration

AGES = (1, 45, 100, 400)  # days: open everywhere but NL; BE needs judicial; UK open -> senior; past 12 months
KEEP = {"be": 365, "nl": 28, "uk": 365}
OPEN = {"be": 30, "nl": 0, "uk": 90}
AUTHORISATION = {"be": "judicial_with_prosecutor_decision", "nl": "prosecutor_every_query",
                 "uk": "senior_authorisation"}  # fmt: skip
REQUIREMENT = {"be": "procureur des Konings", "nl": "prosecutor's approval", "uk": "senior officer's authorisation"}
JUSTIFICATIONS = ("none", "case", "authorised")


def payload(hit_id: uuid.UUID, at: datetime, camera: str, list_name: str, plate: str, covert: bool) -> dict[str, Any]:
    """The hit as an earlier worker published it: covert entries masked, but still with their entry id and priority
    (the API masks those again; the worker's own payload is tested in tests/unit/test_outgoing.py)."""
    entry: dict[str, Any] = (
        {"entry_id": "E-" + plate, "covert": True, "list": None, "plate": None, "country": None, "reference": None,
         "priority": 2, "action": "inform", "instruction": COVERT_INSTRUCTION}
        if covert
        else {"entry_id": "E-" + plate, "covert": False, "list": list_name, "plate": plate, "country": "BE",
              "reference": "PV 1", "priority": 1, "action": "intercept"}
    )  # fmt: skip
    return {
        "hit_id": str(hit_id), "read_id": f"r-{hit_id}", "entry_id": entry["entry_id"], "list": entry["list"],
        "priority": entry["priority"], "action": entry["action"], "match": "exact", "distance": 0,
        "suppressed": False,
        "read": {"read_id": f"r-{hit_id}", "camera_id": camera, "observed_at": at.isoformat(), "plate": plate,
                 "plate_normalised": plate, "country": "BE", "confidence": 0.9, "plate_format": "be_current"},
        "camera": {"camera_id": camera, "known": True, "name": camera, "road": None, "direction": None, "lat": None,
                   "lon": None},
        "entry": entry, "plate_format": "be_current", "detected_at": at.isoformat(),
    }  # fmt: skip


async def plant_hit(
    conn: asyncpg.Connection,
    age: timedelta,
    camera: str = "LM-EISDEN",
    list_name: str = "stolen_vehicle",
    plate: str = "1ABC123",
    covert: bool = False,
) -> uuid.UUID:
    hit_id = uuid.uuid4()
    at = datetime.now(UTC) - age
    await conn.execute(
        """INSERT INTO hits (hit_id, read_id, entry_id, list, camera_id, observed_at, plate_raw, plate_norm,
               plate_class, entry_plate, match_kind, distance, priority, action, covert, dispatch, suppressed,
               detected_at, payload)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $7, 'exact', 0, 1, 'intercept', $8, true, false, $6, $9)""",
        hit_id, f"r-{hit_id}", "E-" + plate, list_name, camera, at, plate, covert,
        orjson.dumps(payload(hit_id, at, camera, list_name, plate, covert)).decode(),
    )  # fmt: skip
    return hit_id


@dataclass
class Fixture:
    base: str
    hits: dict[int, uuid.UUID]  # age in days -> a hit on LM-EISDEN of that age


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    stream: bool = False  # a stream that never ends: read the status, then hang up


def _since(age: int) -> str:
    return (datetime.now(UTC) - timedelta(days=age, minutes=5)).isoformat()


ENTRY = {"entry_id": "RETRO-1", "list": "stolen_vehicle", "plate": "1ABC123", "country": "BE", "priority": 1,
         "action": "intercept"}  # fmt: skip

# Endpoint -> how to call it for data of a given age. A new endpoint adds one line here
# (test_every_served_endpoint_is_in_the_matrix fails until it does).
CALLS: dict[str, Callable[[Fixture, int], Call]] = {
    "me": lambda f, age: Call("GET", "/v1/me"),
    "cameras.list": lambda f, age: Call("GET", "/v1/cameras"),
    "dpo.report": lambda f, age: Call("GET", "/v1/dpo/report"),
    "hits.list": lambda f, age: Call("GET", "/v1/hits", params={"since": _since(age)}),
    "hits.get": lambda f, age: Call("GET", f"/v1/hits/{f.hits[age]}"),
    "hits.image": lambda f, age: Call("GET", f"/v1/hits/{f.hits[age]}/images/plate"),
    "hits.ack": lambda f, age: Call("POST", f"/v1/hits/{f.hits[age]}/ack", json={"outcome": "not_found"}),
    "plates.search": lambda f, age: Call("GET", "/v1/plates/search", params={"plate": "1ABC123", "since": _since(age)}),
    "plates.route": lambda f, age: Call("GET", "/v1/plates/1ABC123/route", params={"since": _since(age)}),
    "plates.cotravel": lambda f, age: Call("GET", "/v1/plates/1ABC123/cotravel", params={"since": _since(age)}),
    "cameras.passages": lambda f, age: Call("GET", "/v1/cameras/LM-EISDEN/passages", params={"since": _since(age)}),
    "hits.retroactive": lambda f, age: Call(
        "POST", "/v1/watchlist/retroactive", params={"lookback_days": str(min(age + 1, 366))}, json=ENTRY
    ),
    "hits.stream": lambda f, age: Call("GET", "/v1/live/hits", stream=True),
    "cameras.map": lambda f, age: Call("GET", "/v1/live/map.svg"),
    "watchlist.publish": lambda f, age: Call("POST", "/v1/watchlist/entries", json={**ENTRY, "entry_id": "WS-PUB-1"}),
}
AGELESS = {"hits.stream", "watchlist.publish"}  # the live stream's window is fixed; publishing reads no stored data
# Reads no stored data: role, purpose and case decide, never a retention tier. Answers 201 (created) when allowed.
TIMELESS = {"watchlist.publish"}
OK = {"watchlist.publish": 201}
# The data's own instant is the window: past retention is never shown.
SINGLE_RECORD = {"hits.get", "hits.image", "hits.ack"}


def test_every_served_endpoint_is_in_the_matrix() -> None:
    app = build_app(Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x"))

    def names(routes: list[Any]) -> set[str]:
        # FastAPI 0.16x keeps included routers as wrappers (`original_router`) in app.routes.
        out: set[str] = set()
        for route in routes:
            inner = getattr(route, "original_router", None)
            out |= names(inner.routes) if inner is not None else {getattr(route, "name", "")}
        return out

    served = names(app.routes) & set(PERMISSIONS)
    assert served >= {"me", "hits.list"}  # the walk found the routes
    # The registry's routes change state (register, revoke): their roles are walked in test_registry_roles below.
    assert served - set(CALLS) == {e for e in PERMISSIONS if e.startswith("authorisations.")}
    assert set(CALLS) <= served


def headers(token: str, justification: str, policy: str, authorisation_id: int | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {token}"}
    if justification in ("case", "authorised"):
        out |= {"X-Purpose": "burglary series Rekem", "X-Case-Reference": "LM.2026.0042"}
    if justification == "authorised":
        assert authorisation_id is not None
        out |= {"X-Authorisation-Id": str(authorisation_id)}
    return out


async def register_authorisation(
    conn: asyncpg.Connection, policy: str, cameras: list[str] | None = None, plates: list[str] | None = None
) -> int:
    """A current authorisation of case LM.2026.0042 of the policy's kind over every retained day, as the
    information manager registers it (the registry's own rules are tested in test_authorisations.py)."""
    now = datetime.now(UTC)
    return int(await conn.fetchval(
        """INSERT INTO authorisations (kind, issuing_authority, issued_by, reference, case_reference, plates, cameras,
               data_from, data_until, valid_from, valid_until, single_query, registered_by)
           VALUES ($1, 'procureur des Konings, Limburg', 'M. Peeters', $2, 'LM.2026.0042', $3, $4, $5, $6, $7, $8,
                   $9, 'im') RETURNING authorisation_id""",
        AUTHORISATION[policy], f"PK-LM-{uuid.uuid4()}", plates, cameras if plates or cameras else ["LM-EISDEN"],
        now - timedelta(days=500), now + timedelta(days=1), now - timedelta(days=1), now + timedelta(days=30),
        policy == "nl",
    ))  # fmt: skip


# Requests bound to the camera of the authorisations registered here (LM-EISDEN): within its scope. Every other
# request names no camera: the authorisation does not cover it, and only its open-tier part is granted.
COVERED = {"hits.get", "hits.image", "hits.ack", "cameras.passages"}


def expected(policy: str, role: Role, endpoint: str, age: int, justification: str) -> tuple[int, str | None]:
    """The law as the issue states it, written out independently of access.decide."""
    if role not in PERMISSIONS[endpoint]:
        return 403, f"role {role} may not use {endpoint}"
    if endpoint not in DATA_ENDPOINTS:
        return 200, None
    if justification == "none":
        return 403, "X-Purpose"
    if endpoint in TIMELESS:
        return OK[endpoint], None
    if endpoint in SINGLE_RECORD and age >= KEEP[policy]:
        return 403, "never returned"
    restricted = age >= OPEN[policy] or (endpoint == "hits.stream" and OPEN[policy] == 0)
    if not restricted:
        return 200, None
    if role is not Role.INVESTIGATOR:
        return 403, f"{REQUIREMENT[policy]}"  # dispatchers never reach a restricted tier, whatever they cite
    if justification == "authorised":
        return 200, None  # within the authorisation's scope, or cut to the open tier when it is not
    return 403, REQUIREMENT[policy]


async def _audit_after(conn: asyncpg.Connection, last_id: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT *, parameters::text AS params FROM audit_log WHERE id > $1 ORDER BY id", last_id)


async def _last_id(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM audit_log"))


@pytest.mark.parametrize(
    ("policy", "role"),
    [("be", role) for role in Role] + [("nl", Role.INVESTIGATOR), ("uk", Role.INVESTIGATOR), ("uk", Role.DISPATCHER)],
)
async def test_role_endpoint_age_matrix(namespace: Namespace, policy: str, role: Role, tmp_path: Path) -> None:
    conn = await namespace.db()
    try:
        hits = {age: await plant_hit(conn, timedelta(days=age)) for age in AGES}
        store = EvidenceStore(tmp_path / "evidence")
        for age, hit_id in hits.items():  # each with its plate crop (hits.image)
            at = await conn.fetchval("SELECT observed_at FROM hits WHERE hit_id = $1", hit_id)
            await plant_passage(conn, hit_id, store_images(store, at, plate=png(shade=age)))
        token = namespace.add_user(f"u-{role}", role.value)
        base = namespace.start_api(extra_env={"ANPR_RETENTION": policy, "ANPR_EVIDENCE_DIR": str(store.root)})
        fixture = Fixture(base, hits)
        wrong: list[str] = []
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for endpoint, make in CALLS.items():
                for age in AGES if endpoint in DATA_ENDPOINTS - AGELESS else AGES[:1]:
                    for justification in JUSTIFICATIONS:
                        call = make(fixture, age)
                        # NL: one registry record per approved query.
                        cited = await register_authorisation(conn, policy) if justification == "authorised" else None
                        last = await _last_id(conn)
                        request = client.build_request(call.method, call.path, params=call.params, json=call.json,
                                                       headers=headers(token, justification, policy,
                                                                       cited))  # fmt: skip
                        got = await client.send(request, stream=call.stream)
                        if call.stream:
                            if got.status_code != 200:
                                await got.aread()
                            await got.aclose()
                        status, reason = expected(policy, role, endpoint, age, justification)
                        body = "(stream)" if call.stream and got.status_code == 200 else got.text[:300]
                        case = f"{endpoint} age {age} {justification}: {got.status_code} {body}"
                        if got.status_code != status or (reason and reason not in got.json()["detail"]):
                            wrong.append(f"expected {status} {reason!r}; got {case}")
                            continue
                        allowed = status == OK.get(endpoint, 200)
                        if endpoint == "hits.list" and allowed:
                            seen = {h["hit_id"] for h in got.json()["hits"]}
                            assert str(hits[400]) not in seen, case  # past retention: never returned
                            # Not within the authorisation's scope (no camera named): the open tier only.
                            assert {str(hits[a]) for a in AGES if a <= age and a < OPEN[policy]} == seen, case
                        rows = await _audit_after(conn, last)
                        assert len(rows) == 1, case
                        row = rows[0]
                        assert (row["actor"], row["role"], row["endpoint"], row["allowed"]) == (
                            f"u-{role}", role.value, endpoint, allowed,
                        ), case  # fmt: skip
                        assert row["purpose"] == (None if justification == "none" else "burglary series Rekem"), case
                        assert row["case_reference"] == (None if justification == "none" else "LM.2026.0042"), case
                        relied = allowed and cited is not None and endpoint in COVERED and age >= OPEN[policy]
                        # An allowed request names the authorisation it relied on, a refused one the id it cited
                        # (the DPO report lists refusals with their authorisation too).
                        named = relied or (cited is not None and status >= 400)
                        assert row["authorisation_id"] == (cited if named else None), case
                        if relied:
                            assert row["authorisation_reference"].startswith("procureur des Konings, Limburg: PK-"), (
                                case
                            )
                        if cited is not None:
                            assert orjson.loads(row["params"])["authorisation_cited"] == cited, case
                        if allowed:
                            assert row["result_count"] is not None and row["reason"] is None, case
                        else:
                            assert reason in row["reason"] and row["result_count"] is None, case
        assert not wrong, "\n".join(wrong)
    finally:
        await conn.close()
    verified = namespace.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout.decode()


async def test_camera_scope(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        mine = await plant_hit(conn, timedelta(hours=2), camera="LM-EISDEN")
        other = await plant_hit(conn, timedelta(hours=3), camera="LM-LANAKEN-C")
    finally:
        await conn.close()
    token = namespace.add_user("scoped", "investigator", cameras=["LM-EISDEN"])
    base = namespace.start_api()
    auth = headers(token, "case", "be")
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        listed = await client.get("/v1/hits", headers=auth)
        assert listed.status_code == 200 and [h["hit_id"] for h in listed.json()["hits"]] == [str(mine)]
        asked = await client.get("/v1/hits", headers=auth, params={"camera": ["LM-EISDEN", "LM-LANAKEN-C"]})
        assert asked.status_code == 403 and "outside scoped's scope: LM-LANAKEN-C" in asked.json()["detail"]
        # A hit at a camera outside the scope answers exactly as one that does not exist: nothing tells it is there.
        got = await client.get(f"/v1/hits/{other}", headers=auth)
        missing = await client.get(f"/v1/hits/{uuid.uuid4()}", headers=auth)
        assert got.status_code == missing.status_code == 404
        assert got.json()["detail"] == f"no hit {other}" and "LM-LANAKEN-C" not in got.text
        acked = await client.post(f"/v1/hits/{other}/ack", headers=auth, json={"outcome": "intercepted"})
        assert acked.status_code == 404 and "LM-LANAKEN-C" not in acked.text
        assert (await client.get(f"/v1/hits/{mine}", headers=auth)).status_code == 200
        cameras = await client.get("/v1/cameras", headers=auth)
        assert [c["camera_id"] for c in cameras.json()["cameras"]] == ["LM-EISDEN"]
        me = await client.get("/v1/me", headers=auth)
        assert me.json()["cameras"] == ["LM-EISDEN"]
    conn = await namespace.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM hit_outcomes") == 0
    finally:
        await conn.close()


async def test_covert_visibility(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        covert = await plant_hit(conn, timedelta(hours=1), list_name="covert_ops", plate="1XYZ999", covert=True)
        await plant_hit(conn, timedelta(hours=2))
    finally:
        await conn.close()
    users = {
        "disp": namespace.add_user("disp", "dispatcher"),
        "inv": namespace.add_user("inv", "investigator"),
        "cleared": namespace.add_user("cleared", "investigator", covert=True),
    }
    base = namespace.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for name, token in users.items():
            auth = headers(token, "case", "be")
            hit = (await client.get(f"/v1/hits/{covert}", headers=auth)).json()
            listed = (await client.get("/v1/hits", headers=auth)).json()["hits"]
            assert len(listed) == 2 and hit["entry"]["instruction"] == COVERT_INSTRUCTION
            probe = (await client.get("/v1/hits", headers=auth, params={"list": "covert_ops"})).json()["hits"]
            if name == "cleared":
                assert hit["list"] == "covert_ops" and hit["entry"]["list"] == "covert_ops"
                assert hit["entry"]["plate"] == "1XYZ999"
                assert (hit["entry_id"], hit["priority"], hit["entry_ref"]) == ("E-1XYZ999", 1, "E-1XYZ999")
                assert [h["hit_id"] for h in probe] == [str(covert)]
            else:
                assert hit["list"] is None and hit["entry"]["list"] is None and hit["entry"]["plate"] is None
                assert (hit["entry_id"], hit["priority"], hit["entry_ref"]) == (None, None, str(covert))
                assert hit["entry"]["entry_id"] is None and hit["entry"]["priority"] is None
                assert "1XYZ999" not in orjson.dumps([hit, listed]).decode().replace(hit["read"]["plate"], "")
                assert probe == []  # the name of a covert list cannot be probed
            stolen = (await client.get("/v1/hits", headers=auth, params={"list": "stolen_vehicle"})).json()["hits"]
            assert len(stolen) == 1


async def test_hits_of_one_plate(namespace: Namespace) -> None:
    """`GET /v1/hits?plate=`: only that plate's hits (normalised); a plate-bound request, so a plate-bound
    authorisation of the plate covers its older hits, and not those of a request naming no plate."""
    conn = await namespace.db()
    try:
        recent = await plant_hit(conn, timedelta(hours=1), plate="1ABC123")
        old = await plant_hit(conn, timedelta(days=45), plate="1ABC123")
        await plant_hit(conn, timedelta(hours=2), plate="2DEF456")
        bound = await register_authorisation(conn, "be", plates=["1ABC123"])
    finally:
        await conn.close()
    investigator = namespace.add_user("ivo", "investigator")
    dispatcher = namespace.add_user("dora", "dispatcher")
    base = namespace.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for token in (investigator, dispatcher):
            got = await client.get("/v1/hits", headers=headers(token, "case", "be"), params={"plate": "1-abc 123"})
            assert got.status_code == 200, got.text
            assert [h["hit_id"] for h in got.json()["hits"]] == [str(recent)]  # the 45-day one needs authorisation
        everyone = (await client.get("/v1/hits", headers=headers(investigator, "case", "be"))).json()["hits"]
        assert len(everyone) == 2
        blank = await client.get("/v1/hits", headers=headers(investigator, "case", "be"), params={"plate": "- -"})
        assert blank.status_code == 400 and "no letters or digits" in blank.json()["detail"], blank.text
        refused = await client.get("/v1/hits", headers=headers(dispatcher, "none", "be"), params={"plate": "- -"})
        assert refused.status_code == 403, refused.text  # no purpose: refused before the plate is looked at
        # Within the plate-bound authorisation: the plate's older hit too; without `plate` only the open tier.
        auth = headers(investigator, "authorised", "be", bound)
        params = {"since": _since(60)}
        of_plate = await client.get("/v1/hits", headers=auth, params={**params, "plate": "1ABC123"})
        assert of_plate.status_code == 200, of_plate.text
        assert [h["hit_id"] for h in of_plate.json()["hits"]] == [str(recent), str(old)]
        unbound = (await client.get("/v1/hits", headers=auth, params=params)).json()["hits"]
        assert str(old) not in {h["hit_id"] for h in unbound} and len(unbound) == 2


async def test_every_request_is_audited_once(namespace: Namespace) -> None:
    conn = await namespace.db()
    try:
        hit = await plant_hit(conn, timedelta(hours=1))
        token = namespace.add_user("ines", "investigator")
        gone = namespace.add_user("gone", "dispatcher")
        dpo = namespace.add_user("dora", "dpo")
        assert namespace.cli("users", "revoke", "gone").returncode == 0
        base = namespace.start_api()
        auth = headers(token, "case", "be")
        cases: list[tuple[str, str, dict[str, str], Any, int, str, str, bool, str | None]] = [
            # method, path, headers, json, status, actor, endpoint, allowed, reason fragment
            ("GET", "/v1/hits", {}, None, 401, "(unauthenticated)", "hits.list", False, "missing bearer token"),
            ("GET", "/v1/hits", {"Authorization": "Bearer anpr_nope"}, None, 401, "(unauthenticated)", "hits.list",
             False, "unknown token"),
            ("GET", "/v1/me", headers(gone, "none", "be"), None, 401, "(unauthenticated)", "me", False,
             "of revoked user gone"),
            ("GET", "/v1/hits?limit=0", auth, None, 422, "ines", "hits.list", False, "invalid request: query.limit"),
            ("POST", f"/v1/hits/{hit}/ack", auth, {"outcome": "other"}, 422, "ines", "hits.ack", False,
             "needs a note"),
            ("GET", "/v1/hits", {**auth, "X-Authorisation": "root"}, None, 400, "ines", "hits.list", False,
             "authorisations are registry records"),
            ("GET", f"/v1/hits/{uuid.uuid4()}", auth, None, 404, "ines", "hits.get", False, "no hit"),
            # Who may not ask learns nothing, not even whether a hit exists.
            ("GET", f"/v1/hits/{uuid.uuid4()}", headers(token, "none", "be"), None, 403, "ines", "hits.get", False,
             "X-Purpose"),
            ("POST", f"/v1/hits/{uuid.uuid4()}/ack", headers(dpo, "case", "be"), {"outcome": "not_found"}, 403,
             "dora", "hits.ack", False, "may not use hits.ack"),
            # PostgreSQL text holds no NUL: refused before any query, and still audited (NUL stored as U+FFFD).
            ("GET", "/v1/hits?camera=LM%00X", auth, None, 400, "ines", "hits.list", False, "NUL characters"),
            ("POST", f"/v1/hits/{hit}/ack", auth, {"outcome": "false_read", "note": "a\u0000b"}, 422, "ines",
             "hits.ack", False, "invalid request: body.note"),
            ("GET", f"/v1/hits/{hit}", auth, None, 200, "ines", "hits.get", True, None),
            ("POST", f"/v1/hits/{hit}/ack", auth, {"outcome": "false_read", "note": "OCR"}, 200, "ines", "hits.ack",
             True, None),
        ]  # fmt: skip
        users = await conn.fetch("SELECT name, user_id FROM api_users WHERE name IN ('ines', 'dora')")
        user_ids = {u["name"]: u["user_id"] for u in users}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for method, path, hdrs, body, status, actor, endpoint, allowed, reason in cases:
                last = await _last_id(conn)
                got = await client.request(method, path, headers=hdrs, json=body)
                assert got.status_code == status, (path, got.text)
                rows = await _audit_after(conn, last)
                assert len(rows) == 1, (path, status)
                row = rows[0]
                assert (row["actor"], row["endpoint"], row["allowed"]) == (actor, endpoint, allowed), (path, status)
                assert row["actor_id"] == user_ids.get(actor), (path, status)  # 422 and NUL rows too
                assert reason is None or reason in row["reason"], (row["reason"], reason)
        # Tokens are stored only as their sha256.
        stored = await conn.fetchrow(
            "SELECT t::text AS row, u::text AS user_row, token_hash FROM api_tokens t JOIN api_users u USING (user_id) "
            "WHERE name = 'ines'"
        )
        assert token not in stored["row"] + stored["user_row"]
        assert stored["token_hash"] == hashlib.sha256(token.encode()).digest()
        camera = await conn.fetchval("SELECT parameters->>'camera' FROM audit_log WHERE reason LIKE '%NUL%'")
        assert camera == "LM\ufffdX"
        ack = await conn.fetchrow("SELECT parameters::text AS p FROM audit_log WHERE endpoint = 'hits.ack' AND allowed")
        assert orjson.loads(ack["p"]) == {"hit_id": str(hit), "outcome": "false_read", "note": "OCR"}
    finally:
        await conn.close()
    verified = namespace.cli("audit", "verify")
    assert verified.returncode == 0 and b"intact: 17 rows" in verified.stdout  # and users add x3, revoke


async def test_text_postgresql_cannot_hold_is_a_400_on_any_route(namespace: Namespace) -> None:
    """The app-wide safety net, for a route (here a probe) whose own validation lets NUL through to the database."""
    probe = APIRouter()

    @probe.get("/probe", name="me")
    async def echo(request: Request) -> dict[str, Any]:
        return {"echo": await services(request).pool.fetchval("SELECT $1::text", request.query_params["q"])}

    token = namespace.add_user("ines", "investigator")
    app = create_app(Settings.from_env(namespace.env), routers=(probe,))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            auth = {"Authorization": f"Bearer {token}"}
            assert (await client.get("/probe", params={"q": "ok"}, headers=auth)).json() == {"echo": "ok"}
            got = await client.get("/probe", params={"q": "a\x00b"}, headers=auth)
    assert got.status_code == 400 and "NUL" in got.json()["detail"]
    conn = await namespace.db()
    try:
        row = await conn.fetchrow(
            "SELECT actor, actor_id, allowed, reason, parameters->>'q' AS q FROM audit_log "
            "WHERE endpoint = 'me' AND NOT allowed"
        )
        ines = await conn.fetchval("SELECT user_id FROM api_users WHERE name = 'ines'")
    finally:
        await conn.close()
    assert (row["actor"], row["allowed"], row["q"]) == ("ines", False, "a\ufffdb") and "NUL" in row["reason"]
    assert ines is not None and row["actor_id"] == ines


async def test_registry_roles(namespace: Namespace) -> None:
    """Only the information manager registers and revokes; an investigator sees the stated case's authorisations and
    cites one; a revoked one opens nothing; every step is in the audit chain."""
    tokens = {role: namespace.add_user(f"reg-{role}", role.value) for role in Role}
    base = namespace.start_api()
    now = datetime.now(UTC)
    body = {
        "kind": "judicial_with_prosecutor_decision", "issuing_authority": "procureur des Konings, Limburg",
        "issued_by": "M. Peeters", "reference": "PK-LM-26-1", "case_reference": "LM.2026.0042",
        "plates": ["1-abc-123"], "data_from": (now - timedelta(days=200)).isoformat(),
        "data_until": now.isoformat(), "valid_until": (now + timedelta(days=30)).isoformat(),
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for role, token in tokens.items():
            got = await client.post("/v1/registry/authorisations", json=body, headers=headers(token, "case", "be"))
            if role is Role.INFORMATION_MANAGER:
                assert got.status_code == 201, got.text
                registered = got.json()
            else:
                assert got.status_code == 403 and "may not use authorisations.register" in got.json()["detail"]
                assert "X-Authorisation-Required" not in got.headers  # a refusal of role names no authorisation
        assert registered["plates"] == ["1ABC123"] and registered["registered_by"] == "reg-information_manager"
        manager = headers(tokens[Role.INFORMATION_MANAGER], "none", "be")
        again = await client.post("/v1/registry/authorisations", json=body, headers=manager)
        assert again.status_code == 400 and "already has a registered decision" in again.json()["detail"]
        inv = tokens[Role.INVESTIGATOR]
        listed = await client.get("/v1/authorisations", headers=headers(inv, "case", "be"))
        assert [a["authorisation_id"] for a in listed.json()["authorisations"]] == [registered["authorisation_id"]]
        other_case = {**headers(inv, "case", "be"), "X-Case-Reference": "LM.2026.0999"}
        assert (await client.get("/v1/authorisations", headers=other_case)).json()["authorisations"] == []
        assert (await client.get(f"/v1/authorisations/{registered['authorisation_id']}",
                                 headers=other_case)).status_code == 404  # fmt: skip
        cite = headers(inv, "authorised", "be", registered["authorisation_id"])
        since = {"since": (now - timedelta(days=100)).isoformat()}
        route = await client.get("/v1/plates/1ABC123/route", params=since, headers=cite)
        assert route.status_code == 200, route.text
        revoke = await client.post(f"/v1/registry/authorisations/{registered['authorisation_id']}/revoke",
                                   json={"reason": "decision withdrawn"},
                                   headers=headers(tokens[Role.INFORMATION_MANAGER], "none", "be"))  # fmt: skip
        assert revoke.status_code == 200 and revoke.json()["revoked_by"] == "reg-information_manager"
        refused = await client.get("/v1/plates/1ABC123/route", params=since, headers=cite)
        assert refused.status_code == 403 and "was revoked on" in refused.json()["detail"]
        assert refused.headers["X-Authorisation-Required"] == "judicial_with_prosecutor_decision"
    conn = await namespace.db()
    try:
        rows = await conn.fetch(
            "SELECT endpoint, allowed, authorisation_id FROM audit_log WHERE endpoint IN "
            "('authorisations.register', 'authorisations.revoke', 'plates.route') ORDER BY id"
        )
        assert [(r["endpoint"], r["allowed"]) for r in rows][-4:] == [
            ("authorisations.register", False), ("plates.route", True), ("authorisations.revoke", True),
            ("plates.route", False),
        ]  # fmt: skip
        assert rows[-3]["authorisation_id"] == registered["authorisation_id"]
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="never changed, widened or extended"):
            await conn.execute("UPDATE authorisations SET valid_until = valid_until + interval '1 year'")
    finally:
        await conn.close()
    verified = namespace.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout.decode()
