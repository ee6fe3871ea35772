"""The infrastructure is real: round trips through the broker (two different client libraries) and the database,
environment-over-local precedence, and recovery from killed processes and stale pid files."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from anpr_stream.devinfra.kafka import DEFAULT_VERSION, LocalKafka, broker_answers
from anpr_stream.devinfra.postgres import home_for
from tests.conftest import Infra, record_server_version

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "anpr_stream.cli"]


def _topic() -> str:
    return f"test.infra.{uuid.uuid4().hex[:10]}"


async def test_aiokafka_round_trip(infra: Infra) -> None:
    topic = _topic()
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert [broker["host"] for broker in cluster["brokers"]] == ["127.0.0.1"] or infra.kafka_source != "local"

    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [f"reading-{i}".encode() for i in range(50)]
        for i, value in enumerate(sent):
            await producer.send(topic, value, key=f"cam-{i % 5}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest", group_id=f"g-{topic}"
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=1000)
                received += [record.value for records in batches.values() for record in records]
    finally:
        await consumer.stop()
    assert sorted(received) == sorted(sent)


def test_kafka_python_round_trip(infra: Infra) -> None:
    topic = _topic()
    producer = KafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    sent = [f"hit-{i}".encode() for i in range(20)]
    for value in sent:
        producer.send(topic, value)
    producer.flush(timeout=30)
    version = ".".join(map(str, producer.config["api_version"]))  # probed from the broker at start
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15000,
        group_id=f"g-{topic}",
    )
    received = []
    for message in consumer:
        received.append(message.value)
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == sent  # one partition: order is kept
    if infra.kafka_source == "local":
        log = (ROOT / ".local" / "kafka" / "server.log").read_text(errors="replace")
        reported = re.findall(r"Kafka version: (\S+)", log)
        assert reported and reported[-1] == LocalKafka.from_env().version
        record_server_version("kafka", f"{reported[-1]} (broker log; protocol API {version})")
    else:
        record_server_version("kafka", f"protocol API {version} (from the broker's ApiVersions)")


async def test_asyncpg_rows(infra: Infra) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        version = await conn.fetchval("SHOW server_version")
        major = int(str(version).split(".")[0])
        assert major >= 15
        record_server_version("postgres", str(version))
        await conn.execute("CREATE TEMP TABLE infra_check (id int PRIMARY KEY, plate text NOT NULL)")
        rows = [(i, f"1-ABC-{i:03d}") for i in range(200)]
        await conn.copy_records_to_table("infra_check", records=rows)
        back = await conn.fetch("SELECT id, plate FROM infra_check WHERE plate LIKE $1 ORDER BY id", "1-ABC-0%")
        assert [tuple(r) for r in back] == rows[:100]
        assert await conn.fetchval("SELECT inet_server_addr()::text") in ("127.0.0.1/32", None) or (
            infra.database_source != "local"
        )
    finally:
        await conn.close()


def _run_cli(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


def test_environment_settings_win_and_nothing_local_starts(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(
        ANPR_KAFKA_BOOTSTRAP="kafka.example.internal:9092",
        ANPR_DATABASE_URL="postgresql://svc:secret@db.example.internal:5432/anpr",
        ANPR_GATEWAY_MQTT_URL="mqtt://gw:pw@mqtt.example.internal:1883",
        ANPR_EVIDENCE_DIR=str(tmp_path / "evidence"),  # set: not exported (only an unset one is, under .local/)
        ANPR_LOCAL_STATE_DIR=str(tmp_path / "state"),
    )
    result = _run_cli(["infra", "up"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "export ANPR_KAFKA_BOOTSTRAP=kafka.example.internal:9092",
        "export ANPR_DATABASE_URL=postgresql://svc:secret@db.example.internal:5432/anpr",
        "export ANPR_GATEWAY_MQTT_URL=mqtt://gw:pw@mqtt.example.internal:1883",
        # A broker that is not ours: the tests publish as the gateway's own user.
        "export ANPR_LOCAL_MQTT_PUBLISHER_URL=mqtt://gw:pw@mqtt.example.internal:1883",
    ]
    assert not (tmp_path / "state").exists(), "a local service was started although the environment set both"


def test_make_infra_output_evals_in_a_shell(infra: Infra) -> None:
    if infra.kafka_source != "local" or infra.database_source != "local":
        pytest.skip("checks the local infrastructure's export lines; this run uses other endpoints")
    env = {k: v for k, v in os.environ.items() if k not in ("ANPR_KAFKA_BOOTSTRAP", "ANPR_DATABASE_URL")}
    script = 'eval "$(make -s infra)" && echo "$ANPR_KAFKA_BOOTSTRAP" && psql "$ANPR_DATABASE_URL" -XAtc "select 41+1"'
    result = subprocess.run(["bash", "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [infra.kafka_bootstrap, "42"]


@pytest.mark.slow
def test_private_instance_recovers_from_kill_and_stale_pid() -> None:
    """A second, isolated instance (own state dir and ports) is killed with SIGKILL and brought back by `up`."""
    # Inside the checkout, not pytest's tmp_path: that is private to root and the database's user must reach it.
    tmp_path = ROOT / ".local" / f"test-instance-{uuid.uuid4().hex[:8]}"
    tmp_path.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("ANPR_KAFKA_BOOTSTRAP", "ANPR_DATABASE_URL")}
    env.update(
        ANPR_LOCAL_STATE_DIR=str(tmp_path / "state"),
        ANPR_LOCAL_KAFKA_PORT="29192",
        ANPR_LOCAL_PG_PORT="56532",
        ANPR_LOCAL_MQTT_PORT="21883",
        ANPR_LOCAL_KAFKA_HEAP="384m",
    )
    try:
        first = _run_cli(["infra", "up"], env)
        assert first.returncode == 0, first.stderr
        exports = dict(re.findall(r"export (\w+)=(\S+)", first.stdout))
        assert exports["ANPR_KAFKA_BOOTSTRAP"] == "127.0.0.1:29192"
        assert ":56532/" in exports["ANPR_DATABASE_URL"]

        kafka_pid = int((tmp_path / "state" / "kafka" / "kafka.pid").read_text())
        pg_home = home_for((tmp_path / "state").resolve())  # in the state dir, or /var/tmp when unreachable
        pg_pid = int((pg_home / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(kafka_pid, signal.SIGKILL)
        os.kill(pg_pid, signal.SIGKILL)
        _wait_gone(kafka_pid)
        _wait_gone(pg_pid)
        assert not broker_answers("127.0.0.1:29192", timeout_ms=2000)

        again = _run_cli(["infra", "up"], env)
        assert again.returncode == 0, again.stderr
        assert again.stdout == first.stdout  # same settings, same credentials
        assert broker_answers("127.0.0.1:29192")
        assert _psql(exports["ANPR_DATABASE_URL"], "select 7*6") == "42"

        # A stale pid file naming a process that is not Kafka (here: this test's own pid is alive, use a dead one).
        new_pid = int((tmp_path / "state" / "kafka" / "kafka.pid").read_text())
        os.kill(new_pid, signal.SIGKILL)
        _wait_gone(new_pid)
        (tmp_path / "state" / "kafka" / "kafka.pid").write_text("999999\n")
        third = _run_cli(["infra", "up"], env)
        assert third.returncode == 0, third.stderr
        assert broker_answers("127.0.0.1:29192")
    finally:
        _run_cli(["infra", "down"], env)
    assert not broker_answers("127.0.0.1:29192", timeout_ms=2000)
    shutil.rmtree(tmp_path)


def _psql(url: str, sql: str) -> str:
    psql = shutil.which("psql") or "psql"
    return subprocess.run([psql, url, "-XAtc", sql], capture_output=True, text=True, check=True).stdout.strip()


def _wait_gone(pid: int) -> None:
    from anpr_stream.devinfra.process import pid_alive

    for _ in range(100):
        if not pid_alive(pid):
            return
        subprocess.run(["sleep", "0.1"], check=False)
    raise AssertionError(f"process {pid} still alive after SIGKILL")


def test_docker_compose_in_step_with_local_scripts() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"apache/kafka:{DEFAULT_VERSION}" in compose, "compose Kafka image differs from the local default"
    for variable in ("ANPR_KAFKA_BOOTSTRAP", "ANPR_DATABASE_URL"):
        assert variable in compose
    assert (ROOT / "deploy" / "Dockerfile").is_file()
    docker = shutil.which("docker")
    has_compose = docker is not None and (
        subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0
    )
    if has_compose:
        assert docker is not None
        result = subprocess.run(
            [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
