"""`anpr-stream retention check` and the DPO report's retention section: gather what every topic and table holds
(configs, the first record of each partition, the oldest row) and let `anpr_stream.retention.assessment` decide.
Reads only: SELECT on the tables (the service login suffices), DescribeConfigs and Fetch on the topics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from anpr_stream.config import ConfigError, Settings
from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.retention.assessment import (
    TABLES,
    RetentionCheck,
    TopicObservation,
    assess_table,
    assess_topic,
    with_violations,
)
from anpr_stream.retention.policy import RetentionPolicy
from anpr_stream.retention.topic_rules import TopicRole, TopicRule
from anpr_stream.stream.compacted import open_from_beginning, records_to_end
from anpr_stream.stream.security import PLAINTEXT, KafkaSecurity
from anpr_stream.stream.topic_configs import describe_topic_configs
from anpr_stream.stream.topics import rules_for
from anpr_stream.stream.watchlist_feed import decode_entry
from anpr_stream.watchlists.expiry import expired

KAFKA_TIMEOUT_S = 30.0  # the whole topic side; past it the check says "not checked" instead of hanging a report
_FIRST_RECORD_WAIT_S = 10.0


async def oldest_rows(conn: asyncpg.Connection) -> dict[str, datetime | None]:
    """The oldest row of each table that holds camera data or the audit log (min() over indexed columns)."""
    out = {}
    for table, (_, column) in TABLES.items():
        out[table] = await conn.fetchval(f"SELECT min({column}) FROM {table}")  # noqa: S608 -- constant names
    return out


async def observe_topics(settings: Settings, rules: list[TopicRule], now: datetime) -> dict[str, TopicObservation]:
    security = settings.kafka_security
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **security.aiokafka_options(),
        client_id="anpr-stream-retention-check",
    )  # fmt: skip
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        present = [r.name for r in rules if r.name in existing]
        configs = await describe_topic_configs(admin, present)
        partitions = {t["topic"]: sorted(p["partition"] for p in t["partitions"])
                      for t in await admin.describe_topics(present)}  # fmt: skip
    finally:
        await admin.close()
    oldest = await first_record_times(settings.kafka_bootstrap, partitions, security)
    out: dict[str, TopicObservation] = {}
    for rule in rules:
        if rule.name not in existing:
            out[rule.name] = TopicObservation(exists=False)
            continue
        expired_live = None
        if rule.role is TopicRole.WATCHLIST:
            expired_live = len(expired(await live_entries(settings.kafka_bootstrap, rule.name, security), now,
                                       settings.watchlist_expiry_grace))  # fmt: skip
        out[rule.name] = TopicObservation(True, configs.get(rule.name, {}), oldest.get(rule.name, {}), expired_live)
    return out


async def first_record_times(
    bootstrap: str, partitions: dict[str, list[int]], security: KafkaSecurity = PLAINTEXT
) -> dict[str, dict[int, datetime | None]]:
    """The timestamp of the first record at each partition's log start offset (None: empty). read_uncommitted:
    records of aborted transactions are held on disk as well. The first record is the oldest *in the log*; a
    producer may stamp a later record with an older time (Kafka deletes a segment by its newest timestamp)."""
    tps = [TopicPartition(topic, p) for topic, ps in partitions.items() for p in ps]
    out: dict[str, dict[int, datetime | None]] = {topic: dict.fromkeys(ps) for topic, ps in partitions.items()}
    if not tps:
        return out
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        **security.aiokafka_options(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_uncommitted",
        client_id="anpr-stream-retention-check",
    )
    await consumer.start()
    try:
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        waiting = {tp for tp in tps if begin[tp] < end[tp]}
        if not waiting:
            return out
        consumer.assign(sorted(waiting))
        for tp in waiting:
            consumer.seek(tp, begin[tp])
        deadline = asyncio.get_running_loop().time() + _FIRST_RECORD_WAIT_S
        while waiting and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(*waiting, timeout_ms=500, max_records=len(waiting) * 10)
            for tp, records in batch.items():
                if records and tp in waiting:
                    out[tp.topic][tp.partition] = datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
                    waiting.discard(tp)
            # A partition holding only transaction markers has no record to show.
            waiting = {tp for tp in waiting if await consumer.position(tp) < end[tp]}
        return out
    finally:
        await consumer.stop()


async def live_entries(bootstrap: str, topic: str, security: KafkaSecurity = PLAINTEXT) -> list[WatchlistEntry]:
    consumer = await open_from_beginning(bootstrap, topic, security=security)
    try:
        live: dict[str, WatchlistEntry] = {}
        async for record in records_to_end(consumer):
            decoded = decode_entry(record.key, record.value)
            if isinstance(decoded, WatchlistEntry):
                live[decoded.entry_id] = decoded
            elif decoded is None and record.key is not None:
                live.pop(record.key.decode(errors="replace"), None)
        return list(live.values())
    finally:
        await consumer.stop()


def kafka_settings() -> Settings | str:
    """The service's settings from the environment for the topic side of a check, or why there are none."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        return f"no Kafka settings: {exc}"


async def retention_check(
    conn: asyncpg.Connection | None, policy: RetentionPolicy, now: datetime, kafka: Settings | str | None
) -> RetentionCheck:
    """Every topic (when `kafka` is settings; a string says why there are none) and table (when `conn` is given)
    against the policy. A broker that cannot be reached leaves `kafka_error` set instead of failing."""
    check = RetentionCheck(as_of=now, policy=policy.name)
    if not isinstance(kafka, Settings):
        check.kafka_error = f"{kafka or 'no Kafka settings'}: topics not checked"
    else:
        rules = rules_for(kafka)
        try:
            seen = await asyncio.wait_for(observe_topics(kafka, rules, now), KAFKA_TIMEOUT_S)
        except Exception as exc:  # unreachable broker, no right to describe: the rest of the check still counts
            check.kafka_error = f"Kafka {kafka.kafka_bootstrap} not reachable or refused: {_reason(exc)}"
        else:
            check.topics = [assess_topic(r, seen[r.name], policy, now) for r in rules]
    if conn is not None:
        try:
            oldest = await oldest_rows(conn)
        except (asyncpg.PostgresError, OSError) as exc:
            check.database_error = _reason(exc)
        else:
            check.tables = [assess_table(table, at, policy, now) for table, at in oldest.items()]
    return with_violations(check)


def _reason(exc: BaseException) -> str:
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}" if text else name
