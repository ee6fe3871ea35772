"""`retention check`'s decision: which topic or table holds data past its horizon, or is configured to; the exit
code and the lines printed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.retention import preset
from anpr_stream.retention.assessment import (
    RetentionCheck,
    TopicObservation,
    assess_table,
    assess_topic,
    check_lines,
    with_violations,
)
from anpr_stream.retention.topic_rules import DAY_MS, WATCHLIST_CONFIGS, TopicRetention, TopicRole, topic_rules

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
D = timedelta(days=1)
BE = preset("be")
RULES = {r.role: r for r in topic_rules({TopicRole.READS: "r", TopicRole.HITS: "h", TopicRole.DLQ: "d",
                                         TopicRole.WATCHLIST: "w"}, BE, TopicRetention())}  # fmt: skip
LAWFUL = {TopicRole.READS: RULES[TopicRole.READS].configs, TopicRole.HITS: RULES[TopicRole.HITS].configs,
          TopicRole.DLQ: RULES[TopicRole.DLQ].configs, TopicRole.WATCHLIST: WATCHLIST_CONFIGS}  # fmt: skip


def seen(role: TopicRole, oldest: timedelta | None = None, expired_live: int | None = None, **configs: str) -> object:
    cfg = {**LAWFUL[role], **{k.replace("_", "."): v for k, v in configs.items()}}
    return TopicObservation(True, cfg, {0: NOW - oldest if oldest is not None else None, 1: None}, expired_live)


@pytest.mark.parametrize(
    ("role", "observation", "violations"),
    [
        (TopicRole.READS, seen(TopicRole.READS, 2 * D), []),
        (TopicRole.HITS, seen(TopicRole.HITS, 365 * D), []),  # at the horizon: deletion due, not a violation
        (TopicRole.HITS, seen(TopicRole.HITS, 365 * D + timedelta(hours=23)), []),
        (TopicRole.HITS, seen(TopicRole.HITS, 367 * D),
         ["topic h[0]: oldest record 2025-11-30T12:00:00+00:00 is 367 days old (policy be keeps hits 365 days)"]),
        # A reads topic holding 30-day-old reads keeps them longer than configured (7 d) but within the law.
        (TopicRole.READS, seen(TopicRole.READS, 30 * D), []),
        (TopicRole.DLQ, seen(TopicRole.DLQ, None, retention_ms="-1"),
         ["topic d: retention.ms=-1 keeps records for ever (policy be keeps passages 365 days)"]),
        (TopicRole.DLQ, seen(TopicRole.DLQ, 400 * D, cleanup_policy="compact"),
         ["topic d: cleanup.policy=compact never deletes by age (policy be keeps passages 365 days)",
          "topic d[0]: oldest record 2025-10-28T12:00:00+00:00 is 400 days old (policy be keeps passages 365 days)"]),
        # Kafka's 7-day segments on a 365-day retention: a record may live 372 days.
        (TopicRole.HITS, seen(TopicRole.HITS, None, retention_ms=str(365 * DAY_MS), segment_ms=str(7 * DAY_MS)),
         ["topic h: retention.ms 365 d + segment.ms 7 d lets a record live 372 d (policy be keeps hits 365 days)"]),
        (TopicRole.WATCHLIST, seen(TopicRole.WATCHLIST, 900 * D, 0), []),  # a list entry may be years old
        (TopicRole.WATCHLIST, seen(TopicRole.WATCHLIST, None, 2),
         ["topic w: 2 live entries whose validity ended (longer ago than ANPR_WATCHLIST_EXPIRY_GRACE_HOURS): run "
          "`anpr-stream retention expire-watchlist`"]),
        (TopicRole.WATCHLIST, seen(TopicRole.WATCHLIST, None, 0, max_compaction_lag_ms="9223372036854775807",
                                   cleanup_policy="delete"),
         ["topic w: cleanup.policy=delete: a tombstone does not remove a retracted entry's value",
          "topic w: max.compaction.lag.ms=9223372036854775807 (want at most 86400000): retracted entries may stay on "
          "disk without bound"]),
        (TopicRole.WATCHLIST, seen(TopicRole.WATCHLIST, None, 0, min_cleanable_dirty_ratio="0.5"), []),  # a note only
        (TopicRole.READS, TopicObservation(False), []),  # absent: holds nothing
    ],
)  # fmt: skip
def test_topic_violations(role: TopicRole, observation: TopicObservation, violations: list[str]) -> None:
    assert assess_topic(RULES[role], observation, BE, NOW).violations == violations


def test_topic_notes_and_fields() -> None:
    holding = assess_topic(RULES[TopicRole.HITS], seen(TopicRole.HITS, 365 * D + timedelta(hours=1)), BE, NOW)
    assert holding.notes == ["partition 0: oldest record past the horizon, deletion due"]
    assert (holding.oldest, holding.oldest_age_days, holding.horizon_days) == (NOW - 365 * D - timedelta(hours=1),
                                                                               365, 365)  # fmt: skip
    assert [(p.partition, p.oldest is None) for p in holding.partitions] == [(0, False), (1, True)]
    longer = assess_topic(RULES[TopicRole.READS], seen(TopicRole.READS, None, retention_ms=str(30 * DAY_MS)), BE, NOW)
    assert longer.violations == [] and "the worker lowers it at its next start" in longer.notes[0]


@pytest.mark.parametrize(
    ("table", "age", "violation"),
    [
        ("passages", None, None),
        ("passages", 365 * D + timedelta(hours=20), None),  # the day partition holding the horizon: purge due
        ("passages", 367 * D, "table passages: oldest 2025-11-30T12:00:00+00:00 is 367 days old, policy be keeps "
                              "passages 365 days"),
        ("hits", 400 * D, "table hits: oldest 2025-10-28T12:00:00+00:00 is 400 days old, policy be keeps hits 365 "
                          "days"),
        ("hit_outcomes", 10 * D, None),
        ("audit_log", 4 * 365 * D, None),  # the audit log's horizon is 5 years
    ],
)  # fmt: skip
def test_table_violations(table: str, age: timedelta | None, violation: str | None) -> None:
    held = assess_table(table, NOW - age if age is not None else None, BE, NOW)
    assert held.violation == violation
    assert held.past_horizon == (age is not None and age > held.horizon_days * D)


def _check(**parts: object) -> RetentionCheck:
    return with_violations(RetentionCheck(as_of=NOW, policy="be", **parts))  # type: ignore[arg-type]


def test_exit_codes_and_lines() -> None:
    clean = _check(topics=[assess_topic(RULES[TopicRole.READS], seen(TopicRole.READS, D), BE, NOW)],
                   tables=[assess_table("passages", NOW - D, BE, NOW)])  # fmt: skip
    assert clean.exit_code == 0 and clean.violations == []
    lines = check_lines(clean)
    assert lines[1].startswith("ok           topic r: cleanup.policy delete, retention.ms 6 d, segment.ms 1 d")
    assert (
        lines[2].startswith("ok           table passages: oldest")
        and lines[-1] == "result: nothing held past its horizon"
    )

    bad = _check(topics=[assess_topic(RULES[TopicRole.HITS], seen(TopicRole.HITS, 400 * D), BE, NOW)],
                 tables=[assess_table("hits", NOW - 400 * D, BE, NOW)])  # fmt: skip
    assert bad.exit_code == 1 and len(bad.violations) == 2 and bad.topic_violations == bad.violations[:1]
    assert [line.split()[0] for line in check_lines(bad)[1:]] == ["VIOLATION", "VIOLATION", "result:"]

    unreachable = _check(kafka_error="Kafka k:9092 not reachable", tables=[assess_table("hits", None, BE, NOW)])
    assert unreachable.exit_code == 2 and "NOT CHECKED  topics: Kafka k:9092 not reachable" in check_lines(unreachable)
    # A violation wins over what could not be checked.
    assert _check(kafka_error="x", tables=[assess_table("hits", NOW - 400 * D, BE, NOW)]).exit_code == 1
