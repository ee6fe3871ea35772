"""Users and tokens on the real database and the running API: names never reused, users never deleted, tokens that
expire, rotate, and end at logout (that token only), failed authentications throttled with a bounded trail in the
audit log, and every administrative change on users and watchlists in the audit chain (covert lists without plates
or entry ids), which stays intact."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from anpr_stream.api.users import new_token, token_hash
from anpr_stream.audit.log import verify_audit
from tests.integration.conftest import Namespace
from tests.integration.test_least_privilege import service_url  # noqa: F401 -- the fixture
from tests.integration.test_pipeline import HEADER

pytestmark = pytest.mark.integration


def me(base: str, token: str, source: str | None = None) -> httpx.Response:
    hdrs = {"Authorization": f"Bearer {token}"} | ({"X-Forwarded-For": source} if source else {})
    return httpx.get(f"{base}/v1/me", headers=hdrs, timeout=30)


def ok(done: Any) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return str(done.stdout.decode()).strip()


async def rows(
    conn: asyncpg.Connection, endpoint: str | None = None, allowed: bool | None = None
) -> list[dict[str, Any]]:
    """Audit rows in id order, those of `endpoint` (a trailing `*`: a prefix) and `allowed` when given."""
    found = await conn.fetch(
        "SELECT id, actor, actor_id, role, endpoint, allowed, reason, result_count, parameters::text AS p "
        "FROM audit_log ORDER BY id"
    )
    out = [dict(r) | {"p": orjson.loads(r["p"])} for r in found]
    if endpoint is not None:
        prefix = endpoint.removesuffix("*")
        out = [
            r for r in out if r["endpoint"] == endpoint or (endpoint.endswith("*") and r["endpoint"].startswith(prefix))
        ]
    return [r for r in out if allowed is None or r["allowed"] is allowed]


async def user_id(conn: asyncpg.Connection, name: str) -> int:
    found: int = await conn.fetchval("SELECT user_id FROM api_users WHERE name = $1", name)
    return found


async def test_names_are_never_reused_and_users_never_deleted(namespace: Namespace) -> None:
    ns = namespace
    ns.add_user("anna", "dispatcher")
    again = ns.cli("users", "add", "anna", "--role", "investigator")
    assert again.returncode == 1 and b"exists" in again.stderr
    ok(ns.cli("users", "revoke", "anna"))
    reused = ns.cli("users", "add", "anna", "--role", "dispatcher")
    assert reused.returncode == 1 and b"was used before" in reused.stderr and b"pick another" in reused.stderr
    for refused in (ns.cli("users", "rotate", "anna"), ns.cli("users", "revoke", "anna"),
                    ns.cli("users", "set", "anna", "--all-cameras")):  # fmt: skip
        assert refused.returncode == 1 and b"revocation is final" in refused.stderr, refused.stderr
    bad = ns.cli("users", "add", "an na", "--role", "dispatcher")
    assert bad.returncode == 1 and b"letters, digits" in bad.stderr
    listed = ok(ns.cli("users", "list"))
    assert listed.startswith("anna\t") and "revoked" in listed
    conn = await ns.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM api_users WHERE name = 'anna'") == 1
        # Not even the owner deletes, renames or reinstates a user, or deletes or extends a token.
        for sql in ("DELETE FROM api_users", "UPDATE api_users SET name = 'anna2'",
                    "UPDATE api_users SET revoked_at = NULL, revoked_by = NULL", "TRUNCATE api_users CASCADE",
                    "DELETE FROM api_tokens", "UPDATE api_tokens SET expires_at = expires_at + interval '1 day'",
                    "UPDATE api_tokens SET revoked_at = NULL, revoked_by = NULL"):  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        assert [r["endpoint"] for r in await rows(conn)] == ["admin.users.add", "admin.users.revoke"]
    finally:
        await conn.close()


async def test_tokens_expire(namespace: Namespace) -> None:
    ns = namespace
    ns.add_user("root", "admin")
    ns.add_user("dora", "dpo")
    token = ok(ns.cli("users", "add", "erik", "--role", "dispatcher", "--expires-in", "2"))
    later = ns.cli("users", "add", "ezra", "--role", "investigator", "--expires-in", "0")
    assert later.returncode == 2 and b"from 1 to 365" in later.stderr
    ns.env["ANPR_TOKEN_DAYS_INVESTIGATOR"] = "12"
    try:
        ns.add_user("ivo", "investigator")
    finally:
        del ns.env["ANPR_TOKEN_DAYS_INVESTIGATOR"]
    conn = await ns.db()
    try:
        lifetimes = {
            r["name"]: round((r["expires_at"] - r["created_at"]) / timedelta(days=1), 3)
            for r in await conn.fetch(
                "SELECT name, t.created_at, expires_at FROM api_tokens t JOIN api_users USING (user_id)"
            )
        }
        assert lifetimes == {"root": 7, "dora": 90, "erik": 2, "ivo": 12}
        # A token whose time is up (issued three days ago for two days).
        old = new_token()
        await conn.execute(
            "INSERT INTO api_tokens (user_id, token_hash, created_at, created_by, expires_at) "
            "VALUES ($1, $2, now() - interval '3 days', 'test', now() - interval '1 day')",
            await user_id(conn, "erik"), token_hash(old),
        )  # fmt: skip
        base = ns.start_api()
        assert me(base, token).status_code == 200
        expired = me(base, old)
        assert expired.status_code == 401 and "expired token" in expired.json()["detail"]
        (row,) = await rows(conn, allowed=False)
        assert row["actor"] == "(unauthenticated)" and "of user erik" in row["reason"] and "expired" in row["reason"]
        assert "valid until" in ok(ns.cli("users", "list")).splitlines()[1]
    finally:
        await conn.close()


async def test_rotate_ends_the_old_token_and_keeps_the_user(namespace: Namespace) -> None:
    ns = namespace
    old = ns.add_user("ines", "investigator")
    base = ns.start_api()
    assert me(base, old).status_code == 200
    new = ok(ns.cli("users", "rotate", "ines", "--by", "it-desk"))
    assert new.startswith("anpr_") and new != old
    assert me(base, old).status_code == 401
    assert me(base, new).status_code == 200
    conn = await ns.db()
    try:
        ines = await user_id(conn, "ines")
        answered = await rows(conn, "me", True)
        assert [r["actor_id"] for r in answered] == [ines, ines]
        (rotated,) = await rows(conn, "admin.users.rotate")
        tokens = await conn.fetch("SELECT token_id, revoked_by FROM api_tokens WHERE user_id = $1 ORDER BY 1", ines)
        assert [t["revoked_by"] for t in tokens] == ["it-desk", None]
        assert (rotated["actor"], rotated["role"], rotated["p"]["user_id"]) == ("it-desk", "admin-cli", ines)
        assert rotated["p"]["revoked_tokens"] == [tokens[0]["token_id"]]
        assert rotated["p"]["token_id"] == tokens[1]["token_id"]
        assert old not in str(rotated) and new not in str(rotated)
    finally:
        await conn.close()


async def test_logout_revokes_exactly_that_token(namespace: Namespace) -> None:
    ns = namespace
    first = ns.add_user("disp", "dispatcher")
    second = ok(ns.cli("users", "issue", "disp"))
    other = ns.add_user("dirk", "dispatcher")
    base = ns.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        out = await client.post("/v1/session/logout", headers={"Authorization": f"Bearer {first}"})
        assert out.status_code == 200 and out.json()["revoked"] is True, out.text
        again = await client.post("/v1/session/logout", headers={"Authorization": f"Bearer {first}"})
        assert again.status_code == 401
        assert (await client.post("/v1/session/logout")).status_code == 401
    assert me(base, first).status_code == 401
    assert me(base, second).status_code == 200  # the user's other console stays logged in
    assert me(base, other).status_code == 200
    conn = await ns.db()
    try:
        disp = await user_id(conn, "disp")
        (logout,) = await rows(conn, "session.logout", True)
        assert (logout["actor"], logout["actor_id"], logout["p"]["token_id"]) == ("disp", disp, out.json()["token_id"])
        states = await conn.fetch("SELECT token_hash, revoked_by FROM api_tokens ORDER BY token_id")
        assert [(bytes(s["token_hash"]) == token_hash(first), s["revoked_by"]) for s in states] == [
            (True, "logout"), (False, None), (False, None),
        ]  # fmt: skip
    finally:
        await conn.close()


async def test_service_login_logs_out_through_the_function_only(namespace: Namespace, service_url: str) -> None:  # noqa: F811
    ns = namespace
    token = ns.add_user("disp", "dispatcher")
    keep = ok(ns.cli("users", "issue", "disp"))
    base = ns.start_api(extra_env={"ANPR_DATABASE_URL": service_url})
    assert me(base, token).status_code == 200
    assert httpx.post(f"{base}/v1/session/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert me(base, token).status_code == 401 and me(base, keep).status_code == 200
    svc = await asyncpg.connect(service_url)
    try:
        for sql in ("UPDATE api_tokens SET revoked_at = now(), revoked_by = 'x'", "DELETE FROM api_tokens",
                    "INSERT INTO api_tokens (user_id, token_hash, created_by, expires_at) "
                    "SELECT user_id, sha256('x'), 'x', now() + interval '1 day' FROM api_users",
                    "UPDATE api_users SET covert = true", "INSERT INTO api_users (name, role, created_by) "
                    "VALUES ('x', 'admin', 'x')"):  # fmt: skip
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await svc.execute(sql)
        assert (await verify_audit(svc)).intact
    finally:
        await svc.close()


async def test_failed_authentications_are_throttled_with_a_bounded_audit_trail(namespace: Namespace) -> None:
    ns = namespace
    good = ns.add_user("ines", "investigator")
    gone = ns.add_user("gone", "dispatcher")
    ok(ns.cli("users", "revoke", "gone"))
    window = 6.0
    base = ns.start_api(extra_env={"ANPR_AUTH_MAX_FAILURES": "3", "ANPR_AUTH_WINDOW_SECONDS": str(window)})
    started = time.monotonic()
    attacker = "198.51.100.7"  # uvicorn takes X-Forwarded-For from the loopback proxy (the test) as the client
    statuses = [me(base, f"anpr_guess{i}", attacker).status_code for i in range(3)]
    throttled = [me(base, f"anpr_guess{i}", attacker) for i in range(3, 40)]
    assert statuses == [401] * 3 and {r.status_code for r in throttled} == {429}
    retry = int(throttled[0].headers["Retry-After"])
    assert 1 <= retry <= window and "retry after" in throttled[0].json()["detail"]
    assert me(base, good, attacker).status_code == 429  # the address, whatever it sends, until the window ends
    assert me(base, good, "203.0.113.5").status_code == 200  # others are not slowed
    # A revoked user's token, from many addresses: counted for that user as well.
    spread = [me(base, gone, f"192.0.2.{i}").status_code for i in range(1, 7)]
    assert spread == [401, 401, 401, 429, 429, 429]
    assert me(base, good, "192.0.2.1").status_code == 200  # that address itself failed only once

    conn = await ns.db()
    try:
        # After the window: one summary row each, written by the API's sweep.
        deadline = time.monotonic() + window + 15
        while len(await rows(conn, "auth.throttled")) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        assert me(base, good, attacker).status_code == 200 and time.monotonic() - started >= window - 1
        from_attacker = [r for r in await rows(conn) if attacker in str(r["p"])]
        refused = await rows(conn, "me", False)
        summaries = {r["p"]["throttled"]: r for r in await rows(conn, "auth.throttled")}
    finally:
        await conn.close()
    # 3 rows for the failures evaluated, 1 for the first refusal, 1 summary: not one per attempt (41).
    assert len(from_attacker) == 2 and len(refused) == 3 + 1 + 3 + 1, [r["reason"] for r in refused]
    attack = summaries[f"address {attacker}"]
    assert attack["result_count"] == 38 and attack["p"]["failures"] == 3
    assert f"38 refused attempts from address {attacker}" in attack["reason"]
    assert (
        summaries["user gone"]["result_count"] == 3 and "with tokens of user gone" in summaries["user gone"]["reason"]
    )
    assert ok(ns.cli("audit", "verify")).startswith("audit log intact")


COVERT_PLATE, OPEN_PLATE = "1-COV-777", "1-HGT-904"


def _write(path: Path, rows_: list[str]) -> str:
    path.write_text("\n".join([HEADER, *rows_]) + "\n")
    return str(path)


async def test_every_admin_action_is_in_the_audit_chain(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    by = ["--by", "alice"]
    token = ok(ns.cli("users", "add", "kris", "--role", "investigator", "--cameras", "LM-EISDEN", *by))
    ok(ns.cli("users", "set", "kris", "--cameras", "LM-EISDEN,LM-LANAKEN-C", "--covert", *by))
    ok(ns.cli("users", "set", "kris", "--all-cameras", "--no-covert", *by))
    nothing = ns.cli("users", "set", "kris", "--no-covert")
    assert nothing.returncode == 1 and b"nothing to change" in nothing.stderr
    refused = ns.cli("users", "set", "kris", "--covert", "--no-covert")
    assert refused.returncode == 2
    ns.add_user("dan", "dispatcher")
    not_covert = ns.cli("users", "set", "dan", "--covert")
    assert not_covert.returncode == 1 and b"investigators only" in not_covert.stderr
    ok(ns.cli("users", "rotate", "kris", *by))
    ok(ns.cli("users", "issue", "kris", "--expires-in", "1", *by))
    ok(ns.cli("users", "revoke", "kris", *by))
    assert b"published 3 entries" in ok(ns.cli("watchlist", "load", _write(tmp_path / "a.csv", [
        f"SV-1,stolen_vehicle,{OPEN_PLATE},BE,1,intercept,,,PV 1,false",
        f"COV-1,covert_ops,{COVERT_PLATE},BE,2,observe,,,op falcon,true",
        "COV-2,covert_ops,1-COV-778,BE,2,observe,,,op falcon,true",
    ]), *by)).encode()  # fmt: skip
    replaced = ok(ns.cli("watchlist", "load", "--replace", _write(tmp_path / "b.csv", [
        f"SV-1,stolen_vehicle,{OPEN_PLATE},BE,1,intercept,,,PV 1,false",
    ])))  # fmt: skip
    assert "retracted 2" in replaced

    conn = await ns.db()
    try:
        kris = await user_id(conn, "kris")
        admin = await rows(conn, "admin.*")
        assert [r["endpoint"] for r in admin] == [
            "admin.users.add", "admin.users.set", "admin.users.set", "admin.users.add", "admin.users.rotate",
            "admin.users.issue", "admin.users.revoke", "admin.watchlist.load", "admin.watchlist.load",
            "admin.watchlist.retract",
        ]  # fmt: skip
        assert all(r["allowed"] and r["role"] == "admin-cli" for r in admin)
        assert {r["actor"] for r in admin[:3] + admin[4:8]} == {"alice"}
        assert admin[3]["actor"].startswith("cli:") and admin[8]["actor"].startswith("cli:")
        added = admin[0]["p"]
        assert (added["user_id"], added["name"], added["role"], added["cameras"], added["covert"]) == (
            kris, "kris", "investigator", ["LM-EISDEN"], False,
        )  # fmt: skip
        assert datetime.fromisoformat(added["expires_at"]) > datetime.now(UTC) + timedelta(days=29)
        assert admin[1]["p"]["changed"] == {"cameras": [["LM-EISDEN"], ["LM-EISDEN", "LM-LANAKEN-C"]],
                                            "covert": [False, True]}  # fmt: skip
        assert admin[2]["p"]["changed"] == {"cameras": [["LM-EISDEN", "LM-LANAKEN-C"], None], "covert": [True, False]}
        assert admin[6]["p"]["user_id"] == kris and len(admin[6]["p"]["revoked_tokens"]) == 2
        assert all(token not in str(r) for r in admin)
        loaded, reloaded, retracted = (r["p"] for r in admin[7:])
        assert loaded["lists"] == {
            "covert_ops": {"entries": 2, "covert": 2},
            "stolen_vehicle": {"entries": 1, "covert": 0},
        }
        assert (loaded["entries"], reloaded["entries"], reloaded["replace"]) == (3, 1, True)
        assert retracted["lists"] == {"covert_ops": {"entries": 2, "covert": 2}} and admin[9]["result_count"] == 2
        text = orjson.dumps([r["p"] for r in admin[7:]]).decode()
        for secret in ("COV-1", "COV-2", "COV777", COVERT_PLATE, "1-COV-778", "falcon", OPEN_PLATE):
            assert secret not in text
        assert (await verify_audit(conn)).intact
    finally:
        await conn.close()
    assert ok(ns.cli("audit", "verify")).startswith("audit log intact: 10 rows")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_watchlist_load_refused_without_the_audit_log(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    listed = _write(tmp_path / "a.csv", [f"SV-1,stolen_vehicle,{OPEN_PLATE},BE,1,intercept,,,PV 1,false"])
    down = ns.env | {"ANPR_DATABASE_URL": f"postgresql://nobody:x@127.0.0.1:{_closed_port()}/anpr"}
    saved, ns.env = ns.env, down
    try:
        refused = ns.cli("watchlist", "load", listed)
    finally:
        ns.env = saved
    assert refused.returncode == 1 and b"nothing published" in refused.stderr and b"audit log" in refused.stderr
    admin = AIOKafkaAdminClient(bootstrap_servers=ns.infra.kafka_bootstrap)
    await admin.start()
    try:
        assert ns.watchlist not in await admin.list_topics()
    finally:
        await admin.close()


CHROMIUM = shutil.which("chromium")


@pytest.fixture
def page_problems() -> Iterator[list[str]]:
    problems: list[str] = []
    yield problems
    assert problems == []


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by `make test` (Debian package)")
async def test_console_logout_revokes_its_token(namespace: Namespace, page_problems: list[str]) -> None:
    from playwright.async_api import async_playwright

    ns = namespace
    token = ns.add_user("dispatch-lou", "dispatcher")
    base = ns.start_api()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page()
            page.on("pageerror", lambda error: page_problems.append(f"page error: {error}"))
            await page.goto(f"{base}/console")
            await page.fill("#login-token", token)
            await page.fill("#login-case", "SHIFT 2026-12-02 D")
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector('#status[data-state="live"]', timeout=30_000)
            async with page.expect_response(lambda r: r.url.endswith("/v1/session/logout")) as answer:
                await page.click("#logout")
            assert (await answer.value).status == 200
            await page.wait_for_selector("#login:not([hidden])", timeout=10_000)
            assert await page.evaluate("sessionStorage.getItem('anpr.token')") is None
        finally:
            await browser.close()
    assert me(base, token).status_code == 401
    conn = await ns.db()
    try:
        stored = await conn.fetchval("SELECT revoked_by FROM api_tokens WHERE token_hash = $1",
                                     hashlib.sha256(token.encode()).digest())  # fmt: skip
        assert stored == "logout"
    finally:
        await conn.close()
