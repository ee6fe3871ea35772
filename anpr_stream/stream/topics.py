"""The service's topics, created when missing with the settings they need (the watchlist topic is compacted)."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from anpr_stream.config import Settings

log = logging.getLogger(__name__)


def wanted_topics(settings: Settings, replication: int = 1) -> list[NewTopic]:
    t = settings.topics
    return [
        NewTopic(t.reads, num_partitions=t.reads_partitions, replication_factor=replication),
        NewTopic(t.hits, num_partitions=t.hits_partitions, replication_factor=replication),
        # Dead letters are evidence of what a camera sent: keep them as long as reads may be kept.
        NewTopic(t.dlq, num_partitions=1, replication_factor=replication),
        NewTopic(
            t.watchlist,
            num_partitions=1,
            replication_factor=replication,
            topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000"},
        ),
    ]


async def ensure_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="anpr-stream-admin")
    try:
        await admin.start()  # inside: a start that fails (no broker yet) still closes what it opened
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted_topics(settings) if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
                log.info("created topics: %s", ", ".join(t.name for t in missing))
            except TopicAlreadyExistsError:
                pass  # another worker created them first
    finally:
        await admin.close()
