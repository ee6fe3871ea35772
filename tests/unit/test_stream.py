"""The stream layer's own rules: settings, metric names, transactional ids."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from anpr_stream import metrics
from anpr_stream.config import ConfigError, Settings, mask_url
from anpr_stream.stream.partition_producers import transactional_id

ROOT = Path(__file__).resolve().parents[2]


def test_settings_from_environment() -> None:
    env = {"ANPR_KAFKA_BOOTSTRAP": "k:9092", "ANPR_DATABASE_URL": "postgresql://svc:s3cret@db/anpr",
           "ANPR_SUPPRESSION_WINDOW_SECONDS": "120", "ANPR_TOPIC_HITS": "x.hits"}  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.suppression_window == timedelta(minutes=2) and settings.topics.hits == "x.hits"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.describe())
    assert mask_url(env["ANPR_DATABASE_URL"]) == "postgresql://svc:***@db/anpr"
    with pytest.raises(ConfigError, match="ANPR_DATABASE_URL"):
        Settings.from_env({"ANPR_KAFKA_BOOTSTRAP": "k:9092"})
    with pytest.raises(ConfigError, match="whole number"):
        Settings.from_env({**env, "ANPR_BATCH_MAX_RECORDS": "many"})
    nl = Settings.from_env({**env, "ANPR_RETENTION": "nl", "ANPR_PURGE_INTERVAL_SECONDS": "900"})
    assert (nl.retention.name, nl.retention.passages, nl.purge_interval) == (
        "nl",
        timedelta(days=28),
        timedelta(minutes=15),
    )
    with pytest.raises(ConfigError, match="legal maximum"):
        Settings.from_env({**env, "ANPR_RETENTION_PASSAGES_DAYS": "400"})


def test_failover_settings_are_bounded() -> None:
    env = {"ANPR_KAFKA_BOOTSTRAP": "k:9092", "ANPR_DATABASE_URL": "postgresql://db/anpr"}
    settings = Settings.from_env(env)
    assert (settings.session_timeout_seconds, settings.static_membership, settings.db_retry_max_seconds) == (
        8.0,
        True,
        1.0,
    )
    assert not Settings.from_env({**env, "ANPR_STATIC_MEMBERSHIP": "false"}).static_membership
    for name, value, reason in [
        ("ANPR_SESSION_TIMEOUT_SECONDS", "3", "between 6 and 300"),
        ("ANPR_SHUTDOWN_SECONDS", "0", "positive"),
        ("ANPR_DB_RETRY_MAX_SECONDS", "nan", "finite"),
        ("ANPR_STATIC_MEMBERSHIP", "maybe", "true or false"),
    ]:
        with pytest.raises(ConfigError, match=reason):
            Settings.from_env({**env, name: value})


def test_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "anpr-stream-worker.json").read_text())
    used = set(re.findall(r"anpr_[a-z_]+", json.dumps(dashboard)))
    exposed = {family.name for family in metrics.REGISTRY.collect()}
    for name in used:
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in exposed, name


def test_rejection_reason_labels_are_bounded() -> None:
    assert metrics.reason_label("plate '1-AAAAAAAAAAAA' has more than 16 letters") == "plate … has more than … letters"
    assert metrics.reason_label("malformed JSON: unexpected end") == "malformed JSON"


def test_transactional_ids_belong_to_input_partitions_not_to_workers() -> None:
    assert transactional_id("anpr-stream", TopicPartition("anpr.reads", 7)) == "anpr-stream-anpr.reads-7"
    assert transactional_id("g", TopicPartition("t", 0)) != transactional_id("g", TopicPartition("t", 1))
