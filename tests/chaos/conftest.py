"""The chaos suite's own Kafka broker and PostgreSQL server (private ports and data under .local/chaos), so that
killing them with SIGKILL disturbs nothing else; the worker is a real process in a namespace of its own."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from anpr_stream.devinfra import paths, process
from anpr_stream.devinfra.kafka import DEFAULT_VERSION, LocalKafka
from anpr_stream.devinfra.postgres import LocalPostgres, home_for
from tests.conftest import Infra
from tests.integration.conftest import Namespace, open_namespace


def _free_port_pair() -> int:
    """A port p with p + 1 free too (the broker's listener and its controller)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65535 and not process.port_in_use(port) and not process.port_in_use(port + 1):
            return port
    raise RuntimeError("no free pair of ports")


@dataclass
class Servers:
    """The private servers, with the faults the suite inflicts on them."""

    kafka: LocalKafka
    postgres: LocalPostgres
    infra: Infra

    def kill_broker(self) -> None:
        _kill(self.kafka.running_pid())

    def restart_broker(self, timeout: float = 90.0) -> float:
        """Start the broker again; returns the monotonic time it first answered a real request (describe cluster,
        list topics), polled every 0.1 s."""
        pid = process.spawn_detached(self._kafka_argv(), self.kafka.log_file, self.kafka.pid_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.pid_alive(pid), f"the broker died on restart:\n{process.tail(self.kafka.log_file)}"
            if process.port_in_use(self.kafka.port) and asyncio.run(_broker_answers(self.kafka.bootstrap)):
                return time.monotonic()
            time.sleep(0.1)
        raise AssertionError("the broker did not come back")

    def _kafka_argv(self) -> list[str]:
        import shutil

        java = shutil.which("java")
        assert java is not None
        log4j = paths.project_root() / "deploy" / "local" / "log4j2.xml"
        return [java, "-Xmx512m", "-Xms512m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}",
                "-cp", f"{self.kafka.libs}/*", "kafka.Kafka", str(self.kafka.home / "server.properties")]  # fmt: skip

    def kill_postmaster(self) -> None:
        _kill(self.postgres.running_pid())

    def restart_postgres(self, timeout: float = 60.0) -> float:
        """Start PostgreSQL again (its orphaned backends exit when they notice the postmaster is gone: until then
        the server refuses to start on their shared memory); returns when it first accepted a connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.postgres.ensure_running()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        return asyncio.run(_first_connection(self.infra.database_url, deadline))


def _kill(pid: int | None) -> None:
    assert pid is not None, "the server is not running"
    os.kill(pid, signal.SIGKILL)
    while process.pid_alive(pid):
        time.sleep(0.02)


async def _broker_answers(bootstrap: str) -> bool:
    """A real request (describe cluster, list topics) answered. aiokafka, closed whatever happens: kafka-python's
    admin client leaks its socket when the broker is not ready yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=1000)
    try:
        await admin.start()
        await admin.describe_cluster()
        await admin.list_topics()
        return True
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


async def _first_connection(url: str, deadline: float) -> float:
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        await conn.close()
        return time.monotonic()


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    state = paths.state_dir() / "chaos"
    port = _free_port_pair()
    kafka = LocalKafka(
        version=os.environ.get("ANPR_LOCAL_KAFKA_VERSION", DEFAULT_VERSION),
        port=port,
        controller_port=port + 1,
        home=state / "kafka",
        libs=LocalKafka.from_env().libs,
    )
    if kafka.running_pid() is not None:  # left by an interrupted run
        kafka.stop()
    # A fresh cluster id and log for every run (the ports change from run to run).
    for stale in (kafka.home / "data", kafka.home / "server.properties"):
        if stale.is_dir():
            import shutil

            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        pg_port = int(probe.getsockname()[1])
    postgres = LocalPostgres(port=pg_port, home=home_for(state))
    if postgres.running_pid() is not None:
        postgres.stop()
    # postgresql.conf holds the port of the run that initialised the cluster: this run's wins (set on the command
    # line by PGPORT is not read by pg_ctl, so the file is edited).
    conf = postgres.data_dir / "postgresql.conf"
    if conf.exists():
        conf.write_text(conf.read_text() + f"\nport = {pg_port}\n")
    bootstrap = kafka.ensure_running()
    try:
        url = postgres.ensure_running()
        yield Servers(kafka, postgres, Infra(bootstrap, url, "chaos", "chaos"))
    finally:
        kafka.stop()
        postgres.stop()


@pytest.fixture
async def chaos_ns(servers: Servers) -> AsyncIterator[Namespace]:
    async with open_namespace(servers.infra, reads_partitions=3) as ns:
        yield ns
    # Clients that met a dead server leave sockets behind for the collector: collected here, so that a leak is
    # reported against this test (filterwarnings=error) and not a later one.
    gc.collect()
