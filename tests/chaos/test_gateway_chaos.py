"""Chaos at the camera gateway: cameras post while the broker is stopped for 30 s, and while the gateway itself is
killed with SIGKILL (with reads in its spool). Every read the gateway acknowledged (200) must be stored in PostgreSQL
exactly once; a post that got no answer is the camera's to resend, and resends are the same read."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.chaos.conftest import Servers
from tests.integration.conftest import Namespace
from tests.integration.gateway_support import GatewayProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

RATE = 40.0  # posts a second, 1-3 reads each
CAMERAS = {"vendor-cam-1": "LM-A2-N", "vendor-cam-2": "LM-N78-E", "vendor-cam-3": "LM-B-IN"}


class Cameras:
    """Posts our reading JSON to the gateway at a steady rate; keeps what was acknowledged, resends a share of
    acknowledged posts (as a camera that missed the answer does)."""

    def __init__(self, gateway: GatewayProcess, token: str, seed: int) -> None:
        self.gateway = gateway
        self.token = token
        self.random = random.Random(seed)
        self.acknowledged: set[str] = set()
        self.answers: dict[int, int] = {}
        self.failures = 0
        self.stopping = asyncio.Event()
        self._n = 0
        self._sent: list[bytes] = []

    def _message(self) -> bytes:
        reads = []
        base = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(self.random.randint(1, 3)):
            self._n += 1
            camera = self.random.choice(list(CAMERAS))
            reads.append({
                "read_id": f"evt-{self._n}",
                "camera_id": camera,
                "observed_at": (base + timedelta(microseconds=self._n)).isoformat(),
                "plate": f"1-{'ABCDEFGH'[self._n % 8]}{'KLMNPRST'[(self._n // 8) % 8]}{'XYZ'[(self._n // 64) % 3]}"
                f"-{self._n % 1000:03d}",
                "country": "BE",
                "confidence": round(self.random.uniform(0.6, 1.0), 3),
            })  # fmt: skip
        return orjson.dumps(reads)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            while not self.stopping.is_set():
                started = time.monotonic()
                resend = bool(self._sent) and self.random.random() < 0.05
                body = self.random.choice(self._sent) if resend else self._message()
                try:
                    answer = await client.post(
                        f"{self.gateway.base}/v1/ingest/cams",
                        content=body,
                        headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
                    )
                    self.answers[answer.status_code] = self.answers.get(answer.status_code, 0) + 1
                    if answer.status_code == 200:
                        self.acknowledged.update(answer.json()["read_ids"])
                        self._sent.append(body)
                except httpx.TransportError:
                    self.failures += 1  # the gateway is down: not acknowledged, nothing owed
                await asyncio.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))


async def _stored(ns: Namespace, read_ids: set[str], timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while True:
        conn = await ns.db()
        try:
            rows = await conn.fetch("SELECT read_id, count(*) AS n FROM passages GROUP BY read_id")
        finally:
            await conn.close()
        counts = {r["read_id"]: r["n"] for r in rows}
        if read_ids <= set(counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.5)


@pytest.fixture
def gateway(chaos_ns: Namespace, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(chaos_ns, tmp_path / "gateway")
    yield process
    process.stop()


async def _ready(ns: Namespace, gateway: GatewayProcess) -> str:
    ns.start_worker("w")
    token = gateway.add_source("cams", "anpr", *(f"--camera={k}={v}" for k, v in CAMERAS.items()))
    # The worker creates the topics; posts before that are spooled and drained once they exist.
    gateway.start()
    return token


async def test_kafka_stopped_for_30_s_and_the_gateway_killed_lose_nothing_acknowledged(
    chaos_ns: Namespace, servers: Servers, gateway: GatewayProcess
) -> None:
    token = await _ready(chaos_ns, gateway)
    cameras = Cameras(gateway, token, seed=16)
    posting = asyncio.create_task(cameras.run())
    try:
        await asyncio.sleep(3)
        assert cameras.acknowledged, f"nothing acknowledged before the faults: {cameras.answers}"
        await asyncio.to_thread(servers.kill_broker)
        stopped = time.monotonic()
        await asyncio.sleep(12)
        assert gateway.health()["kafka"] == "down"
        spooled = int(str(gateway.health()["spool_bytes"]))
        assert spooled > 0, "Kafka is down and nothing was spooled"
        gateway.kill()  # SIGKILL with reads in the spool, Kafka still away
        gateway.start()
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        await asyncio.to_thread(servers.restart_broker)
        await asyncio.sleep(8)
        gateway.kill()  # and once more while the spool drains and posts go straight to Kafka
        gateway.start()
        await asyncio.sleep(4)
    finally:
        cameras.stopping.set()
        await posting
    assert cameras.answers.get(200, 0) > 500, cameras.answers
    assert set(cameras.answers) <= {200}, f"answers other than 200: {cameras.answers}"
    counts = await _stored(chaos_ns, cameras.acknowledged, timeout=120)
    missing = cameras.acknowledged - set(counts)
    assert not missing, f"{len(missing)} acknowledged reads not stored, e.g. {sorted(missing)[:5]}"
    assert all(n == 1 for n in counts.values()), "a read was stored twice"
    assert gateway.health()["spool_bytes"] == 0
    print(f"\nacknowledged {len(cameras.acknowledged)} reads; answers {cameras.answers}; "
          f"unanswered while the gateway was down: {cameras.failures}")  # fmt: skip
