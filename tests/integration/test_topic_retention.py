"""Retention in Kafka on the real broker: topics created with the policy's retention, an existing topic that keeps
too much lowered (its other configs kept), `retention check` naming topics and tables that hold data past the
horizon (exit codes, as the service login too), `retention expire-watchlist` retracting expired entries only, and
the DPO report's retention section."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from anpr_stream.config import Settings
from anpr_stream.core.entry import WatchlistEntry, entry_from_mapping, entry_to_mapping
from anpr_stream.retention.topic_rules import DAY_MS, HOUR_MS, WATCHLIST_CONFIGS
from anpr_stream.stream.compacted import open_from_beginning, records_to_end
from anpr_stream.stream.topic_configs import describe_topic_configs, set_topic_configs
from anpr_stream.stream.topics import ensure_topics
from anpr_stream.stream.watchlist_expiry import ROLL_MARKER
from tests.integration.conftest import ROOT, Namespace

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
CHECKED = ("cleanup.policy", "retention.ms", "segment.ms", "retention.bytes", "max.message.bytes")


@pytest.fixture
async def admin(namespace: Namespace) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=namespace.infra.kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        topics = [namespace.reads, namespace.hits, namespace.dlq, namespace.watchlist]
        present = [t for t in topics if t in set(await client.list_topics())]
        if present:
            await client.delete_topics(present)
        await client.close()


async def configs_of(admin: AIOKafkaAdminClient, topic: str, until: dict[str, str] | None = None) -> dict[str, str]:
    """The topic's configs; with `until`, waits (configs reach every broker shortly after a change) until they match."""
    for _ in range(50):
        got = {k: v or "" for k, v in (await describe_topic_configs(admin, [topic]))[topic].items()}
        if until is None or all(got.get(k) == v for k, v in until.items()):
            return got
        await asyncio.sleep(0.2)
    return got


def cli(namespace: Namespace, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """`anpr-stream ARGS` in the namespace's environment, or in `env`."""
    return subprocess.run([sys.executable, "-m", "anpr_stream.cli", *args], env=env or namespace.env, cwd=ROOT,
                          capture_output=True, timeout=120, check=False)  # fmt: skip


def dead_broker() -> str:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


async def set_configs(admin: AIOKafkaAdminClient, topic: str, configs: dict[str, str]) -> None:
    await set_topic_configs(admin, {topic: configs})
    await configs_of(admin, topic, until=configs)


def settings(namespace: Namespace, **env: str) -> Settings:
    return Settings.from_env({**namespace.env, **env})


async def produce_at(namespace: Namespace, topic: str, at: datetime, key: bytes = b"cam") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=namespace.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await (await producer.send(topic, b'{"plate": "1ABC123"}', key=key, timestamp_ms=int(at.timestamp() * 1000)))
    finally:
        await producer.stop()


@pytest.mark.parametrize(("policy", "horizon_days"), [("be", 365), ("nl", 28)])
async def test_topics_are_created_with_the_policys_retention(
    namespace: Namespace, admin: AIOKafkaAdminClient, policy: str, horizon_days: int
) -> None:
    assert await ensure_topics(settings(namespace, ANPR_RETENTION=policy)) == {}
    reads = await configs_of(admin, namespace.reads)
    # Reads: 7 days (PostgreSQL is the store of record): 6 days of retention.ms + 1-day segments.
    assert (reads["cleanup.policy"], reads["retention.ms"], reads["segment.ms"], reads["retention.bytes"]) == (
        "delete", str(6 * DAY_MS), str(DAY_MS), "-1")  # fmt: skip
    for topic in (namespace.hits, namespace.dlq):
        got = await configs_of(admin, topic)
        assert int(got["retention.ms"]) + int(got["segment.ms"]) == horizon_days * DAY_MS, topic
        assert got["cleanup.policy"] == "delete" and int(got["segment.ms"]) <= DAY_MS
    watchlist = await configs_of(admin, namespace.watchlist)
    assert {k: watchlist[k] for k in WATCHLIST_CONFIGS} == WATCHLIST_CONFIGS
    # Configured shorter, within the policy.
    hits = f"{namespace.hits}.short"
    short = settings(namespace, ANPR_RETENTION=policy, ANPR_TOPIC_HITS=hits, ANPR_TOPIC_HITS_RETENTION_DAYS="14")
    try:
        await ensure_topics(short)
        got = await configs_of(admin, hits)
        assert int(got["retention.ms"]) + int(got["segment.ms"]) == 14 * DAY_MS
    finally:
        await admin.delete_topics([hits])


async def test_an_existing_topic_keeping_too_much_is_lowered_and_nothing_is_raised(
    namespace: Namespace, admin: AIOKafkaAdminClient
) -> None:
    await admin.create_topics([
        # Unbounded, with an operator's own override that the change must keep (legacy AlterConfigs would drop it).
        NewTopic(namespace.hits, 1, 1, topic_configs={"retention.ms": "-1", "max.message.bytes": "2000000"}),
        # Shorter than the service would set: left alone.
        NewTopic(namespace.reads, 1, 1, topic_configs={"retention.ms": str(HOUR_MS), "segment.ms": str(HOUR_MS)}),
        # A compacted topic with Kafka's defaults: compaction could leave retracted values for ever.
        NewTopic(namespace.watchlist, 1, 1, topic_configs={"cleanup.policy": "compact"}),
    ])  # fmt: skip
    await configs_of(admin, namespace.hits, until={"retention.ms": "-1"})
    lowered = await ensure_topics(settings(namespace))
    assert lowered[namespace.hits] == {"retention.ms": str(364 * DAY_MS), "segment.ms": str(DAY_MS)}
    assert namespace.reads not in lowered and namespace.dlq not in lowered  # dlq: created now, with the rule
    assert lowered[namespace.watchlist]["max.compaction.lag.ms"] == str(DAY_MS)
    hits = await configs_of(admin, namespace.hits, until=lowered[namespace.hits])
    assert (hits["retention.ms"], hits["segment.ms"], hits["max.message.bytes"]) == (
        str(364 * DAY_MS), str(DAY_MS), "2000000")  # fmt: skip
    reads = await configs_of(admin, namespace.reads)
    assert (reads["retention.ms"], reads["segment.ms"]) == (str(HOUR_MS), str(HOUR_MS))
    watchlist = await configs_of(admin, namespace.watchlist, until=lowered[namespace.watchlist])
    assert {k: watchlist[k] for k in WATCHLIST_CONFIGS} == WATCHLIST_CONFIGS
    assert await ensure_topics(settings(namespace)) == {}  # a second run finds nothing to lower


async def plant_old_passage(namespace: Namespace, age_days: int) -> None:
    at = NOW - timedelta(days=age_days)
    conn = await namespace.db()
    try:
        await conn.execute("SELECT ensure_passage_partition($1)", at.date())
        await conn.execute(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, confidence,
                   camera_known) VALUES ($1, 'LM-EISDEN', $2, '1ABC123', '1ABC123', '1ABC123', 0.9, true)""",
            f"old-{age_days}", at,
        )  # fmt: skip
    finally:
        await conn.close()


async def test_retention_check_names_what_is_held_past_its_horizon(
    namespace: Namespace, admin: AIOKafkaAdminClient
) -> None:
    await ensure_topics(settings(namespace))
    await produce_at(namespace, namespace.reads, NOW - timedelta(minutes=5))
    await plant_old_passage(namespace, 2)
    clean = namespace.cli("retention", "check")
    out = clean.stdout.decode()
    assert clean.returncode == 0, out + clean.stderr.decode()
    assert f"ok           topic {namespace.reads}: cleanup.policy delete, retention.ms 6 d, segment.ms 1 d" in out
    assert "ok           table passages: oldest" in out and out.rstrip().endswith("nothing held past its horizon")

    # A dead-letter topic someone set to keep everything, holding a record stamped 400 days ago (CreateTime set by
    # the producer), and a passage 400 days old in PostgreSQL.
    await set_configs(admin, namespace.dlq, {"retention.ms": "-1"})
    await produce_at(namespace, namespace.dlq, NOW - timedelta(days=400))
    await plant_old_passage(namespace, 400)
    bad = namespace.cli("retention", "check")
    lines = bad.stdout.decode().splitlines()
    assert bad.returncode == 1, bad.stdout.decode() + bad.stderr.decode()
    violations = [line for line in lines if line.startswith("VIOLATION")]
    assert f"VIOLATION    topic {namespace.dlq}: retention.ms=-1 keeps records for ever (policy be keeps passages " \
           "365 days)" in violations  # fmt: skip
    assert any(v.startswith(f"VIOLATION    topic {namespace.dlq}[0]: oldest record ") and "is 400 days old" in v
               for v in violations)  # fmt: skip
    assert any(v.startswith("VIOLATION    table passages: oldest ") and "is 400 days old" in v for v in violations)
    assert len(violations) == 3 and lines[-1] == "result: 3 violation(s)"
    as_json = json.loads(namespace.cli("retention", "check", "--json").stdout)
    assert len(as_json["violations"]) == 3
    dlq = next(t for t in as_json["topics"] if t["topic"] == namespace.dlq)
    assert dlq["retention_ms"] == -1 and dlq["oldest_age_days"] == 400

    # The worker's ensure_topics lowers the topic; the old record goes at the broker's next retention check.
    await ensure_topics(settings(namespace))
    await configs_of(admin, namespace.dlq, until={"retention.ms": str(364 * DAY_MS)})
    after = namespace.cli("retention", "check").stdout.decode()
    assert "keeps records for ever" not in after


async def test_retention_check_runs_as_the_service_login_and_says_what_it_could_not_check(
    namespace: Namespace, admin: AIOKafkaAdminClient
) -> None:
    await ensure_topics(settings(namespace))
    name = f"anpr_t_{namespace.tag}"
    made = namespace.cli("db", "create-service-login", name)
    assert made.returncode == 0, made.stderr.decode()
    try:
        service = {**namespace.env, "ANPR_DATABASE_URL": made.stdout.decode().strip()}
        run = cli(namespace, "retention", "check", env=service)
        assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
        assert "ok           table audit_log" in run.stdout.decode()
        dead = dead_broker()
        offline = cli(namespace, "retention", "check", env={**service, "ANPR_KAFKA_BOOTSTRAP": dead})
        out = offline.stdout.decode()
        assert offline.returncode == 2, out + offline.stderr.decode()
        assert f"NOT CHECKED  topics: Kafka {dead} not reachable or refused" in out
        assert "ok           table passages" in out and out.rstrip().endswith("incomplete: see NOT CHECKED")
        unset = cli(namespace, "retention", "check", env={k: v for k, v in service.items() if k != "ANPR_DATABASE_URL"})
        assert unset.returncode == 2 and b"ANPR_DATABASE_URL is not set" in unset.stderr
    finally:
        conn = await namespace.db()
        try:
            await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
        finally:
            await conn.close()


def entry(entry_id: str, valid_until: datetime | None, covert: bool = False) -> WatchlistEntry:
    return entry_from_mapping({
        "entry_id": entry_id, "list": "stolen_vehicle", "plate": f"1-ABC-{len(entry_id):03d}", "country": "BE",
        "priority": "1", "action": "intercept", "valid_from": "", "reference": "PV 1",
        "valid_until": valid_until.isoformat() if valid_until else "", "covert": "true" if covert else "false",
    })  # fmt: skip


async def latest_per_key(namespace: Namespace) -> tuple[dict[str, bytes | None], int]:
    """The latest value per key on the watchlist topic, and how many records it holds."""
    consumer = await open_from_beginning(namespace.infra.kafka_bootstrap, namespace.watchlist)
    try:
        records = [r async for r in records_to_end(consumer)]
    finally:
        await consumer.stop()
    return {r.key.decode(): r.value for r in records if r.key is not None}, len(records)


async def test_expire_watchlist_tombstones_expired_entries_only(
    namespace: Namespace, admin: AIOKafkaAdminClient
) -> None:
    await ensure_topics(settings(namespace))
    entries = [
        entry("SV-ENDED-3D", NOW - timedelta(days=3)),
        entry("SV-ENDED-1H", NOW - timedelta(hours=1)),  # within the 24 h grace: late reads may still hit it
        entry("SV-OPEN", None),
        entry("SV-FUTURE", NOW + timedelta(days=30)),
        entry("CV-ENDED-10D", NOW - timedelta(days=10), covert=True),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=namespace.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for e in entries:
            await producer.send(namespace.watchlist, orjson.dumps(entry_to_mapping(e)), key=e.entry_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    _, before = await latest_per_key(namespace)
    assert before == 5

    check = namespace.cli("retention", "check")
    assert check.returncode == 1 and f"topic {namespace.watchlist}: 2 live entries whose validity ended" in (
        check.stdout.decode())  # fmt: skip

    dry = namespace.cli("retention", "expire-watchlist", "--dry-run")
    assert dry.returncode == 0, dry.stderr.decode()
    assert "would retract 2 whose validity ended" in dry.stdout.decode()
    assert (await latest_per_key(namespace))[1] == 5  # nothing published

    run = namespace.cli("retention", "expire-watchlist")
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    assert "5 live entries, retracted 2 whose validity ended" in out
    assert "CV-ENDED-10D  covert  valid until" in out and "SV-ENDED-3D  stolen_vehicle  valid until" in out
    assert "1-ABC" not in out and "1ABC" not in out  # no plates in the output
    latest, count = await latest_per_key(namespace)
    assert count == 5 + 2 + 1  # two tombstones and the segment-roll marker
    assert latest["SV-ENDED-3D"] is None and latest["CV-ENDED-10D"] is None and latest[ROLL_MARKER.decode()] is None
    assert all(latest[k] is not None for k in ("SV-ENDED-1H", "SV-OPEN", "SV-FUTURE"))

    again = namespace.cli("retention", "expire-watchlist")
    assert "3 live entries, retracted 0" in again.stdout.decode()
    assert namespace.cli("retention", "check").returncode == 0
    # Two days on, the entry within the grace has expired too.
    later = (NOW + timedelta(days=2)).isoformat()
    assert "retracted 1 " in namespace.cli("retention", "expire-watchlist", "--now", later).stdout.decode()


async def test_dpo_report_has_the_retention_section(namespace: Namespace, admin: AIOKafkaAdminClient) -> None:
    await ensure_topics(settings(namespace))
    await set_configs(admin, namespace.hits, {"retention.ms": "-1"})
    done = namespace.cli("dpo", "report")
    assert done.returncode == 1, done.stderr.decode()
    report = json.loads(done.stdout)
    section = report["retention_check"]
    assert section["kafka_error"] is None and {t["topic"] for t in section["topics"]} >= {namespace.hits}
    assert [t["table"] for t in section["tables"]] == ["passages", "hits", "hit_outcomes", "audit_log"]
    assert report["violations"] == [f"topic {namespace.hits}: retention.ms=-1 keeps records for ever (policy be "
                                    "keeps hits 365 days)"]  # fmt: skip
    # The broker unreachable: the report is written, its section says so.
    dead = dead_broker()
    offline = cli(namespace, "dpo", "report", env={**namespace.env, "ANPR_KAFKA_BOOTSTRAP": dead})
    assert offline.returncode == 0, offline.stderr.decode()
    section = json.loads(offline.stdout)["retention_check"]
    assert section["topics"] == [] and f"Kafka {dead} not reachable" in section["kafka_error"]
