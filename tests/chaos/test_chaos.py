"""Chaos: the worker as a real process against the real broker and PostgreSQL, while reads flow at a steady rate with
resends and hypothesis-generated contract-breaking messages among them. SIGKILL of the worker, of the broker and of
the postmaster, each alone and all in one run; SIGTERM with both servers gone. Each run asserts that every valid read
is stored once, that the hits topic (read_committed) holds exactly the reference matcher's hits, none twice, that
every invalid record is in the DLQ once with a reason and a stage, that the worker is still up, and how long it took
to resume after each fault (README, Failover). The figures land in test-artifacts/chaos-report.json."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from anpr_stream.devinfra import process
from tests.chaos.conftest import Servers
from tests.chaos.traffic import Generator, broken_messages, check, committed_offsets, watchlist_csv
from tests.integration.conftest import ARTIFACTS, Namespace

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

RATE = 300.0  # reads a second
RESUME_LIMIT = 5.0  # seconds (the bound)
REPORT = ARTIFACTS / "chaos-report.json"


class Progress:
    """Polls how far the worker has got: the passages it stored (reconnecting through a database outage) and the
    offsets its transactions committed (hits and dead letters published with them)."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self._conn: asyncpg.Connection | None = None

    async def count(self) -> int | None:
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.ns.database_url, timeout=1)
            return int(await self._conn.fetchval("SELECT count(*) FROM passages", timeout=1))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            self._conn = None
            return None

    async def committed(self) -> int | None:
        try:
            return sum((await committed_offsets(self.ns)).values())
        except Exception:  # the broker is away
            return None

    async def first_growth(self, since: float, baseline: int | None = None, timeout: float = 60.0) -> float:
        """Seconds from `since` (monotonic) until the worker has both stored a passage and committed offsets beyond
        what it had (by default: at the time of the call): it processes again, end to end."""
        while baseline is None:
            baseline = await self.count()
        committed = None
        while committed is None:
            committed = await self.committed()
        stored = False
        while time.monotonic() - since < timeout:
            if not stored:
                got = await self.count()
                stored = got is not None and got > baseline
            if stored:
                now_committed = await self.committed()
                if now_committed is not None and now_committed > committed:
                    return time.monotonic() - since
            await asyncio.sleep(0.05)
        conn = await asyncpg.connect(self.ns.database_url)
        try:
            pending = await conn.fetchval("SELECT count(*) FROM hits WHERE suppressed IS NULL")
            progress = [dict(r) for r in await conn.fetch("SELECT * FROM read_progress")]
        finally:
            await conn.close()
        raise AssertionError(
            f"not processing {timeout:.0f} s after the fault (stored: {stored}; pending hits {pending}; "
            f"committed {await committed_offsets(self.ns)}; progress {progress})"
        )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def run_scenario(
    ns: Namespace,
    seed: int,
    faults: Callable[[Namespace, Progress, list[subprocess.Popen[bytes]]], Awaitable[dict[str, float]]],
    limit: float = RESUME_LIMIT,
) -> dict[str, object]:
    list_csv = watchlist_csv()
    (ARTIFACTS / f"chaos-{ns.tag}.csv").parent.mkdir(exist_ok=True)
    (ARTIFACTS / f"chaos-{ns.tag}.csv").write_text(list_csv)
    assert ns.cli("watchlist", "load", str(ARTIFACTS / f"chaos-{ns.tag}.csv")).returncode == 0
    workers = [ns.start_worker("w")]
    generator = Generator(ns, seed, RATE, broken_messages(120, seed))
    stored = Progress(ns)
    running = asyncio.create_task(generator.run())
    try:
        await stored.first_growth(time.monotonic(), 0, timeout=60)  # the worker is up and storing
        resume = await faults(ns, stored, workers)
    finally:
        generator.stopping.set()
        await running
        await stored.close()
    outcome = await check(ns, list_csv)
    assert workers[-1].poll() is None, "the worker died"
    for name, seconds in resume.items():
        assert seconds <= limit, f"{name}: resumed after {seconds:.2f} s"
    result = {**outcome, "resent": generator.sent.resent, "resume_seconds": resume}
    print(f"\n{json.dumps(result)}")
    return result


def record(name: str, result: dict[str, object]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[name] = result
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")


async def kill_worker(ns: Namespace, stored: Progress, workers: list[subprocess.Popen[bytes]]) -> float:
    """SIGKILL of the only worker and an immediate restart: seconds from the new process's start to storing."""
    workers[-1].send_signal(signal.SIGKILL)
    await asyncio.to_thread(workers[-1].wait)
    baseline = await stored.count()
    started = time.monotonic()
    workers.append(ns.start_worker("w"))  # the same ANPR_WORKER_ID: the same static group member
    return await stored.first_growth(started, baseline)


async def kill_broker(servers: Servers, stored: Progress, down: float = 2.0) -> float:
    """SIGKILL of the broker, restarted `down` s later: seconds from it answering requests to storing."""
    await asyncio.to_thread(servers.kill_broker)
    await asyncio.sleep(down)
    ready = await asyncio.to_thread(servers.restart_broker)
    return await stored.first_growth(ready)


async def kill_postmaster(servers: Servers, stored: Progress, down: float = 2.0) -> float:
    """SIGKILL of the postmaster, restarted `down` s later: seconds from it accepting connections to storing."""
    await asyncio.to_thread(servers.kill_postmaster)
    await asyncio.sleep(down)
    ready = await asyncio.to_thread(servers.restart_postgres)
    return await stored.first_growth(ready)


async def test_sigkill_of_the_worker(chaos_ns: Namespace) -> None:
    async def faults(ns: Namespace, stored: Progress, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        await asyncio.sleep(4)
        first = await kill_worker(ns, stored, workers)
        await asyncio.sleep(4)
        second = await kill_worker(ns, stored, workers)
        await asyncio.sleep(3)
        return {"worker restart 1": first, "worker restart 2": second}

    record("worker", await run_scenario(chaos_ns, 1, faults))


@pytest.mark.parametrize("server", ["broker", "postgres"])
async def test_sigkill_of_a_server(chaos_ns: Namespace, servers: Servers, server: str) -> None:
    kill = kill_broker if server == "broker" else kill_postmaster

    async def faults(ns: Namespace, stored: Progress, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        await asyncio.sleep(4)
        resumed = await kill(servers, stored)
        await asyncio.sleep(4)
        return {f"{server} restart": resumed}

    record(server, await run_scenario(chaos_ns, 2, faults))


async def test_every_fault_in_one_run(chaos_ns: Namespace, servers: Servers) -> None:
    async def faults(ns: Namespace, stored: Progress, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        await asyncio.sleep(3)
        worker = await kill_worker(ns, stored, workers)
        await asyncio.sleep(3)
        broker = await kill_broker(servers, stored)
        await asyncio.sleep(3)
        postgres = await kill_postmaster(servers, stored)
        await asyncio.sleep(2)
        # The worker and the broker at once: the restarted worker waits for the broker.
        workers[-1].send_signal(signal.SIGKILL)
        await asyncio.to_thread(workers[-1].wait)
        await asyncio.to_thread(servers.kill_broker)
        workers.append(ns.start_worker("w"))
        ready = await asyncio.to_thread(servers.restart_broker)
        both = await stored.first_growth(ready)
        await asyncio.sleep(3)
        return {"worker": worker, "broker": broker, "postgres": postgres, "worker and broker at once": both}

    record("all", await run_scenario(chaos_ns, 4, faults))


async def send_to_every_partition(ns: Namespace) -> dict[int, int]:
    """A valid read on each partition of the reads topic (explicit partition): {partition: its offset}."""
    producer = AIOKafkaProducer(bootstrap_servers=ns.infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(ns.reads))
        at = datetime.now(UTC).isoformat()
        out = {}
        for p in partitions:
            body = {"read_id": f"takeover-{p}", "camera_id": "LM-EISDEN", "observed_at": at,
                    "plate": f"1-TKO-{p:03d}", "country": "BE", "confidence": 0.9}  # fmt: skip
            sent = await producer.send_and_wait(ns.reads, orjson.dumps(body), key=b"takeover", partition=p)
            out[p] = sent.offset
        return out
    finally:
        await producer.stop()


async def test_a_dead_workers_partitions_are_processed_again_within_the_session_timeout(chaos_ns: Namespace) -> None:
    """Two workers; one is killed and not restarted: the other takes its partitions over once the dead member's
    session (ANPR_SESSION_TIMEOUT_SECONDS, 8 s) has expired."""
    session = 8.0

    async def faults(ns: Namespace, stored: Progress, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        workers.insert(0, ns.start_worker("second"))
        await asyncio.sleep(8)  # both in the group, partitions shared
        workers[-1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await asyncio.to_thread(workers[-1].wait)
        workers.pop()
        # One valid read sent to every partition after the kill: the generator's keys need not reach every partition
        # (six cameras over three partitions; the hostile messages run out), so without it a partition of the dead
        # worker may have nothing new to process, and its standing still would prove nothing either way.
        markers = await send_to_every_partition(ns)
        # Every partition committed beyond its marker: the dead worker's ones too.
        while True:
            now = await committed_offsets(ns)
            if all(now.get(p, -1) > offset for p, offset in markers.items()):
                break
            assert time.monotonic() - killed < session + 10, f"not taken over: {markers} -> {now}"
            await asyncio.sleep(0.05)
        took = time.monotonic() - killed
        await asyncio.sleep(2)
        return {"partitions of a dead worker taken over": took}

    record("takeover", await run_scenario(chaos_ns, 5, faults, limit=session + 4))


async def test_sigterm_stops_the_worker_in_bounded_time_with_both_servers_gone(
    chaos_ns: Namespace, servers: Servers
) -> None:
    ns = chaos_ns
    worker = ns.start_worker("t", {"ANPR_SHUTDOWN_SECONDS": "5"})
    body = {"read_id": "t-1", "camera_id": "LM-EISDEN", "observed_at": datetime.now(UTC).isoformat(),
            "plate": "1-ABC-123", "country": "BE", "confidence": 0.9}  # fmt: skip
    await ns.produce([orjson.dumps(body)])
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 1, timeout=60) == 1, "the worker is up"
    await asyncio.to_thread(servers.kill_broker)
    await asyncio.to_thread(servers.kill_postmaster)
    try:
        await asyncio.sleep(2)  # the worker notices
        began = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 30)
        took = time.monotonic() - began
        print(f"\nSIGTERM with broker and database down: exited in {took:.1f} s (status {worker.returncode})")
        assert took <= 5 + 1, "within ANPR_SHUTDOWN_SECONDS"
        assert worker.returncode == 0, "a clean stop, not the hard exit"
        record("shutdown", {"sigterm_exit_seconds": round(took, 2), "status": worker.returncode})
    finally:
        await asyncio.to_thread(servers.restart_broker)
        await asyncio.to_thread(servers.restart_postgres)
    assert process.pid_alive(worker.pid) is False
