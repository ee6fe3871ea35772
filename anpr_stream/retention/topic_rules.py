"""What each Kafka topic of the service must be configured with under the retention policy, and which configs of an
existing topic must be lowered to get there (pure: the Kafka calls are in `anpr_stream.stream.topics`).

How Kafka deletes, and why the numbers below are what they are:

- A partition's log is a chain of segment files. Time-based retention deletes a *whole closed segment* once its
  newest record's timestamp is older than `retention.ms` (checked every `log.retention.check.interval.ms`, 5 min by
  default); it never deletes single records. A segment is closed ("rolled") when a record is appended more than
  `segment.ms` after the segment's first record (or it reaches `segment.bytes`). So a record can live up to
  `retention.ms + segment.ms` (plus the check interval): with Kafka's default `segment.ms` of 7 days a 12-month
  `retention.ms` keeps some plates a week too long. We set `segment.ms` to at most a day and `retention.ms` to the
  bound minus `segment.ms`, so no record outlives its bound by more than the broker's check interval.
- `retention.bytes` (per partition) stays unbounded (-1) unless ANPR_TOPIC_RETENTION_BYTES sets it: a size bound
  deletes data *earlier* than the policy (lawful, but reads the worker has not consumed yet may be lost).
- Record timestamps are the producer's CreateTime: the time a read, hit or dead letter was published, not when the
  camera saw the plate. The worker refuses reads already past the passages horizon, so the two differ by how late a
  read arrived (minutes for a camera's spool, never more than the horizon).
- The service only ever lowers a topic's retention: raising one (a longer ANPR_TOPIC_*_RETENTION_DAYS after a
  shorter one was applied, or a topic an operator shortened by hand) is a deliberate act with kafka-configs.sh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from anpr_stream.retention.policy import DataClass, RetentionPolicy

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
UNBOUNDED = -1  # retention.ms / retention.bytes: keep for ever
DEFAULT_READS_DAYS = 7  # PostgreSQL is the store of record; the topic only carries reads to the worker

# The watchlist topic (compacted: key = entry id, value = entry JSON, null value = tombstone). Each setting is what
# makes a retracted entry's value, and then its tombstone, really leave the disk:
WATCHLIST_CONFIGS: dict[str, str] = {
    # Keep the latest value per key instead of deleting by age: an entry valid for years must stay on the topic.
    "cleanup.policy": "compact",
    # A superseded or tombstoned value may be compacted away at once; no minimum wait.
    "min.compaction.lag.ms": "0",
    # ... and must be within a day: the cleaner takes the log when its oldest dirty record is this old, whatever
    # the dirty ratio. For compacted topics it also caps the active segment's roll time (see segment.ms).
    "max.compaction.lag.ms": str(DAY_MS),
    # Compaction never touches the active segment, and a segment rolls only when a record is appended this long
    # after its first: a tombstone in the active segment of a quiet list would never remove its value.
    # `retention expire-watchlist` appends a marker on every run for that reason (stream/watchlist_expiry.py).
    "segment.ms": str(HOUR_MS),
    # How long a tombstone itself stays after compaction reached it: long enough for a worker reading the topic to
    # see the delete (workers load the topic whole at start and follow it live), then it goes too.
    "delete.retention.ms": str(DAY_MS),
    # Clean when 1% of the log is dirty (default 50%: a long list with a few retractions would wait for the lag).
    "min.cleanable.dirty.ratio": "0.01",
}


class TopicRole(StrEnum):
    READS = "reads"
    HITS = "hits"
    DLQ = "dlq"
    WATCHLIST = "watchlist"


@dataclass(frozen=True)
class TopicRetention:
    """How long the reads, hits and dead-letter topics keep records (ANPR_TOPIC_*_RETENTION_DAYS, whole days; None:
    reads 7 days or the passages horizon if shorter, hits and dead letters as long as the policy allows) and their
    size bound per partition (ANPR_TOPIC_RETENTION_BYTES, -1: none)."""

    reads_days: int | None = None
    hits_days: int | None = None
    dlq_days: int | None = None
    retention_bytes: int = UNBOUNDED


# Whose horizon bounds each topic: reads and dead letters are passages (a dead letter is a camera's message, kept
# nowhere else), the hits topic carries hits.
BOUNDING_CLASS: dict[TopicRole, DataClass] = {
    TopicRole.READS: DataClass.PASSAGES,
    TopicRole.DLQ: DataClass.PASSAGES,
    TopicRole.HITS: DataClass.HITS,
}


def topic_bounds(policy: RetentionPolicy, retention: TopicRetention) -> dict[TopicRole, timedelta]:
    """The longest each deleting topic keeps a record; ValueError when a setting exceeds the policy's horizon."""
    out: dict[TopicRole, timedelta] = {}
    settings = {TopicRole.READS: retention.reads_days, TopicRole.HITS: retention.hits_days,
                TopicRole.DLQ: retention.dlq_days}  # fmt: skip
    for role, days in settings.items():
        legal = policy.horizon_for(BOUNDING_CLASS[role])
        variable = f"ANPR_TOPIC_{role.upper()}_RETENTION_DAYS"
        if days is None:
            out[role] = min(legal, timedelta(days=DEFAULT_READS_DAYS)) if role is TopicRole.READS else legal
        elif days < 1:
            raise ValueError(f"{variable} must be at least 1, got {days}")
        elif timedelta(days=days) > legal:
            raise ValueError(f"{variable}={days} exceeds the {BOUNDING_CLASS[role]} horizon of policy "
                             f"{policy.name!r} ({legal.days} days)")  # fmt: skip
        else:
            out[role] = timedelta(days=days)
    return out


def segment_ms_for(bound: timedelta) -> int:
    """A day, or a seventh of a shorter bound: a record outlives retention.ms by at most one segment's span."""
    return max(1, min(DAY_MS, int(bound.total_seconds() * 1000) // 7))


@dataclass(frozen=True)
class TopicRule:
    """What one topic must be: the configs it is created with, the ones an existing topic is lowered to when it
    holds more (`ceilings`), and the legal bound of a record's age on it (None: the compacted watchlist)."""

    role: TopicRole
    name: str
    configs: dict[str, str]
    ceilings: dict[str, str] = field(default_factory=dict)
    legal_bound: timedelta | None = None
    bound: timedelta | None = None  # the configured bound (within the legal one)


def topic_rules(names: Mapping[TopicRole, str], policy: RetentionPolicy, retention: TopicRetention) -> list[TopicRule]:
    bounds = topic_bounds(policy, retention)
    rules = []
    for role in (TopicRole.READS, TopicRole.HITS, TopicRole.DLQ):
        bound = bounds[role]
        segment_ms = segment_ms_for(bound)
        configs = {
            "cleanup.policy": "delete",
            "retention.ms": str(int(bound.total_seconds() * 1000) - segment_ms),
            "segment.ms": str(segment_ms),
            "retention.bytes": str(retention.retention_bytes),
        }
        ceilings = {k: configs[k] for k in ("retention.ms", "segment.ms")}
        if retention.retention_bytes != UNBOUNDED:
            ceilings["retention.bytes"] = configs["retention.bytes"]
        rules.append(TopicRule(role, names[role], configs, ceilings, policy.horizon_for(BOUNDING_CLASS[role]), bound))
    ceilings = {k: v for k, v in WATCHLIST_CONFIGS.items() if k != "cleanup.policy"}
    rules.append(TopicRule(TopicRole.WATCHLIST, names[TopicRole.WATCHLIST], dict(WATCHLIST_CONFIGS), ceilings))
    return rules


def config_number(value: str | None) -> float:
    """A numeric topic config as a number; -1 (and a missing value) as infinity, the way Kafka means it."""
    if value is None or value.strip() == "":
        return float("inf")
    number = float(value)
    return float("inf") if number < 0 else number


def lowering(rule: TopicRule, current: Mapping[str, str | None]) -> dict[str, str]:
    """The configs to set on an existing topic: every ceiling its current value exceeds (unbounded exceeds all),
    and `delete` for a deleting topic whose cleanup policy lacks it. Nothing is ever raised."""
    out = {
        name: ceiling
        for name, ceiling in rule.ceilings.items()
        if config_number(current.get(name)) > config_number(ceiling)
    }
    if rule.role is not TopicRole.WATCHLIST and "delete" not in _policies(current.get("cleanup.policy")):
        out["cleanup.policy"] = "delete"
    return out


def _policies(value: str | None) -> set[str]:
    return {p.strip() for p in (value or "").split(",") if p.strip()}
