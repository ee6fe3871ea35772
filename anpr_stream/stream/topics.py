"""The service's topics, created when missing with the retention the policy allows (the watchlist topic compacted),
and lowered to it when they exist with a longer one (the rules: `anpr_stream.retention.topic_rules`)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from anpr_stream.config import Settings
from anpr_stream.retention.topic_rules import TopicRole, TopicRule, lowering, topic_rules
from anpr_stream.stream.topic_configs import TopicConfigError, describe_topic_configs, set_topic_configs

log = logging.getLogger(__name__)

_ALREADY_EXISTS = TopicAlreadyExistsError.errno


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
    raised: the service runs on, and `anpr-stream retention check` names the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="anpr-stream-admin")
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
        present = {rule.name: rule for rule in rules_for(settings) if rule.name in existing}
        try:
            return await _lower(admin, present)
        except TopicConfigError as exc:
            log.error("topic retention not enforced: %s", exc)
            return {}
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """aiokafka returns the per-topic errors instead of raising them: a config the broker refuses must not pass
    unnoticed (the topic would not exist, or not with our retention)."""
    response = await admin.create_topics(topics)
    errors = [(e[0], e[1], e[2] if len(e) > 2 else None) for e in response.topic_errors if e[1]]
    if errors and all(code == _ALREADY_EXISTS for _, code, _ in errors):
        raise TopicAlreadyExistsError
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
