"""Fixtures for pipeline tests: an isolated namespace (topics, consumer group, database schema) per test, and the
worker as a real subprocess that can be started, stopped and killed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from anpr_stream.devinfra.endpoints import isolated_env
from anpr_stream.devinfra.process import stop_children
from tests.conftest import Infra

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class Namespace:
    infra: Infra
    tag: str
    schema: str
    env: dict[str, str]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def reads(self) -> str:
        return self.env["ANPR_TOPIC_READS"]

    @property
    def hits(self) -> str:
        return self.env["ANPR_TOPIC_HITS"]

    @property
    def dlq(self) -> str:
        return self.env["ANPR_TOPIC_DLQ"]

    @property
    def watchlist(self) -> str:
        return self.env["ANPR_TOPIC_WATCHLIST"]

    @property
    def database_url(self) -> str:
        return self.env["ANPR_DATABASE_URL"]

    def cli(self, *args: str, timeout: float = 120, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "anpr_stream.cli", *args],
            env=self.env, cwd=ROOT, capture_output=True, timeout=timeout, input=input, check=False,
        )  # fmt: skip

    def start_worker(self, name: str = "1", extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"worker-{self.tag}-{name}.log", "ab")  # noqa: SIM115 -- handed to the child
        env = {**self.env, "ANPR_WORKER_ID": f"{self.tag}-{name}", **(extra_env or {})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "anpr_stream.cli", "worker", "--loglevel", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        self.workers.append(proc)
        return proc

    def add_user(self, name: str, role: str, cameras: list[str] | None = None, covert: bool = False) -> str:
        """Create an API user with `anpr-stream users add` and return its token."""
        args = ["users", "add", name, "--role", role]
        args += ["--cameras", ",".join(cameras)] if cameras else []
        args += ["--covert"] if covert else []
        made = self.cli(*args)
        assert made.returncode == 0, made.stderr.decode()
        return made.stdout.decode().strip()

    def start_api(self, extra_env: dict[str, str] | None = None, timeout: float = 60.0) -> str:
        """Serve `anpr-stream api` on a free loopback port; returns its base URL once it answers."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"api-{self.tag}-{port}.log", "ab")  # noqa: SIM115 -- handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "anpr_stream.cli", "api", "--port", str(port), "--loglevel", "warning"],
            env={**self.env, **(extra_env or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.apis.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"api exited with {proc.returncode}: see {ARTIFACTS}/api-{self.tag}-{port}.log"
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"api did not answer on {base} within {timeout} s")

    def stop_workers(self) -> None:
        """Stop the APIs and workers this namespace started (SIGTERM, then SIGKILL after 30 s)."""
        stop_children(*self.apis, *self.workers)
        self.apis.clear()
        self.workers.clear()

    async def produce(
        self, values: list[bytes | None], keys: list[bytes | None] | None = None, topic: str = ""
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.infra.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = []
            for i, value in enumerate(values):
                key = keys[i] if keys is not None else b"cam"
                futures.append(await producer.send(topic or self.reads, value=value, key=key))
            await producer.flush()
            for future in futures:
                await future
        finally:
            await producer.stop()

    async def consume(self, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
        """Read `count` records (or all there are after timeout) from the beginning, read_committed."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.infra.kafka_bootstrap, group_id=None, isolation_level="read_committed",
            enable_auto_commit=False,
        )  # fmt: skip
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            out: list[Any] = []
            deadline = asyncio.get_running_loop().time() + timeout
            while len(out) < count and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                out += [r for rs in batch.values() for r in rs]
            return out
        finally:
            await consumer.stop()

    async def hits_payloads(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in await self.consume(self.hits, count, timeout)]

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def wait_for_rows(self, sql: str, expected: int, timeout: float = 60.0, *args: object) -> int:
        conn = await self.db()
        try:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                got = int(await conn.fetchval(sql, *args))
                if got >= expected or asyncio.get_running_loop().time() > deadline:
                    return got
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    async def all_decided(self, timeout: float = 60.0) -> None:
        """Until no stored hit waits for the watermark (an alert waits until every partition is stored past it or
        idle: ANPR_IDLE_PARTITION_SECONDS after its last read)."""
        got = await self.wait_for_rows("SELECT 1 - sign(count(*)) FROM hits WHERE suppressed IS NULL", 1, timeout)
        assert got == 1, "hits still pending"


@contextlib.asynccontextmanager
async def open_namespace(infra: Infra, reads_partitions: int = 3) -> AsyncIterator[Namespace]:
    """Topics, consumer group and database schema of their own (migrated); workers stopped and schema dropped after."""
    tag = uuid.uuid4().hex[:8]
    schema = f"t_{tag}"
    conn = await asyncpg.connect(infra.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    env = isolated_env(
        infra.kafka_bootstrap,
        infra.database_url,
        "t",
        tag,
        schema,
        ANPR_METRICS_PORT="0",
        ANPR_READS_PARTITIONS=str(reads_partitions),
        ANPR_HITS_PARTITIONS="1",
        ANPR_IDLE_PARTITION_SECONDS="0.5",  # tests leave most partitions empty; the scale-out test sets the default
    )
    ns = Namespace(infra, tag, schema, env)
    try:
        migrated = ns.cli("migrate")
        assert migrated.returncode == 0, migrated.stderr.decode()
        yield ns
    finally:
        ns.stop_workers()
        conn = await asyncpg.connect(infra.database_url)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture
async def namespace(infra: Infra) -> AsyncIterator[Namespace]:
    async with open_namespace(infra) as ns:
        yield ns


@pytest.fixture
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS
