"""The service's topics, created when missing with the retention the policy allows (the watchlist topic compacted),
and lowered to it when they exist with a longer one (the rules: `anpr_stream.retention.topic_rules`)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from anpr_stream.config import Settings
from anpr_stream.retention.topic_rules import TopicRole, TopicRule, lowering, topic_rules
from anpr_stream.stream.topic_configs import TopicConfigError, describe_topic_configs, set_topic_configs

log = logging.getLogger(__name__)

_ALREADY_EXISTS = TopicAlreadyExistsError.errno
# The broker's answer to a CreateTopics the principal has no right to: CREATE on the topic (29) or on the cluster (31).
_REFUSED = (TopicAuthorizationFailedError.errno, ClusterAuthorizationFailedError.errno)


class TopicAccessError(RuntimeError):
    """Topics the service needs do not exist and its principal may not create them. Not a KafkaError on purpose: the
    worker's start-up retry loop (`_until_ready`) retries KafkaErrors for ever; this one ends the start with its
    message instead (an ACL does not appear by waiting)."""


def refused_message(names: list[str], principal: str | None) -> str:
    who = f"User:{principal}" if principal else "this client's principal"
    return (
        f"topic(s) {', '.join(names)} do not exist and {who} may not create them (no CREATE ACL): create them as "
        f"the Kafka admin before starting the service (docs/kafka-security.md), or grant {who} CREATE on them"
    )


def rules_for(settings: Settings) -> list[TopicRule]:
    t = settings.topics
    names = {TopicRole.READS: t.reads, TopicRole.HITS: t.hits, TopicRole.DLQ: t.dlq, TopicRole.WATCHLIST: t.watchlist}
    return topic_rules(names, settings.retention, settings.topic_retention)


def wanted_topics(settings: Settings, replication: int = 1) -> list[NewTopic]:
    partitions = {TopicRole.READS: settings.topics.reads_partitions, TopicRole.HITS: settings.topics.hits_partitions,
                  TopicRole.DLQ: 1, TopicRole.WATCHLIST: 1}  # fmt: skip
    return [
        NewTopic(rule.name, partitions[rule.role], replication, topic_configs=rule.configs)
        for rule in rules_for(settings)
    ]


async def ensure_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Create the missing topics; lower the retention of existing ones that keep more than allowed. Returns the
    configs lowered, per topic. A broker that refuses to describe or change configs (no right to) is logged, not
    raised: the service runs on, and `anpr-stream retention check` names the topic.

    Under ACLs (docs/kafka-security.md) the service's principals normally have neither CREATE nor DESCRIBE_CONFIGS /
    ALTER_CONFIGS: the admin creates the topics with their configs. Configs it may not check: a warning, and on.
    Topics it may not create: `refused_or_raise`."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security.aiokafka_options(),
        client_id="anpr-stream-admin",
    )  # fmt: skip
    try:
        await admin.start()  # inside: a start that fails (no broker yet) still closes what it opened
        existing = set(await admin.list_topics())
        wanted = wanted_topics(settings)
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await _create(admin, missing)
                log.info("created topics: %s", ", ".join(t.name for t in missing))
            except TopicAlreadyExistsError:
                pass  # another worker created them first (they have the same configs)
            except _Refused as exc:
                visible = {t.name for t in wanted} & existing
                refused_or_raise(exc.names, visible, settings.kafka_security.sasl_username)
            else:
                await _until_visible(admin, {t.name for t in missing})
        present = {rule.name: rule for rule in rules_for(settings) if rule.name in existing}
        try:
            return await _lower(admin, present)
        except TopicConfigError as exc:
            log.warning("topic retention not checked or enforced by this service (under ACLs the Kafka admin's "
                        "job; `anpr-stream retention check` as one with DESCRIBE_CONFIGS): %s", exc)  # fmt: skip
            return {}
    finally:
        await admin.close()


# CreateTopics answers once the controller has committed the topics; a broker's metadata may show them a moment
# later (KRaft), and a DescribeConfigs or a fetch in between gets UNKNOWN_TOPIC_OR_PARTITION. Bounded: a topic still
# unseen after this is the next step's error to report.
VISIBLE_WAIT_S = 10.0


async def _until_visible(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    """Return once the broker's metadata lists every created topic (or after VISIBLE_WAIT_S, with a warning)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBLE_WAIT_S
    while not names <= set(await admin.list_topics()):
        if loop.time() > deadline:
            log.warning("created topics not yet in the broker's metadata after %.0f s: %s", VISIBLE_WAIT_S,
                        ", ".join(sorted(names)))  # fmt: skip
            return
        await asyncio.sleep(0.1)


class _Refused(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


def refused_or_raise(refused: list[str], visible: set[str], principal: str | None) -> None:
    """A creation refused for lack of CREATE. list_topics shows a principal only the topics it may DESCRIBE, and
    the broker answers TOPIC_AUTHORIZATION_FAILED for an existing topic it may not see as for a missing one: the
    two are told apart only in that a principal scoped to some of the service's topics sees those. When it sees
    none, nothing can work: TopicAccessError. When it sees some (the watchlist admin sees the watchlist, the API the
    hits), the others are logged as a warning naming them, and the caller goes on."""
    message = refused_message(refused, principal)
    if not visible:
        raise TopicAccessError(message)
    log.warning("%s; going on with the topics this principal may see", message)


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """aiokafka returns the per-topic errors instead of raising them: a config the broker refuses must not pass
    unnoticed (the topic would not exist, or not with our retention)."""
    response = await admin.create_topics(topics)
    errors = [(e[0], e[1], e[2] if len(e) > 2 else None) for e in response.topic_errors if e[1]]
    if errors and all(code == _ALREADY_EXISTS for _, code, _ in errors):
        raise TopicAlreadyExistsError
    refused = sorted(name for name, code, _ in errors if code in _REFUSED)
    if refused:
        raise _Refused(refused)
    for name, code, message in errors:
        if code != _ALREADY_EXISTS:
            error = for_code(code)
            if error.retriable:
                raise error(f"creating topic {name}: {message}")
            raise TopicConfigError(f"creating topic {name}: {error.__name__}: {message}")


async def _lower(admin: AIOKafkaAdminClient, rules: dict[str, TopicRule]) -> dict[str, dict[str, str]]:
    current = await describe_topic_configs(admin, sorted(rules))
    changes = {name: lowering(rule, current.get(name, {})) for name, rule in rules.items()}
    changes = {name: configs for name, configs in changes.items() if configs}
    if changes:
        await set_topic_configs(admin, changes)
        for name, configs in sorted(changes.items()):
            before = ", ".join(f"{k} {current.get(name, {}).get(k)} -> {v}" for k, v in sorted(configs.items()))
            log.warning("topic %s kept data longer than allowed; lowered: %s", name, before)
    return changes
