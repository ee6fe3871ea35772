"""The stream worker against the real broker and database: dead letters, hits, live watchlist changes, repeat
suppression, unknown cameras, and third-party clients (kcat)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from anpr_stream.core.identity import read_hit_id
from tests.integration.conftest import ARTIFACTS, Namespace

pytestmark = pytest.mark.integration

HEADER = "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert"


def reading(read_id: str, plate: str, at: datetime, camera: str = "LM-VELDWEZELT-IN", **extra: Any) -> bytes:
    body = {
        "read_id": read_id,
        "camera_id": camera,
        "observed_at": at.isoformat(timespec="milliseconds"),
        "plate": plate,
        "country": "BE",
        "confidence": 0.93,
        "direction": "in",
        **extra,
    }
    return orjson.dumps(body)


def load_watchlist(ns: Namespace, tmp_path: Any, rows: list[str], *flags: str) -> None:
    path = tmp_path / f"list-{len(rows)}-{abs(hash(tuple(rows)))}.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    result = ns.cli("watchlist", "load", *flags, str(path))
    assert result.returncode == 0, result.stderr.decode()


async def test_bad_messages_reach_the_dlq_and_valid_reads_around_them_are_processed(
    namespace: Namespace, tmp_path: Any
) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(ns, tmp_path, ["SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false"])
    bad: dict[bytes | None, str] = {
        b'{"read_id": "x1", "camera_id": ': "malformed JSON",
        b"[1, 2, 3]": "expected a JSON object",
        orjson.dumps({"camera_id": "c", "observed_at": now.isoformat(), "plate": "1ABC123", "country": "BE",
                      "confidence": 0.5}): "read_id",
        orjson.dumps({"read_id": 7, "camera_id": "c", "observed_at": now.isoformat(), "plate": "1ABC123",
                      "country": "BE", "confidence": 0.5}): "read_id",
        reading("x5", "1-ABC-123", now).replace(b"0.93", b"7.5"): "confidence",
        reading("x6", "1-ABC-123", now + timedelta(days=400)): "future",
        reading("x7", "1-ABC-123" * 5, now): "plate",
        reading("x8", "1-AB\x07C-123", now): "control",
        reading("x9", "1-ABC-123", now).replace(b"+00:00", b""): "observed_at",
        None: "null value",
    }  # fmt: skip
    good = [reading(f"ok-{i}", f"1-XYZ-{i:03d}", now) for i in range(5)]
    matching = reading("ok-hit", "1-HGT-9O4", now)
    values: list[bytes | None] = [good[0], *list(bad)[:5], good[1], matching, *list(bad)[5:], *good[2:]]
    ns.start_worker()
    await ns.produce(values)

    dead = await ns.consume(ns.dlq, len(bad), timeout=60)
    assert len(dead) == len(bad)
    by_value = {record.value: dict(record.headers) for record in dead}
    for value, expected in bad.items():
        reason = by_value[value]["anpr-dlq-reason"].decode()
        assert expected in reason, (value, reason)
        assert by_value[value]["anpr-dlq-source"].startswith(ns.reads.encode())
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 6) == 6
    hits = await ns.hits_payloads(1)
    assert [h["read_id"] for h in hits] == ["ok-hit"]


async def test_a_hit_is_dispatched_once_logged_and_enriched(namespace: Namespace, tmp_path: Any) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(
        ns,
        tmp_path,
        [
            "SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV BR.12.L3.118876/25,false",
            "BC-1,biker_club,2-ABN-317,BE,3,observe,,,dossier OMCG,true",
        ],
    )
    ns.start_worker()
    first_read = reading("r-1", "1 HGT 9O4", now, lane=2)  # ocr: O for 0, separators lost
    await ns.produce(
        [
            first_read,
            reading("r-2", "2ABN317", now, camera="CAM-NOT-IN-REGISTRY"),  # covert list, unknown camera
            reading("r-3", "1-QQQ-111", now),
        ]
    )
    hits = {h["read_id"]: h for h in await ns.hits_payloads(2)}
    assert set(hits) == {"r-1", "r-2"}
    first = hits["r-1"]
    assert first["hit_id"] == read_hit_id(orjson.loads(first_read), "SV-1")
    assert (first["match"], first["distance"], first["suppressed"]) == ("ocr", 0, False)
    assert (first["list"], first["priority"], first["action"]) == ("stolen_vehicle", 1, "intercept")
    assert first["entry"]["reference"] == "PV BR.12.L3.118876/25"
    assert first["camera"]["name"] and first["camera"]["known"] is True
    assert first["read"]["plate"] == "1 HGT 9O4" and first["read"]["lane"] == 2
    assert first["latency_ms"]["since_kafka"] >= 0
    covert = hits["r-2"]
    assert covert["entry"]["covert"] is True
    assert covert["list"] is None and covert["entry"]["reference"] is None and covert["entry"]["plate"] is None
    assert covert["camera"]["known"] is False

    conn = await ns.db()
    try:
        rows = await conn.fetch("SELECT read_id, has_hit, camera_known, plate_class FROM passages ORDER BY read_id")
        assert [(r["read_id"], r["has_hit"], r["camera_known"]) for r in rows] == [
            ("r-1", True, True),
            ("r-2", True, False),
            ("r-3", False, True),
        ]
        ahead = (now + timedelta(days=3)).strftime("passages_%Y%m%d")
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", ahead), "day partitions are created ahead"
        stored = await conn.fetch("SELECT entry_id, list, covert, suppressed FROM hits ORDER BY entry_id")
        assert [tuple(r) for r in stored] == [
            ("BC-1", "biker_club", True, False),
            ("SV-1", "stolen_vehicle", False, False),
        ]
    finally:
        await conn.close()


async def test_an_ocr_candidate_hit_is_dispatched_and_stored_saying_which_candidate(
    namespace: Namespace, tmp_path: Any
) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(ns, tmp_path, ["SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false"])
    ns.start_worker(extra_env={"ANPR_MATCH_POLICY": "default=fuzzy:0;stolen_vehicle=candidates:2"})
    candidates = [{"plate": "1-HGT-907", "confidence": 0.7}, {"plate": "1-HGT-904", "confidence": 0.55}]
    await ns.produce(
        [
            reading("r-1", "1-HGT-9O7", now, candidates=candidates, position={"lat": 50.9, "lon": 5.7, "heading": 90}),
            reading("r-2", "1-HGT-904", now, candidates=candidates),  # the best plate wins: no candidate hit
        ]
    )
    hits = {h["read_id"]: h for h in await ns.hits_payloads(2)}
    assert (hits["r-1"]["matched_plate"], hits["r-1"]["candidate_rank"], hits["r-1"]["candidate_confidence"]) == (
        "1-HGT-904",
        2,
        0.55,
    )
    assert hits["r-1"]["read"]["position"] == {"lat": 50.9, "lon": 5.7, "heading": 90}
    assert (hits["r-2"]["matched_plate"], hits["r-2"]["candidate_rank"]) == ("1-HGT-904", None)
    conn = await ns.db()
    try:
        rows = await conn.fetch(
            "SELECT read_id, matched_plate, candidate_rank, candidate_confidence FROM hits ORDER BY read_id"
        )
        assert [tuple(r) for r in rows] == [("r-1", "1-HGT-904", 2, 0.55), ("r-2", None, None, None)]
    finally:
        await conn.close()


async def test_watchlist_changes_apply_live_and_repeats_are_suppressed(namespace: Namespace, tmp_path: Any) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(ns, tmp_path, ["SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false"])
    ns.start_worker()
    await ns.produce([reading("a-1", "1-KXR-482", now)])  # not listed yet
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 1) == 1

    load_watchlist(
        ns,
        tmp_path,
        ["IG-1,itinerant_gang,1-KXR-482,BE,1,intercept,,,PV 2,false"],
        "--replace",  # also retracts SV-1
    )
    # The worker applies the change without restart; wait until a probe read hits.
    for attempt in range(40):
        await ns.produce([reading(f"probe-{attempt}", "1-KXR-482", now + timedelta(seconds=attempt))])
        got = await ns.wait_for_rows("SELECT count(*) FROM hits WHERE entry_id = 'IG-1'", 1, 1.0)
        if got:
            break
    else:
        raise AssertionError("the new watchlist entry never took effect")
    # Within the window: logged, not re-dispatched. Different camera, OCR variant of the same plate.
    later = now + timedelta(minutes=3)
    await ns.produce(
        [
            reading("b-1", "1-KXR-4B2", later, camera="LM-SMEERMAAS-OUT"),
            reading("b-2", "1-HGT-904", later),  # SV-1 was retracted: no hit
        ]
    )
    assert await ns.wait_for_rows("SELECT count(*) FROM passages WHERE read_id IN ('b-1', 'b-2')", 2) == 2
    await ns.all_decided()
    conn = await ns.db()
    try:
        rows = await conn.fetch("SELECT read_id, suppressed FROM hits WHERE entry_id = 'IG-1' ORDER BY observed_at")
        assert rows[0]["suppressed"] is False
        assert all(r["suppressed"] for r in rows[1:]), [tuple(r) for r in rows]
        assert "b-1" in [r["read_id"] for r in rows]
        assert await conn.fetchval("SELECT count(*) FROM hits WHERE entry_id = 'SV-1'") == 0
    finally:
        await conn.close()
    published = await ns.hits_payloads(len(rows), timeout=10)
    dispatched = [h for h in published if not h["suppressed"]]
    assert len(dispatched) == 1 and dispatched[0]["entry_id"] == "IG-1"
    assert {h["read_id"] for h in published if h["suppressed"]} >= {"b-1"}


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by `make test` (Debian package kcat)")
async def test_kcat_produces_reads_and_reads_hits(namespace: Namespace, tmp_path: Any) -> None:
    ns = namespace
    now = datetime.now(UTC)
    load_watchlist(ns, tmp_path, ["SV-9,stolen_vehicle,GX-482-T,NL,1,intercept,,,PV 9,false"])
    ns.start_worker()
    lines = b"\n".join([reading("k-1", "GX-482-T", now), reading("k-2", "1-AAA-001", now)]) + b"\n"
    bootstrap = ns.infra.kafka_bootstrap
    subprocess.run(
        ["kcat", "-P", "-b", bootstrap, "-t", ns.reads, "-K", "\t"],
        input=b"".join(b"LM-E314\t" + line + b"\n" for line in lines.splitlines()),
        check=True, timeout=30,
    )  # fmt: skip
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 2) == 2
    # The hit is published after its alert hold, which may end after the passages are stored: wait for the first
    # committed message (-c 1) rather than reading to the current end (-e), bounded by the subprocess timeout.
    out = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", ns.hits, "-X", "isolation.level=read_committed", "-o", "beginning",
         "-c", "1", "-q", "-f", "%k\t%s\n"],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    key, value = out.stdout.decode().strip().split("\t", 1)
    hit = orjson.loads(value)
    assert key == hit["hit_id"] == read_hit_id(orjson.loads(lines.splitlines()[0]), "SV-9")
    assert hit["match"] == "exact" and hit["read"]["plate"] == "GX-482-T"


async def test_the_worker_purges_day_partitions_past_retention_on_schedule(namespace: Namespace) -> None:
    ns = namespace
    old_day = (datetime.now(UTC) - timedelta(days=400)).date()
    recent_day = (datetime.now(UTC) - timedelta(days=10)).date()
    conn = await ns.db()
    try:
        for day, read_id in ((old_day, "old-1"), (recent_day, "recent-1")):
            await conn.execute("SELECT ensure_passage_partition($1)", day)
            await conn.execute(
                """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class,
                                         confidence, camera_known)
                   VALUES ($1, 'LM-EISDEN', $2, '1-ABC-123', '1ABC123', '1A8C123', 0.9, true)""",
                read_id,
                datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            )
        ns.start_worker(extra_env={"ANPR_PURGE_INTERVAL_SECONDS": "1"})
        old_partition = old_day.strftime("passages_%Y%m%d")
        # The run drops the day first (DETACH ... CONCURRENTLY cannot run in a transaction) and records itself in
        # purge_log once its deletes commit: wait for both, bounded.
        for _ in range(120):
            gone = not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", old_partition)
            if gone and await conn.fetchval("SELECT count(*) FROM purge_log") >= 1:
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError("the worker never purged (and recorded purging) the partition past retention")
        assert [r["read_id"] for r in await conn.fetch("SELECT read_id FROM passages")] == ["recent-1"]
        logged = await conn.fetch("SELECT dropped_partitions FROM purge_log")
        assert any(old_partition in r["dropped_partitions"] for r in logged)
    finally:
        await conn.close()


async def test_a_partition_behind_holds_alerts_no_longer_than_the_bound(namespace: Namespace, tmp_path: Any) -> None:
    """A camera whose clock runs an hour behind, alone on its partition and reading all the time: the watermark
    stays an hour back, so an alert on another partition waits, but only ANPR_ALERT_HOLD_MAX_SECONDS; the worker
    names the partition that held it."""
    ns = namespace
    load_watchlist(ns, tmp_path, ["SV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false"])
    worker = ns.start_worker(extra_env={"ANPR_ALERT_HOLD_MAX_SECONDS": "3"})
    producer = AIOKafkaProducer(bootstrap_servers=ns.infra.kafka_bootstrap, acks="all")
    await producer.start()
    stop = asyncio.Event()

    async def slow_clock() -> None:
        n = 0
        while not stop.is_set():
            at = datetime.now(UTC) - timedelta(hours=1)
            value = reading(f"behind-{n}", f"1-SLW-{n % 1000:03d}", at, camera="LM-EISDEN")
            await producer.send_and_wait(ns.reads, value, key=b"LM-EISDEN", partition=1)
            n += 1
            await asyncio.sleep(0.2)

    behind = asyncio.create_task(slow_clock())
    try:
        assert await ns.wait_for_rows("SELECT count(*) FROM passages", 3, timeout=60) >= 3  # partition 1 flows
        await asyncio.sleep(1)
        await producer.send_and_wait(ns.reads, reading("stolen", "1-HGT-904", datetime.now(UTC)), partition=0)
        [hit] = await ns.hits_payloads(1, timeout=30)
    finally:
        stop.set()
        await behind
        await producer.stop()
    assert (hit["read_id"], hit["suppressed"]) == ("stolen", False)
    # Held until the bound (the watermark never reached it), not decided at once:
    assert hit["latency_ms"]["since_kafka"] >= 2500
    assert worker.poll() is None
    log = (ARTIFACTS / f"worker-{ns.tag}-1.log").read_text(errors="replace")
    assert f"Partition 1 of {ns.reads} holds the watermark" in log
