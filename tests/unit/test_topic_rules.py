"""Topic retention from the policy: the bounds per topic, the configs a topic is created with, which configs of an
existing topic are lowered (never raised), and the settings that choose them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from anpr_stream.config import ConfigError, Settings
from anpr_stream.retention import preset
from anpr_stream.retention.policy import policy_from_env
from anpr_stream.retention.topic_rules import (
    DAY_MS,
    WATCHLIST_CONFIGS,
    TopicRetention,
    TopicRole,
    TopicRule,
    lowering,
    segment_ms_for,
    topic_bounds,
    topic_rules,
)

D = timedelta(days=1)
NAMES = {TopicRole.READS: "r", TopicRole.HITS: "h", TopicRole.DLQ: "d", TopicRole.WATCHLIST: "w"}
ENV = {"ANPR_KAFKA_BOOTSTRAP": "k:9092", "ANPR_DATABASE_URL": "postgresql://svc:pw@db/anpr"}


def rules(policy: str = "be", **retention: int) -> dict[TopicRole, TopicRule]:
    return {r.role: r for r in topic_rules(NAMES, preset(policy), TopicRetention(**retention))}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "retention", "expected"),
    [
        # Reads: 7 days by default (PostgreSQL is the store of record); hits and dead letters: the policy's horizon.
        ("be", {}, {TopicRole.READS: 7 * D, TopicRole.HITS: 365 * D, TopicRole.DLQ: 365 * D}),
        ("nl", {}, {TopicRole.READS: 7 * D, TopicRole.HITS: 28 * D, TopicRole.DLQ: 28 * D}),
        ("be", {"reads_days": 2, "hits_days": 30, "dlq_days": 90},
         {TopicRole.READS: 2 * D, TopicRole.HITS: 30 * D, TopicRole.DLQ: 90 * D}),
        ("nl", {"reads_days": 28, "hits_days": 28}, {TopicRole.READS: 28 * D, TopicRole.HITS: 28 * D,
                                                     TopicRole.DLQ: 28 * D}),
    ],
)  # fmt: skip
def test_topic_bounds(policy: str, retention: dict[str, int], expected: dict[TopicRole, timedelta]) -> None:
    assert topic_bounds(preset(policy), TopicRetention(**retention)) == expected  # type: ignore[arg-type]


def test_the_reads_default_follows_a_shorter_passages_horizon() -> None:
    short = policy_from_env({"ANPR_RETENTION_PASSAGES_DAYS": "3", "ANPR_RETENTION_OPEN_DAYS": "1"})
    assert topic_bounds(short, TopicRetention())[TopicRole.READS] == 3 * D


@pytest.mark.parametrize(
    ("policy", "retention", "message"),
    [
        ("nl", {"reads_days": 29}, "ANPR_TOPIC_READS_RETENTION_DAYS=29 exceeds the passages horizon of policy 'nl'"),
        ("be", {"hits_days": 366}, "ANPR_TOPIC_HITS_RETENTION_DAYS=366 exceeds the hits horizon"),
        ("be", {"dlq_days": 400}, "ANPR_TOPIC_DLQ_RETENTION_DAYS=400 exceeds the passages horizon"),
        ("be", {"reads_days": 0}, "at least 1"),
    ],
)
def test_topic_bounds_refuse_longer_than_the_policy(policy: str, retention: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        topic_bounds(preset(policy), TopicRetention(**retention))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bound", "segment_ms"), [(365 * D, DAY_MS), (7 * D, DAY_MS), (D, DAY_MS // 7), (timedelta(0), 1)]
)
def test_segment_ms(bound: timedelta, segment_ms: int) -> None:
    assert segment_ms_for(bound) == segment_ms


def test_created_configs_keep_no_record_past_its_bound() -> None:
    by_role = rules()
    for role, days in ((TopicRole.READS, 7), (TopicRole.HITS, 365), (TopicRole.DLQ, 365)):
        configs = by_role[role].configs
        assert configs["cleanup.policy"] == "delete" and configs["retention.bytes"] == "-1"
        # A record lives at most retention.ms + segment.ms: exactly the bound.
        assert int(configs["retention.ms"]) + int(configs["segment.ms"]) == days * DAY_MS
        assert int(configs["segment.ms"]) <= DAY_MS
    assert by_role[TopicRole.WATCHLIST].configs == WATCHLIST_CONFIGS
    assert WATCHLIST_CONFIGS["cleanup.policy"] == "compact" and WATCHLIST_CONFIGS["min.compaction.lag.ms"] == "0"
    assert rules(retention_bytes=10**9)[TopicRole.READS].configs["retention.bytes"] == str(10**9)


HITS_RETENTION = str(364 * DAY_MS)


@pytest.mark.parametrize(
    ("role", "current", "expected"),
    [
        # Unbounded or longer retention is lowered; segment.ms too (Kafka deletes whole closed segments).
        (TopicRole.HITS, {"cleanup.policy": "delete", "retention.ms": "-1", "segment.ms": "604800000"},
         {"retention.ms": HITS_RETENTION, "segment.ms": str(DAY_MS)}),
        (TopicRole.HITS, {"cleanup.policy": "delete", "retention.ms": str(400 * DAY_MS), "segment.ms": str(DAY_MS)},
         {"retention.ms": HITS_RETENTION}),
        # Already lawful and as configured: nothing.
        (TopicRole.HITS, {"cleanup.policy": "delete", "retention.ms": HITS_RETENTION, "segment.ms": str(DAY_MS)}, {}),
        # Shorter than configured (an operator's choice): never raised.
        (TopicRole.HITS, {"cleanup.policy": "delete", "retention.ms": str(DAY_MS), "segment.ms": "3600000"}, {}),
        # The broker's 7-day default on an old reads topic is longer than 6 d + 1 d segments: lowered.
        (TopicRole.READS, {"cleanup.policy": "delete", "retention.ms": "604800000", "segment.ms": "604800000"},
         {"retention.ms": str(6 * DAY_MS), "segment.ms": str(DAY_MS)}),
        # A compacted reads topic never deletes by age.
        (TopicRole.DLQ, {"cleanup.policy": "compact", "retention.ms": "1000", "segment.ms": "1000"},
         {"cleanup.policy": "delete"}),
        (TopicRole.DLQ, {"cleanup.policy": "compact,delete", "retention.ms": "1000", "segment.ms": "1000"}, {}),
        # Missing values count as unbounded.
        (TopicRole.READS, {"cleanup.policy": "delete"}, {"retention.ms": str(6 * DAY_MS), "segment.ms": str(DAY_MS)}),
        # The watchlist: compaction settings lowered, cleanup.policy and retention.ms left alone.
        (TopicRole.WATCHLIST, {"cleanup.policy": "compact", "retention.ms": "-1", "segment.ms": "604800000",
                               "max.compaction.lag.ms": "9223372036854775807", "min.compaction.lag.ms": "0",
                               "delete.retention.ms": "86400000", "min.cleanable.dirty.ratio": "0.5"},
         {"segment.ms": "3600000", "max.compaction.lag.ms": str(DAY_MS), "min.cleanable.dirty.ratio": "0.01"}),
        (TopicRole.WATCHLIST, {**WATCHLIST_CONFIGS, "delete.retention.ms": "60000"}, {}),
    ],
)  # fmt: skip
def test_lowering(role: TopicRole, current: dict[str, str], expected: dict[str, str]) -> None:
    assert lowering(rules()[role], current) == expected


def test_lowering_of_retention_bytes_only_when_configured() -> None:
    current = {"cleanup.policy": "delete", "retention.ms": "1", "segment.ms": "1", "retention.bytes": "-1"}
    assert lowering(rules()[TopicRole.READS], current) == {}
    assert lowering(rules(retention_bytes=5000)[TopicRole.READS], current) == {"retention.bytes": "5000"}
    assert lowering(rules(retention_bytes=5000)[TopicRole.READS], {**current, "retention.bytes": "10"}) == {}


def test_settings_choose_topic_retention() -> None:
    settings = Settings.from_env({**ENV, "ANPR_TOPIC_READS_RETENTION_DAYS": "3", "ANPR_TOPIC_HITS_RETENTION_DAYS": "90",
                                  "ANPR_TOPIC_RETENTION_BYTES": "1073741824",
                                  "ANPR_WATCHLIST_EXPIRY_GRACE_HOURS": "6"})  # fmt: skip
    assert settings.topic_retention == TopicRetention(reads_days=3, hits_days=90, retention_bytes=1073741824)
    assert settings.watchlist_expiry_grace == timedelta(hours=6)
    assert Settings.from_env(ENV).topic_retention == TopicRetention()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"ANPR_RETENTION": "nl", "ANPR_TOPIC_DLQ_RETENTION_DAYS": "30"},
            "exceeds the passages horizon of policy 'nl'",
        ),
        ({"ANPR_TOPIC_HITS_RETENTION_DAYS": "0"}, "ANPR_TOPIC_HITS_RETENTION_DAYS must be at least 1"),
        ({"ANPR_TOPIC_READS_RETENTION_DAYS": "week"}, "whole number"),
        ({"ANPR_TOPIC_RETENTION_BYTES": "0"}, "ANPR_TOPIC_RETENTION_BYTES must be -1"),
        ({"ANPR_TOPIC_RETENTION_BYTES": "-5"}, "at least -1"),
        ({"ANPR_WATCHLIST_EXPIRY_GRACE_HOURS": "-1"}, "must not be negative"),
    ],
)
def test_settings_refuse(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({**ENV, **env})
