"""Where Kafka and PostgreSQL are: the environment first (ANPR_KAFKA_BOOTSTRAP, ANPR_DATABASE_URL); only when a
setting is unset is the local service started (or attached to, when it already runs)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from anpr_stream.devinfra.kafka import LocalKafka
from anpr_stream.devinfra.postgres import LocalPostgres

KAFKA_ENV = "ANPR_KAFKA_BOOTSTRAP"
DATABASE_ENV = "ANPR_DATABASE_URL"


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    database_url: str
    kafka_source: str  # "environment" or "local"
    database_source: str

    def exports(self) -> str:
        """Shell lines for `eval "$(make -s infra)"`."""
        return (
            f"export {KAFKA_ENV}={shlex.quote(self.kafka_bootstrap)}\n"
            f"export {DATABASE_ENV}={shlex.quote(self.database_url)}\n"
        )


def resolve(
    env: Mapping[str, str],
    start_kafka: Callable[[], str] | None = None,
    start_postgres: Callable[[], str] | None = None,
) -> Endpoints:
    """Environment settings win; a local service is started only for a setting that is unset or empty."""
    kafka = env.get(KAFKA_ENV, "").strip()
    database = env.get(DATABASE_ENV, "").strip()
    kafka_source = database_source = "environment"
    if not kafka:
        kafka = (start_kafka or LocalKafka.from_env().ensure_running)()
        kafka_source = "local"
    if not database:
        database = (start_postgres or LocalPostgres.from_env().ensure_running)()
        database_source = "local"
    return Endpoints(kafka, database, kafka_source, database_source)


def with_search_path(url: str, schema: str) -> str:
    """asyncpg passes unknown DSN query parameters to the server as settings: the schema becomes the search path."""
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode({"search_path": schema})) if q)
    return urlunsplit(parts._replace(query=query))


def isolated_env(
    kafka_bootstrap: str, database_url: str, prefix: str, tag: str, schema: str, **extra: str
) -> dict[str, str]:
    """The environment for the CLI commands and workers of one run (a test, the demo, a benchmark): its own topics,
    consumer group, worker id and database schema, nothing inherited from the caller's ANPR_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANPR_")}
    env.update(
        ANPR_KAFKA_BOOTSTRAP=kafka_bootstrap,
        ANPR_DATABASE_URL=with_search_path(database_url, schema),
        ANPR_TOPIC_READS=f"{prefix}.{tag}.reads",
        ANPR_TOPIC_HITS=f"{prefix}.{tag}.hits",
        ANPR_TOPIC_DLQ=f"{prefix}.{tag}.reads.dlq",
        ANPR_TOPIC_WATCHLIST=f"{prefix}.{tag}.watchlist",
        ANPR_TOPIC_AUDIT_CHECKPOINTS=f"{prefix}.{tag}.audit.checkpoints",
        ANPR_CONSUMER_GROUP=f"{prefix}-{tag}",
        ANPR_WORKER_ID=f"{prefix}-{tag}",
    )
    env.update(extra)
    return env
