"""`anpr-stream infra`: start, stop and describe the local Kafka broker, PostgreSQL server and mosquitto MQTT broker
(no Docker)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from typing import Any

from anpr_stream.devinfra import endpoints, mosquitto
from anpr_stream.devinfra.kafka import KafkaStartError, LocalKafka
from anpr_stream.devinfra.mosquitto import LocalMosquitto, MosquittoStartError
from anpr_stream.devinfra.paths import state_dir
from anpr_stream.devinfra.postgres import LocalPostgres, PostgresStartError

EVIDENCE_ENV = "ANPR_EVIDENCE_DIR"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "infra",
        help="start/stop the local Kafka broker, PostgreSQL server and MQTT broker (development and tests, no Docker)",
        description=(
            "Local infrastructure for development and tests. Settings in the environment (ANPR_KAFKA_BOOTSTRAP, "
            "ANPR_DATABASE_URL, ANPR_GATEWAY_MQTT_URL) win: a service is started only for a setting that is unset. "
            "mosquitto is optional: without it (make tools installs it) no MQTT setting is exported."
        ),
    )
    actions = parser.add_subparsers(dest="infra_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start what is not running; print export lines for eval")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop the local services (their data stays in .local/)")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="say what runs")
    status.set_defaults(handler=_status)


def _up(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="infra: %(message)s", stream=sys.stderr)
    logging.getLogger("anpr_stream").setLevel(logging.INFO)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # kafka-python narrates every refused connection at INFO
    try:
        found = endpoints.resolve(os.environ)
    except (KafkaStartError, PostgresStartError) as exc:
        print(f"infra: {exc}", file=sys.stderr)
        return 1
    exports = found.exports()
    if os.environ.get(mosquitto.GATEWAY_URL_ENV, "").strip() or mosquitto.installed():
        try:
            exports += mosquitto.resolve(os.environ).exports()
        except MosquittoStartError as exc:
            print(f"infra: {exc}", file=sys.stderr)
            return 1
    else:
        print(
            f"infra: mosquitto is not installed (make tools): {mosquitto.GATEWAY_URL_ENV} is not exported",
            file=sys.stderr,
        )
    if not os.environ.get(EVIDENCE_ENV, "").strip():
        # The installed default (/var/lib/anpr-stream/evidence) is a service's; local runs keep images with the rest.
        exports += f"export {EVIDENCE_ENV}={shlex.quote(str(state_dir() / 'evidence'))}\n"
    sys.stdout.write(exports)
    return 0


def _down(args: argparse.Namespace) -> int:
    kafka_stopped = LocalKafka.from_env().stop()
    postgres_stopped = LocalPostgres.from_env().stop()
    mosquitto_stopped = LocalMosquitto.from_env().stop()
    print(f"kafka: {'stopped' if kafka_stopped else 'was not running'}", file=sys.stderr)
    print(f"postgres: {'stopped' if postgres_stopped else 'was not running'}", file=sys.stderr)
    print(f"mosquitto: {'stopped' if mosquitto_stopped else 'was not running'}", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    kafka, postgres = LocalKafka.from_env(), LocalPostgres.from_env()
    kafka_pid, postgres_pid = kafka.running_pid(), postgres.running_pid()
    print(f"kafka {kafka.version} on {kafka.bootstrap}: {f'running (pid {kafka_pid})' if kafka_pid else 'stopped'}")
    print(f"postgres on 127.0.0.1:{postgres.port}: {f'running (pid {postgres_pid})' if postgres_pid else 'stopped'}")
    broker = LocalMosquitto.from_env()
    broker_pid = broker.running_pid()
    state = f"running (pid {broker_pid})" if broker_pid else "stopped" if mosquitto.installed() else "not installed"
    print(f"mosquitto on 127.0.0.1:{broker.port} (TLS {broker.tls_port}): {state}")
    return 0
