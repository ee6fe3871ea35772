"""POST /v1/watchlist/entries (watchlist.publish) against a real API process, Kafka and PostgreSQL: an investigator's
entry reaches the watchlist topic (and the worker alerts on it), the audit row comes first, and the refusals (no
purpose, wrong role, covert without clearance, an invalid entry, Kafka unreachable) publish nothing."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.conftest import Namespace
from tests.integration.test_pipeline import reading

pytestmark = pytest.mark.integration

JUSTIFICATION = {"X-Purpose": "stolen vehicle follow-up", "X-Case-Reference": "LI.43.L1.000777/26"}
ENTRY: dict[str, Any] = {"entry_id": "WS-1", "list": "stolen_vehicle", "plate": "1-KLM-246", "country": "BE",
                         "priority": 1, "action": "intercept", "reference": "PV 777"}  # fmt: skip


def _headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JUSTIFICATION, **extra}


async def _publish(base: str, headers: dict[str, str], entry: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return await client.post("/v1/watchlist/entries", json=entry, headers=headers)


async def _audit_rows(ns: Namespace) -> list[dict[str, Any]]:
    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT actor, endpoint, allowed, purpose, case_reference, reason, result_count, parameters::text AS p "
            "FROM audit_log WHERE endpoint = 'watchlist.publish' ORDER BY id"
        )
        return [{**dict(r), "p": orjson.loads(r["p"])} for r in rows]
    finally:
        await conn.close()


async def test_an_investigator_publishes_an_entry_audited_first(namespace: Namespace) -> None:
    ns = namespace
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    got = await _publish(base, _headers(token), ENTRY)
    assert got.status_code == 201, got.text
    assert got.json() == {
        "entry": {"entry_id": "WS-1", "list": "stolen_vehicle", "plate": "1-KLM-246", "covert": False},
        "topic": ns.watchlist,
        "published": True,
    }
    (record,) = await ns.consume(ns.watchlist, 1)
    assert record.key == b"WS-1"
    value = orjson.loads(record.value)
    assert {k: value[k] for k in ENTRY} == ENTRY
    assert value["covert"] is False and value["valid_from"] == "" and value["valid_until"] == ""

    (row,) = await _audit_rows(ns)
    assert (row["actor"], row["allowed"], row["result_count"], row["reason"]) == ("ivan", True, 1, None)
    assert (row["purpose"], row["case_reference"]) == (JUSTIFICATION["X-Purpose"], JUSTIFICATION["X-Case-Reference"])
    assert row["p"] == {"entry_id": "WS-1", "list": "stolen_vehicle", "plate": "1-KLM-246", "covert": False,
                        "topic": ns.watchlist}  # fmt: skip

    # The same entry id again: overwritten on the compacted topic (the latest value counts), no read first.
    again = await _publish(base, _headers(token), {**ENTRY, "priority": 2})
    assert again.status_code == 201, again.text
    records = await ns.consume(ns.watchlist, 2)
    assert [r.key for r in records] == [b"WS-1", b"WS-1"]
    assert orjson.loads(records[-1].value)["priority"] == 2

    # Another investigator may not overwrite it; ids without the workspace prefix (the files' entries) are refused.
    other = ns.add_user("olga", "investigator")
    taken = await _publish(base, _headers(other), {**ENTRY, "plate": "9-XXX-999"})
    assert taken.status_code == 409 and "published by another user" in taken.json()["detail"]
    files = await _publish(base, _headers(token), {**ENTRY, "entry_id": "SV-1"})
    assert files.status_code == 400 and "start with 'WS-'" in files.json()["detail"]
    assert len(await ns.consume(ns.watchlist, 2, timeout=5)) == 2, "nothing more on the topic"


async def test_two_users_publishing_a_new_id_at_once_one_gets_it(namespace: Namespace) -> None:
    """The ownership check and the claim are one step: never two owners of one entry id."""
    ns = namespace
    tokens = [ns.add_user(f"inv-{i}", "investigator") for i in range(4)]
    base = ns.start_api()
    for round_ in range(3):
        entry = {**ENTRY, "entry_id": f"WS-RACE-{round_}"}
        answers = await asyncio.gather(*(_publish(base, _headers(t), entry) for t in tokens))
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    rows = [r for r in await _audit_rows(ns) if r["allowed"]]
    assert len(rows) == 3 and len({r["p"]["entry_id"] for r in rows}) == 3


async def test_watchlist_files_and_workspace_entries_leave_each_other_alone(
    namespace: Namespace, tmp_path: Any
) -> None:
    """`watchlist load --replace` retracts what is not in the files, but not the workspace's entries; a file may not
    use the workspace's ids."""
    from anpr_stream.stream.watchlist_publish import current_entry_ids

    ns = namespace
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    assert (await _publish(base, _headers(token), ENTRY)).status_code == 201
    lists = tmp_path / "lists.csv"
    lists.write_text(
        "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert\n"
        "SV-9,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 9,false\n"
        "ws-2,stolen_vehicle,1-HGT-905,BE,1,intercept,,,PV 10,false\n"
    )
    loaded = ns.cli("watchlist", "load", "--replace", str(lists))
    assert "reserved for entries published from the workspace" in loaded.stderr.decode()
    assert await current_entry_ids(ns.infra.kafka_bootstrap, ns.watchlist) == {"WS-1", "SV-9"}


async def test_refusals_publish_nothing_and_are_audited(namespace: Namespace) -> None:
    ns = namespace
    investigator = ns.add_user("ines", "investigator")
    dispatcher = ns.add_user("dirk", "dispatcher")
    base = ns.start_api()
    covert = {**ENTRY, "entry_id": "WS-CV-1", "list": "covert_ops", "covert": True}

    no_purpose = await _publish(base, {"Authorization": f"Bearer {investigator}", "X-Case-Reference": "LM.1"}, ENTRY)
    assert no_purpose.status_code == 403 and "X-Purpose" in no_purpose.json()["detail"], no_purpose.text
    by_dispatcher = await _publish(base, _headers(dispatcher), ENTRY)
    assert by_dispatcher.status_code == 403, by_dispatcher.text
    assert "may not use watchlist.publish" in by_dispatcher.json()["detail"]
    uncleared = await _publish(base, _headers(investigator), covert)
    assert uncleared.status_code == 403, uncleared.text
    assert "cleared for covert lists" in uncleared.json()["detail"]
    invalid = await _publish(base, _headers(investigator), {**ENTRY, "plate": "---"})
    assert invalid.status_code == 400, invalid.text
    assert invalid.json()["detail"] == "invalid watchlist entry: plate '---' has no letters or digits"

    assert await ns.consume(ns.watchlist, 1, timeout=3) == []
    rows = await _audit_rows(ns)
    assert [(r["actor"], r["allowed"]) for r in rows] == [("ines", False), ("dirk", False), ("ines", False),
                                                          ("ines", False)]  # fmt: skip
    assert "X-Purpose" in rows[0]["reason"] and "covert" in rows[2]["reason"] and "---" in rows[3]["reason"]
    assert rows[2]["p"]["covert"] is True and rows[2]["p"]["entry_id"] == "WS-CV-1"

    # A covert-cleared investigator may.
    cleared = ns.add_user("carla", "investigator", covert=True)
    published = await _publish(base, _headers(cleared), covert)
    assert published.status_code == 201, published.text
    (record,) = await ns.consume(ns.watchlist, 1)
    assert record.key == b"WS-CV-1" and orjson.loads(record.value)["covert"] is True


async def test_kafka_unreachable_is_a_503_with_a_second_audit_row(namespace: Namespace) -> None:
    ns = namespace
    token = ns.add_user("ivan", "investigator")
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    base = ns.start_api(extra_env={"ANPR_KAFKA_BOOTSTRAP": dead})
    started = datetime.now(UTC)
    got = await _publish(base, _headers(token), ENTRY)
    assert (datetime.now(UTC) - started).total_seconds() < 30
    assert got.status_code == 503, got.text
    assert got.json()["detail"].startswith(f"publishing to {ns.watchlist} failed after the request was recorded: ")
    rows = await _audit_rows(ns)
    assert [(r["allowed"], r["result_count"]) for r in rows] == [(True, 1), (False, None)]
    assert rows[1]["reason"] == got.json()["detail"]
    assert rows[1]["purpose"] == JUSTIFICATION["X-Purpose"] and rows[1]["p"]["entry_id"] == "WS-1"


async def test_the_worker_alerts_on_a_published_entry(namespace: Namespace) -> None:
    ns = namespace
    token = ns.add_user("ivan", "investigator")
    base = ns.start_api()
    got = await _publish(base, _headers(token), ENTRY)
    assert got.status_code == 201, got.text
    ns.start_worker()
    # The worker's feed may still be loading the list when the first read arrives: read the plate until a hit.
    for attempt in range(30):
        await ns.produce([reading(f"w-{attempt}", "1KLM246", datetime.now(UTC))])
        hits = await ns.hits_payloads(1, timeout=2)
        if hits:
            break
    assert hits and hits[0]["entry_id"] == "WS-1" and hits[0]["list"] == "stolen_vehicle"


async def test_a_broker_that_never_answers_is_a_503_within_the_bound(namespace: Namespace) -> None:
    ns = namespace
    token = ns.add_user("ivan", "investigator")
    held: list[asyncio.StreamWriter] = []

    async def accept_and_stay_silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # the connection stays open; nothing is ever answered

    server = await asyncio.start_server(accept_and_stay_silent, "127.0.0.1", 0)
    try:
        silent = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
        base = ns.start_api(extra_env={"ANPR_KAFKA_BOOTSTRAP": silent})
        started = datetime.now(UTC)
        got = await _publish(base, _headers(token), ENTRY)
        assert (datetime.now(UTC) - started).total_seconds() < 30
        assert got.status_code == 503, got.text
        assert got.json()["detail"].endswith("no answer from Kafka within 15 s")
        assert [r["allowed"] for r in await _audit_rows(ns)] == [True, False]
    finally:
        ns.stop_workers()  # the API first: it holds connections to the server
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
