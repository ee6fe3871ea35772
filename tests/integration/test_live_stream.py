"""The live stream's limits, on the real broker, database and API process: a resume from the topic's start replays
only hits inside the window the stream was granted and on the caller's cameras (from Kafka and from the process's
memory alike), and says how many in its audit row; a revoked token's open streams end within seconds while others
stay open."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from anpr_stream.config import Settings
from anpr_stream.stream.topics import ensure_topics
from tests.integration.conftest import Namespace
from tests.integration.test_api_access import payload
from tests.integration.test_console import stream_events

pytestmark = pytest.mark.integration

MINE, OTHER = "LM-EISDEN", "LM-LANAKEN-C"
JUSTIFICATION = {"X-Purpose": "dispatch", "X-Case-Reference": "SHIFT 7"}


async def publish(ns: Namespace, hits: list[tuple[str, datetime, str, datetime | None]]) -> None:
    """(label, observed_at, camera, Kafka timestamp or None for now) hits straight onto the hits topic."""
    producer = AIOKafkaProducer(bootstrap_servers=ns.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for label, at, camera, stamp in hits:
            body = payload(uuid.uuid5(uuid.NAMESPACE_URL, label), at, camera, "stolen_vehicle", "1ABC123", False)
            await producer.send_and_wait(
                ns.hits, orjson.dumps(body), key=label.encode(),
                timestamp_ms=int(stamp.timestamp() * 1000) if stamp else None,
            )  # fmt: skip
    finally:
        await producer.stop()


def hit_id(label: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, label))


async def replayed(client: httpx.AsyncClient, token: str, resume: str) -> list[str]:
    """The hit ids a stream resumed from `resume` sends before its `ready`."""
    out: list[str] = []
    events = stream_events(client, {"Authorization": f"Bearer {token}", **JUSTIFICATION, "Last-Event-ID": resume})
    try:
        async for kind, data, _ in events:
            if kind == "ready":
                return out
            if kind == "hit":
                out.append(data["hit_id"])
    finally:
        await events.aclose()
    raise AssertionError("the stream ended before `ready`")


async def test_a_resume_stays_inside_the_granted_window_and_scope(namespace: Namespace) -> None:
    ns = namespace
    await ensure_topics(Settings.from_env(ns.env))
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=2)  # the stream's window is the last 12 hours
    # Before the API starts: in no process's memory, read back from Kafka.
    await publish(ns, [
        ("old-published-then", long_ago, MINE, long_ago),  # skipped by the Kafka seek by time
        ("old-published-now", long_ago, MINE, None),  # a late hit: published now, observed before the window
        ("fresh-mine", now - timedelta(minutes=5), MINE, None),
        ("fresh-other", now - timedelta(minutes=4), OTHER, None),
        ("edge-old", now - timedelta(hours=12, minutes=1), MINE, None),
    ])  # fmt: skip
    everyone = ns.add_user("disp-all", "dispatcher")
    scoped = ns.add_user("disp-eisden", "dispatcher", cameras=[MINE])
    base = ns.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, asyncio.timeout(90):
        assert await replayed(client, everyone, "0:0") == [hit_id("fresh-mine"), hit_id("fresh-other")]
        assert await replayed(client, scoped, "0:0") == [hit_id("fresh-mine")]
        # After the API started: from the process's ring, the same rules.
        await publish(ns, [("old-live", long_ago, MINE, None), ("fresh-live", now, MINE, None)])
        deadline = time.monotonic() + 30
        while hit_id("fresh-live") not in (got := await replayed(client, scoped, "0:0")):
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.3)
        assert got == [hit_id("fresh-mine"), hit_id("fresh-live")]
        assert await replayed(client, everyone, "0:3") == [hit_id("fresh-other"), hit_id("fresh-live")]
        assert await replayed(client, everyone, "0:5") == [hit_id("fresh-live")]  # offsets 5, 6: in memory
    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT actor, result_count, parameters FROM audit_log WHERE endpoint = 'hits.stream' ORDER BY id"
        )
    finally:
        await conn.close()
    audited = [(r["actor"], r["result_count"], orjson.loads(r["parameters"])) for r in rows]
    assert audited[:2] == [
        ("disp-all", 2, {"resume": "0:0", "replayed": 2, "replay_truncated": False}),
        ("disp-eisden", 1, {"resume": "0:0", "replayed": 1, "replay_truncated": False}),
    ]
    assert [(n, p["resume"], p["replayed"]) for _, n, p in audited[-2:]] == [(2, "0:3", 2), (1, "0:5", 1)]


async def _read_until_ready(events: Any) -> None:
    async for kind, _, _ in events:
        if kind == "ready":
            return
    raise AssertionError("the stream ended before `ready`")


async def test_revoking_a_token_ends_its_open_streams_within_seconds(namespace: Namespace) -> None:
    ns = namespace
    revoked = ns.add_user("disp-leaving", "dispatcher")
    staying = ns.add_user("disp-staying", "dispatcher")
    base = ns.start_api()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, asyncio.timeout(90):
        doomed = [stream_events(client, {"Authorization": f"Bearer {revoked}", **JUSTIFICATION}) for _ in range(2)]
        kept = stream_events(client, {"Authorization": f"Bearer {staying}", **JUSTIFICATION})
        for events in [*doomed, kept]:
            await _read_until_ready(events)

        async def until_end(events: Any) -> float:
            got = [kind async for kind, _, _ in events]
            assert "hit" not in got, got
            return time.monotonic()

        ends = [asyncio.create_task(until_end(events)) for events in doomed]
        await asyncio.sleep(0.5)
        done = await asyncio.to_thread(ns.cli, "users", "revoke", "disp-leaving")
        assert done.returncode == 0, done.stderr.decode()
        revoked_at = time.monotonic()  # committed by now
        ended = await asyncio.wait_for(asyncio.gather(*ends), 10)
        assert all(at - revoked_at < 5 for at in ended), [at - revoked_at for at in ended]

        # The other user's stream is still live: a hit published now reaches it.
        await publish(ns, [("after-revoke", datetime.now(UTC), MINE, None)])
        async for kind, data, _ in kept:
            if kind == "hit":
                assert data["hit_id"] == hit_id("after-revoke")
                break
        await kept.aclose()
        gone = await client.get("/v1/live/hits", headers={"Authorization": f"Bearer {revoked}", **JUSTIFICATION})
        assert gone.status_code == 401
