"""The ACL plan of the secured deployment (devinfra.kafka_secure, docs/kafka-security.md) and what the service does
when its principal may not create its topics (stream.topics)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from anpr_stream.devinfra.kafka_secure import Grant, Principals, TopicNames, acl_plan
from anpr_stream.stream.partition_producers import transactional_id
from anpr_stream.stream.topics import TopicAccessError, refused_or_raise

NAMES = TopicNames(reads="anpr.reads", hits="anpr.hits", dlq="anpr.reads.dlq", watchlist="anpr.watchlist",
                   checkpoints="anpr.audit.checkpoints", group="anpr-stream")  # fmt: skip
WHO = Principals()
PLAN = acl_plan(NAMES, WHO)


def rights(user: str) -> set[tuple[str, str, str]]:
    return {(g.resource, g.name, g.operation) for g in PLAN if g.user == user}


def test_each_principal_gets_only_its_own_rights() -> None:
    assert rights(WHO.camera) == {("TOPIC", "anpr.reads", "WRITE")}
    # The API reads hits (live stream) and writes, never reads, the watchlist (investigators' entries).
    assert rights(WHO.api) == {("TOPIC", "anpr.hits", "READ"), ("TOPIC", "anpr.watchlist", "WRITE")}
    assert rights(WHO.watchlist_admin) == {("TOPIC", "anpr.watchlist", "WRITE"), ("TOPIC", "anpr.watchlist", "READ")}
    assert rights(WHO.audit_signer) == {("TOPIC", "anpr.audit.checkpoints", "WRITE"),
                                        ("TOPIC", "anpr.audit.checkpoints", "READ")}  # fmt: skip
    worker = rights(WHO.worker)
    assert ("TOPIC", "anpr.watchlist", "WRITE") not in worker and ("TOPIC", "anpr.reads", "WRITE") not in worker
    assert {("TOPIC", "anpr.hits", "WRITE"), ("TOPIC", "anpr.reads.dlq", "WRITE"), ("TOPIC", "anpr.reads", "READ"),
            ("GROUP", "anpr-stream", "READ")} <= worker  # fmt: skip


def test_nobody_may_create_or_reconfigure_topics_or_act_on_the_cluster() -> None:
    assert not [g for g in PLAN if g.operation in {"CREATE", "ALTER", "ALTER_CONFIGS", "DELETE", "ALL"}]
    assert not [g for g in PLAN if g.resource == "CLUSTER"]
    assert all(g.prefixed == (g.resource == "TRANSACTIONAL_ID") for g in PLAN)  # only the txn ids are prefixed


def test_the_transactional_id_prefix_covers_the_ids_the_worker_uses_and_no_other_group() -> None:
    (txn,) = [g for g in PLAN if g.resource == "TRANSACTIONAL_ID"]
    assert txn.user == WHO.worker and txn.operation == "WRITE"
    assert transactional_id(NAMES.group, TopicPartition(NAMES.reads, 7)).startswith(txn.name)
    assert not transactional_id("anpr-stream-other", TopicPartition(NAMES.reads, 7)).startswith(txn.name)


def test_kafka_acls_commands() -> None:
    assert Grant("anpr-worker", "TRANSACTIONAL_ID", "g-r-", "WRITE", prefixed=True).kafka_acls_command("b:9093") == (
        "kafka-acls.sh --bootstrap-server b:9093 --command-config admin.properties --add --allow-principal "
        "'User:anpr-worker' --operation Write --transactional-id 'g-r-' --resource-pattern-type prefixed"
    )
    assert (
        Grant("x", "CLUSTER", "kafka-cluster", "IDEMPOTENT_WRITE")
        .kafka_acls_command()
        .endswith("--operation IdempotentWrite --cluster")
    )


def test_the_docs_list_every_grant_of_the_plan() -> None:
    """docs/kafka-security.md is written for the default names: each grant's command appears in it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "kafka-security.md").read_text()
    commands = {re.sub(r"\s+", " ", c) for c in re.findall(r"kafka-acls\.sh [^\n]*(?:\n +[^\n]+)*", doc)}
    for grant in PLAN:
        assert grant.kafka_acls_command() in commands, grant


def test_topics_not_visible_and_not_creatable_stop_the_start_with_the_names_and_the_acl() -> None:
    with pytest.raises(TopicAccessError, match=r"anpr\.reads do not exist and User:anpr-worker may not create"):
        refused_or_raise(["anpr.reads"], set(), "anpr-worker")


def test_a_principal_that_sees_some_topics_goes_on_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="anpr_stream.stream.topics"):
        refused_or_raise(["anpr.hits", "anpr.reads"], {"anpr.watchlist"}, "anpr-watchlist-admin")
    assert "anpr.hits, anpr.reads" in caplog.text and "no CREATE ACL" in caplog.text
