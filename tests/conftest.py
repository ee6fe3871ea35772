"""Shared fixtures: the real Kafka broker and PostgreSQL server, from the environment first, else local (or
testcontainers where a Docker daemon answers), and the real MQTT broker (ANPR_GATEWAY_MQTT_URL, else the local
mosquitto). Started lazily: unit tests never start anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from anpr_stream.devinfra import endpoints, mosquitto
from anpr_stream.devinfra.kafka import LocalKafka
from anpr_stream.devinfra.mosquitto import LocalMosquitto, MqttEndpoint
from anpr_stream.devinfra.postgres import LocalPostgres


@dataclass
class Infra:
    kafka_bootstrap: str
    database_url: str
    kafka_source: str
    database_source: str
    versions: dict[str, str] = field(default_factory=dict)


_started: list[str] = []
_report: dict[str, str] = {}


def _docker_daemon_answers() -> bool:
    if os.environ.get("ANPR_TESTCONTAINERS", "1") == "0" or shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return result.returncode == 0


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    env = os.environ
    containers: list[object] = []
    if not env.get(endpoints.KAFKA_ENV) and not env.get(endpoints.DATABASE_ENV) and _docker_daemon_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        kafka_c = KafkaContainer().with_kraft().start()
        pg_c = PostgresContainer("postgres:16").start()
        containers += [kafka_c, pg_c]
        url = pg_c.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        found = endpoints.Endpoints(kafka_c.get_bootstrap_server(), url, "testcontainers", "testcontainers")
    else:
        kafka_was_running = LocalKafka.from_env().running_pid() is not None
        postgres_was_running = LocalPostgres.from_env().running_pid() is not None
        found = endpoints.resolve(env)
        if found.kafka_source == "local" and not kafka_was_running:
            _started.append("kafka")
        if found.database_source == "local" and not postgres_was_running:
            _started.append("postgres")
    result = Infra(found.kafka_bootstrap, found.database_url, found.kafka_source, found.database_source)
    _report["kafka"] = f"{found.kafka_bootstrap} ({found.kafka_source})"
    _report["postgres"] = f"{found.database_url.rsplit('@', 1)[-1]} ({found.database_source})"
    yield result
    for container in containers:
        container.stop()  # type: ignore[attr-defined]
    # Stop only what this run started, so a developer's `make infra` stays up; ANPR_KEEP_INFRA=1 keeps all.
    if os.environ.get("ANPR_KEEP_INFRA") != "1":
        if "kafka" in _started:
            LocalKafka.from_env().stop()
        if "postgres" in _started:
            LocalPostgres.from_env().stop()


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[MqttEndpoint]:
    """Its own fixture, not part of `infra`: the MQTT tests need no Kafka, and the Kafka tests no mosquitto."""
    env = os.environ
    if not env.get(mosquitto.GATEWAY_URL_ENV) and not mosquitto.installed():
        pytest.skip(
            f"mosquitto is not installed and {mosquitto.GATEWAY_URL_ENV} is unset: `make tools` installs it "
            "(apt-get install mosquitto)"
        )
    was_running = LocalMosquitto.from_env().running_pid() is not None
    found = mosquitto.resolve(env)
    if found.source == "local" and not was_running:
        _started.append("mosquitto")
    _report["mosquitto"] = f"{found.gateway_url.rsplit('@', 1)[-1]} ({found.source})"
    yield found
    if os.environ.get("ANPR_KEEP_INFRA") != "1" and "mosquitto" in _started:
        LocalMosquitto.from_env().stop()


def record_server_version(name: str, version: str) -> None:
    """Integration tests call this with what the server itself reported; printed at the end of the run."""
    _report[f"{name} version"] = version


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _report:
        return
    terminalreporter.section("servers this run talked to")
    for key, value in sorted(_report.items()):
        terminalreporter.write_line(f"{key}: {value}")
