"""A covert hit through every channel, on the real worker, broker, database and API: the hits topic, the worker's
/metrics, and for a dispatcher and an uncleared investigator hits.list, hits.get, the live stream (live, backlog and
resume from Kafka) and the list filter carry nothing of the entry (list, entry id, priority, reference, listed
plate, action); a cleared investigator sees the entry's details from PostgreSQL on the same channels."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from anpr_stream.core.identity import read_hit_id
from anpr_stream.core.outgoing import COVERT_INSTRUCTION
from tests.integration.conftest import Namespace
from tests.integration.test_console import stream_events
from tests.integration.test_pipeline import load_watchlist, reading

pytestmark = pytest.mark.integration

ENTRY_ID, LIST, REFERENCE = "OMCG-0042", "biker_club_limburg", "dossier OMCG-7"
LISTED, ACTION = "M-JKR-66", "shadow_team"
ENTRIES = [
    f"{ENTRY_ID},{LIST},{LISTED},NL,2,{ACTION},,,{REFERENCE},true",
    "SV-9,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 9,false",
]
# Every detail of the covert entry, as text: none may appear in what an uncleared caller gets.
SECRETS = ("OMCG", LIST, LISTED, "MJKR66", ACTION)
READ_PLATE = "M-JKR-G6"  # an OCR confusion (6 read as G): the plate read differs from the one listed


def leaked(anything: Any) -> list[str]:
    text = orjson.dumps(anything).decode()
    return [secret for secret in SECRETS if secret in text]


def assert_opaque(hit: dict[str, Any]) -> None:
    assert leaked(hit) == [], hit
    assert (hit["entry_id"], hit["list"], hit["priority"], hit["action"]) == (None, None, None, "inform")
    assert hit["entry_ref"] == hit["hit_id"]
    entry = hit["entry"]
    assert entry["covert"] is True and entry["instruction"] == COVERT_INSTRUCTION
    assert all(entry[k] is None for k in ("entry_id", "list", "plate", "country", "reference", "priority"))
    assert hit["read"]["plate"] == READ_PLATE


def assert_detailed(hit: dict[str, Any]) -> None:
    assert (hit["entry_id"], hit["list"], hit["priority"], hit["action"]) == (ENTRY_ID, LIST, 2, ACTION)
    assert (hit["entry"]["entry_id"], hit["entry"]["list"], hit["entry"]["plate"]) == (ENTRY_ID, LIST, LISTED)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def live_hits(
    client: httpx.AsyncClient, headers: dict[str, str], count: int, ready: asyncio.Event
) -> list[dict[str, Any]]:
    """The first `count` hits a live stream delivers after its `ready` (which sets `ready`)."""
    got: list[dict[str, Any]] = []
    events = stream_events(client, headers)
    try:
        async for kind, data, _ in events:
            if kind == "ready":
                ready.set()
            elif kind == "hit" and ready.is_set():
                got.append(data)
                if len(got) == count:
                    return got
    finally:
        await events.aclose()
    raise AssertionError("the stream ended")


async def test_a_covert_hit_leaks_through_no_channel(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    load_watchlist(ns, tmp_path, ENTRIES)
    metrics_port = free_port()
    ns.start_worker(extra_env={"ANPR_METRICS_PORT": str(metrics_port)})
    tokens = {
        "dispatcher": ns.add_user("disp", "dispatcher"),
        "investigator": ns.add_user("inv", "investigator"),
        "cleared": ns.add_user("cleared", "investigator", covert=True),
    }
    base = ns.start_api()
    justification = {"X-Purpose": "dispatch", "X-Case-Reference": "SHIFT 1"}
    auth = {name: {"Authorization": f"Bearer {t}", **justification} for name, t in tokens.items()}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, asyncio.timeout(120):
        # Live streams open before the hits exist.
        ready = {name: asyncio.Event() for name in auth}
        streams = {name: asyncio.create_task(live_hits(client, h, 2, ready[name])) for name, h in auth.items()}
        for event in ready.values():
            await event.wait()
        now = datetime.now(UTC)
        covert_read, plain_read = reading("c-1", READ_PLATE, now), reading("p-1", "1-HGT-904", now)
        await ns.produce([covert_read, plain_read])
        covert_id = read_hit_id(orjson.loads(covert_read), ENTRY_ID)

        published = await ns.hits_payloads(2)
        by_id = {p["hit_id"]: p for p in published}
        assert set(by_id) == {covert_id, read_hit_id(orjson.loads(plain_read), "SV-9")}
        assert_opaque(by_id[covert_id])  # on the hits topic itself

        live = {name: {h["hit_id"]: h for h in await task} for name, task in streams.items()}
        await ns.all_decided()
        for name, h in auth.items():
            listed = await client.get("/v1/hits", headers=h)
            one = await client.get(f"/v1/hits/{covert_id}", headers=h)
            assert listed.status_code == one.status_code == 200, (listed.text, one.text)
            backlog_hits = await _first_events(client, h, {})
            resumed = await _first_events(client, h, {"Last-Event-ID": "0:0"})
            views = {
                "hits.list": next(x for x in listed.json()["hits"] if x["hit_id"] == covert_id),
                "hits.get": one.json(),
                "live": live[name][covert_id],
                "backlog": backlog_hits[covert_id],
                "resume": resumed[covert_id],
            }
            for channel, view in views.items():
                try:
                    (assert_detailed if name == "cleared" else assert_opaque)(view)
                except AssertionError as exc:
                    raise AssertionError(f"{name} via {channel}: {exc}") from exc
            if name != "cleared":
                assert leaked([listed.json(), backlog_hits, resumed, live[name]]) == [], name

            # The list filter: a covert list's name answers exactly as a list that does not exist.
            probe = await client.get("/v1/hits", headers=h, params={"list": LIST})
            nothing = await client.get("/v1/hits", headers=h, params={"list": "no_such_list"})
            if name == "cleared":
                assert [x["hit_id"] for x in probe.json()["hits"]] == [covert_id]
            else:
                assert (probe.status_code, probe.json()["hits"]) == (nothing.status_code, nothing.json()["hits"])
                assert probe.json()["hits"] == [] and probe.headers.keys() == nothing.headers.keys()

    conn = await ns.db()
    try:
        counts = await conn.fetch(
            "SELECT actor, parameters->>'list' AS list, result_count FROM audit_log "
            "WHERE endpoint = 'hits.list' AND parameters ? 'list' ORDER BY id"
        )
    finally:
        await conn.close()
    uncleared = [(r["list"], r["result_count"]) for r in counts if r["actor"] != "cleared"]
    assert uncleared == [(LIST, 0), ("no_such_list", 0)] * 2

    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert 'anpr_hits_total{kind="ocr",list="covert"} 1.0' in metrics
    assert 'list="stolen_vehicle"' in metrics
    assert [s for s in SECRETS if s in metrics] == []


async def _first_events(
    client: httpx.AsyncClient, headers: dict[str, str], extra: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Hit id -> payload of the hits a stream sends before its `ready` (backlog, or a resume's replay)."""
    out: dict[str, dict[str, Any]] = {}
    events = stream_events(client, {**headers, **extra})
    try:
        async for kind, data, _ in events:
            if kind == "ready":
                return out
            if kind == "hit":
                out[data["hit_id"]] = data
    finally:
        await events.aclose()
    raise AssertionError("the stream ended before `ready`")
