"""What `anpr-stream retention check` decides: which topic or table holds data past its horizon, or is configured so
that it will (pure: what was observed and `now` are passed in; gathering them is `anpr_stream.retention.check`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from anpr_stream.retention.policy import DataClass, RetentionPolicy
from anpr_stream.retention.topic_rules import BOUNDING_CLASS, DAY_MS, HOUR_MS, TopicRole, TopicRule, config_number

# Data past its horizon by less than this is "due" (whole day partitions and segments, scheduled purges, the
# broker's retention check), not yet a violation: the same grace as the DPO report's.
GRACE = timedelta(days=1)
_DAY = timedelta(days=1)

# Watchlist configs whose excess leaves a retracted entry's value (or its tombstone) on disk without bound; the
# others (segment.ms, min.cleanable.dirty.ratio) only delay compaction that max.compaction.lag.ms already forces.
_WATCHLIST_BOUNDING = ("max.compaction.lag.ms", "min.compaction.lag.ms", "delete.retention.ms")


@dataclass(frozen=True)
class TopicObservation:
    """What the broker said about one topic."""

    exists: bool
    configs: Mapping[str, str | None] = field(default_factory=dict)
    oldest: Mapping[int, datetime | None] = field(default_factory=dict)  # partition -> first record's timestamp
    expired_live: int | None = None  # watchlist: live entries whose validity ended more than the grace ago
    error: str | None = None  # the topic could not be read


class PartitionOldest(BaseModel):
    partition: int
    oldest: datetime | None = Field(description="timestamp of the partition's first record (None: empty)")


class TopicHolding(BaseModel):
    topic: str
    role: str
    exists: bool
    cleanup_policy: str | None = None
    retention_ms: int | None = Field(default=None, description="-1: unbounded")
    segment_ms: int | None = None
    horizon_days: int | None = Field(default=None, description="the policy's horizon for what the topic carries")
    bound_days: float | None = Field(default=None, description="the longest the topic is configured to keep a record")
    oldest: datetime | None = None
    oldest_age_days: int | None = None
    partitions: list[PartitionOldest] = Field(default_factory=list)
    expired_entries: int | None = Field(default=None, description="watchlist: live entries past their validity")
    violations: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="the topic could not be checked")


class TableHolding(BaseModel):
    table: str
    data_class: DataClass
    oldest: datetime | None
    oldest_age_days: int | None
    horizon_days: int
    horizon: datetime = Field(description="rows dated before this are past retention")
    past_horizon: bool
    violation: str | None = Field(description="set when the oldest row is past the horizon by more than a day")


class RetentionCheck(BaseModel):
    as_of: datetime
    policy: str
    topics: list[TopicHolding] = Field(default_factory=list)
    tables: list[TableHolding] = Field(default_factory=list)
    kafka_error: str | None = Field(default=None, description="set when the topics could not be checked")
    database_error: str | None = Field(default=None, description="set when the tables could not be checked")
    violations: list[str] = Field(default_factory=list)

    @property
    def topic_violations(self) -> list[str]:
        return [v for t in self.topics for v in t.violations]

    @property
    def complete(self) -> bool:
        return self.kafka_error is None and self.database_error is None and all(t.error is None for t in self.topics)

    @property
    def exit_code(self) -> int:
        """1 when anything violates, else 2 when something could not be checked, else 0."""
        return 1 if self.violations else 0 if self.complete else 2


def duration(ms: int | float) -> str:
    if ms == float("inf") or ms < 0:
        return "unbounded"
    if ms % DAY_MS == 0:
        return f"{int(ms // DAY_MS)} d"
    if ms % HOUR_MS == 0:
        return f"{int(ms // HOUR_MS)} h"
    return f"{int(ms)} ms"


def _int_config(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def assess_topic(
    rule: TopicRule, seen: TopicObservation, policy: RetentionPolicy, now: datetime, grace: timedelta = GRACE
) -> TopicHolding:
    """One topic against its rule. A deleting topic violates when it keeps records for ever (no `delete` cleanup
    policy, retention.ms -1), when retention.ms plus one segment's span exceeds the legal horizon (Kafka deletes
    whole closed segments only), or when its oldest record is past the horizon; the watchlist when its compaction
    does not bound how long a retracted value stays, or when it still holds entries whose validity ended."""
    holding = TopicHolding(topic=rule.name, role=rule.role.value, exists=seen.exists, error=seen.error)
    if seen.error is not None or not seen.exists:
        return holding
    cfg = seen.configs
    holding.cleanup_policy = cfg.get("cleanup.policy")
    holding.retention_ms = _int_config(cfg.get("retention.ms"))
    holding.segment_ms = _int_config(cfg.get("segment.ms"))
    holding.partitions = [PartitionOldest(partition=p, oldest=t) for p, t in sorted(seen.oldest.items())]
    stamps = [t for t in seen.oldest.values() if t is not None]
    if stamps:
        holding.oldest = min(stamps)
        holding.oldest_age_days = (now - holding.oldest) // _DAY
    policies = {p.strip() for p in (holding.cleanup_policy or "").split(",")}
    if rule.role is TopicRole.WATCHLIST:
        _assess_watchlist(rule, seen, holding, policies)
        return holding
    assert rule.legal_bound is not None and rule.bound is not None
    data_class = BOUNDING_CLASS[rule.role]
    legal = rule.legal_bound
    holding.horizon_days = legal.days
    holding.bound_days = rule.bound.total_seconds() / 86400
    keeps = f"policy {policy.name} keeps {data_class} {legal.days} days"
    retention = config_number(cfg.get("retention.ms"))
    segment = config_number(cfg.get("segment.ms"))
    legal_ms = legal.total_seconds() * 1000
    if "delete" not in policies:
        holding.violations.append(f"topic {rule.name}: cleanup.policy={holding.cleanup_policy} never deletes by age "
                                  f"({keeps})")  # fmt: skip
    elif retention == float("inf"):
        holding.violations.append(f"topic {rule.name}: retention.ms={cfg.get('retention.ms')} keeps records for ever "
                                  f"({keeps})")  # fmt: skip
    elif retention + segment > legal_ms + grace.total_seconds() * 1000:
        holding.violations.append(
            f"topic {rule.name}: retention.ms {duration(retention)} + segment.ms {duration(segment)} lets a record "
            f"live {duration(retention + segment)} ({keeps})"
        )
    elif retention > config_number(rule.ceilings["retention.ms"]):
        holding.notes.append(f"retention.ms {duration(retention)} is longer than the configured "
                             f"{duration(config_number(rule.configs['retention.ms']))}: the worker lowers it at its "
                             "next start")  # fmt: skip
    for partition in holding.partitions:
        if partition.oldest is None:
            continue
        age = now - partition.oldest
        if age > legal + grace:
            holding.violations.append(
                f"topic {rule.name}[{partition.partition}]: oldest record {partition.oldest.isoformat()} is "
                f"{age // _DAY} days old ({keeps})"
            )
        elif age > legal:
            holding.notes.append(f"partition {partition.partition}: oldest record past the horizon, deletion due")
    return holding


def _assess_watchlist(rule: TopicRule, seen: TopicObservation, holding: TopicHolding, policies: set[str]) -> None:
    cfg = seen.configs
    if "compact" not in policies:
        holding.violations.append(f"topic {rule.name}: cleanup.policy={holding.cleanup_policy}: a tombstone does not "
                                  "remove a retracted entry's value")  # fmt: skip
    for name, ceiling in rule.ceilings.items():
        if config_number(cfg.get(name)) <= config_number(ceiling):
            continue
        text = f"{name}={cfg.get(name)} (want at most {ceiling})"
        if name in _WATCHLIST_BOUNDING:
            holding.violations.append(f"topic {rule.name}: {text}: retracted entries may stay on disk without bound")
        else:
            holding.notes.append(f"{text}: compaction comes later than it could")
    holding.expired_entries = seen.expired_live
    if seen.expired_live:
        holding.violations.append(
            f"topic {rule.name}: {seen.expired_live} live entr{'y' if seen.expired_live == 1 else 'ies'} whose "
            "validity ended (longer ago than ANPR_WATCHLIST_EXPIRY_GRACE_HOURS): run `anpr-stream retention "
            "expire-watchlist`"
        )


# Table -> its data class and the column dating its rows (constant names, never from input).
TABLES: dict[str, tuple[DataClass, str]] = {
    "passages": (DataClass.PASSAGES, "observed_at"),
    "hits": (DataClass.HITS, "observed_at"),
    "hit_outcomes": (DataClass.OUTCOMES, "recorded_at"),
    "audit_log": (DataClass.AUDIT, "at"),
}


def assess_table(
    table: str, oldest: datetime | None, policy: RetentionPolicy, now: datetime, grace: timedelta = GRACE
) -> TableHolding:
    data_class = TABLES[table][0]
    keep = policy.horizon_for(data_class)
    horizon = now - keep
    age = (now - oldest) // _DAY if oldest is not None else None
    violation = None
    if oldest is not None and oldest < horizon - grace:
        violation = (f"table {table}: oldest {oldest.isoformat()} is {age} days old, policy {policy.name} keeps "
                     f"{data_class} {keep.days} days")  # fmt: skip
    return TableHolding(
        table=table, data_class=data_class, oldest=oldest, oldest_age_days=age, horizon_days=keep.days,
        horizon=horizon, past_horizon=oldest is not None and oldest < horizon, violation=violation,
    )  # fmt: skip


def with_violations(check: RetentionCheck) -> RetentionCheck:
    """The check with its `violations` gathered from its topics and tables."""
    found = [v for t in check.topics for v in t.violations] + [t.violation for t in check.tables if t.violation]
    return check.model_copy(update={"violations": found})


def check_lines(check: RetentionCheck) -> list[str]:
    """One line per topic and table: `ok`, `VIOLATION` (one line each) or `NOT CHECKED`, then `note` lines."""
    out = [f"retention check: policy {check.policy}, as of {check.as_of.isoformat()}"]
    if check.kafka_error:
        out.append(f"NOT CHECKED  topics: {check.kafka_error}")
    for t in check.topics:
        if t.error:
            out.append(f"NOT CHECKED  topic {t.topic}: {t.error}")
            continue
        out += [f"VIOLATION    {v}" for v in t.violations]
        if not t.violations:
            out.append(f"ok           topic {t.topic}: {_topic_summary(t)}")
        out += [f"note         topic {t.topic}: {n}" for n in t.notes]
    if check.database_error:
        out.append(f"NOT CHECKED  tables: {check.database_error}")
    for table in check.tables:
        if table.violation:
            out.append(f"VIOLATION    {table.violation}")
            continue
        oldest = f"oldest {table.oldest.isoformat()} ({table.oldest_age_days} days)" if table.oldest else "empty"
        out.append(f"ok           table {table.table}: {oldest}, policy keeps {table.horizon_days} days")
        if table.past_horizon:
            out.append(f"note         table {table.table}: rows past the horizon by less than a day: purge due")
    verdict = (f"{len(check.violations)} violation(s)" if check.violations
               else "nothing held past its horizon" if check.complete else "incomplete: see NOT CHECKED")  # fmt: skip
    out.append(f"result: {verdict}")
    return out


def _topic_summary(t: TopicHolding) -> str:
    if not t.exists:
        return "absent (holds nothing)"
    parts = [f"cleanup.policy {t.cleanup_policy}"]
    if t.role != TopicRole.WATCHLIST:
        parts.append(f"retention.ms {duration(t.retention_ms if t.retention_ms is not None else -1)}")
    parts.append(f"segment.ms {duration(t.segment_ms if t.segment_ms is not None else -1)}")
    parts.append(f"oldest record {t.oldest.isoformat()} ({t.oldest_age_days} days)" if t.oldest else "no records")
    if t.horizon_days is not None:
        parts.append(f"configured to keep {t.bound_days:g} days, policy at most {t.horizon_days}")
    if t.expired_entries is not None:
        parts.append(f"{t.expired_entries} expired live entries")
    return ", ".join(parts)
