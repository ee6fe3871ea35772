"""`anpr-stream demo` (what `make demo` runs): the whole service on the bundled recorded sample of the zone.

Infra (environment first, else local), schema, watchlists, a worker process, a replay of six hours of traffic with
planted gang vehicles, biker convoys, stolen cars and OCR errors, hits printed as they arrive, and a summary checked
against the sample's ground truth. Each run uses its own topics and a fresh `demo` schema, so runs never mix."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer

from anpr_stream.commands.replay import replay
from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.paths import project_root, state_dir
from anpr_stream.devinfra.process import stop_children, tail
from anpr_stream.stream.compacted import open_from_beginning, records_to_end

SCHEMA = "demo"
COLOURS = {1: "\033[1;31m", 2: "\033[33m", 3: "\033[36m"}
RESET = "\033[0m"


def _line(hit: dict[str, Any], colour: bool) -> str:
    read, camera, entry = hit["read"], hit["camera"], hit["entry"]
    at = datetime.fromisoformat(read["observed_at"]).astimezone().strftime("%H:%M:%S")
    what = entry["instruction"] if entry.get("covert") else f"{hit['list']:<15} {hit['action']:<9}"
    listed = "(covert)" if entry.get("covert") else entry["plate"]
    kind = hit["match"] + (f"/{hit['distance']}" if hit["distance"] else "")
    priority = "--" if hit["priority"] is None else f"P{hit['priority']}"  # covert hits carry no priority
    text = (
        f"{at}  {priority}  {what}  read {read['plate']!r:<14} list {listed!s:<12} {kind:<8} "
        f"{camera['name'] or camera['camera_id']}"
    )
    start = COLOURS.get(hit["priority"], "") if colour else ""
    return f"{start}{text}{RESET if start else ''}"


async def _wait_count(
    conn: asyncpg.Connection, sql: str, expected: int, timeout: float, worker: subprocess.Popen[bytes]
) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with status {worker.returncode}")
        got = int(await conn.fetchval(sql))
        if got >= expected:
            return got
        await asyncio.sleep(0.25)
    return got


async def run_demo(keep_running: bool, speed: float = 720.0) -> int:
    root = project_root()
    sample = root / "deploy" / "demo" / "zone-sample.jsonl.gz"
    truth = orjson.loads((root / "deploy" / "demo" / "zone-truth.json").read_bytes())
    lists = [*sorted((root / "watchlists").glob("*.csv")), root / "deploy" / "demo" / "zone-watchlist.csv"]
    print("demo: starting Kafka and PostgreSQL (or using ANPR_KAFKA_BOOTSTRAP / ANPR_DATABASE_URL)", flush=True)
    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    admin = await asyncpg.connect(found.database_url)
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    await admin.close()
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    env = endpoints.isolated_env(
        found.kafka_bootstrap,
        found.database_url,
        "demo",
        run,
        SCHEMA,
        ANPR_MATCH_POLICY=os.environ.get("ANPR_MATCH_POLICY", "default=fuzzy:1"),
        ANPR_WORKER_ID="demo",
        ANPR_METRICS_PORT=str(_free_port()),
    )
    cli = [sys.executable, "-m", "anpr_stream.cli"]
    for step in (["migrate"], ["watchlist", "load", *map(str, lists)]):
        done = subprocess.run([*cli, *step], env=env, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 3):
            print(f"demo: {' '.join(step[:2])} failed:\n{done.stderr}", file=sys.stderr)
            return 1
        print(f"demo: {done.stdout.strip()}", flush=True)
    login = f"anpr_demo_{run}"
    worker_env = {**env, "ANPR_DATABASE_URL": _service_login(cli, env, login)}
    log_path = state_dir() / "demo-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [*cli, "worker", "--loglevel", "warning"], env=worker_env, stdout=log, stderr=subprocess.STDOUT
        )
    print(f"demo: worker started (pid {worker.pid}, log {log_path}); match policy {env['ANPR_MATCH_POLICY']}")
    api: subprocess.Popen[bytes] | None = None
    try:
        try:
            ok = await _replay_and_report(worker, env, found.kafka_bootstrap, sample, truth, speed)
        except RuntimeError as exc:
            print(f"demo: {exc}; worker log tail:\n{tail(log_path)}", file=sys.stderr)
            ok = False
        if ok and keep_running:
            api = _start_api(cli, env, worker_env)
            topic = env["ANPR_TOPIC_READS"]
            print(f"demo: the worker keeps running (pid {worker.pid}), reads topic {topic}; Ctrl-C stops it")
            with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
                await asyncio.to_thread(worker.wait)
    finally:
        stop_children(api, worker)
        if worker_env["ANPR_DATABASE_URL"] != env["ANPR_DATABASE_URL"]:
            admin = await asyncpg.connect(env["ANPR_DATABASE_URL"])
            try:
                await admin.execute(f'DROP ROLE IF EXISTS "{login}"')  # a name made here, not input
            finally:
                await admin.close()
    return 0 if ok else 1


def _start_api(cli: list[str], env: dict[str, str], service_env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """With --keep-running: the query API, the dispatch console and the workspace on 127.0.0.1 (ANPR_DEMO_API_PORT,
    default 8080), as the worker's login, with a dispatcher, an investigator and a DPO made for the demo (tokens
    printed once)."""
    tokens = {}
    users = (("demo-dispatcher", "dispatcher"), ("demo-investigator", "investigator"), ("demo-dpo", "dpo"))
    for name, role in users:
        done = subprocess.run([*cli, "users", "add", name, "--role", role], env=env, capture_output=True, text=True,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            print(f"demo: users add {name} failed: {done.stderr.strip()}", file=sys.stderr)
            return None
        tokens[role] = done.stdout.strip()
    port = os.environ.get("ANPR_DEMO_API_PORT", "8080")
    log_path = state_dir() / "demo-api.log"
    with open(log_path, "wb") as log:
        api = subprocess.Popen(
            [*cli, "api", "--port", port, "--loglevel", "warning"], env=service_env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    print(
        f"demo: dispatch console http://127.0.0.1:{port}/console, investigators' and DPO's workspace "
        f"http://127.0.0.1:{port}/workspace (log {log_path})"
    )
    for role, token in tokens.items():
        print(f"demo:   {role:<12} token {token}")
    return api


def _service_login(cli: list[str], env: dict[str, str], name: str) -> str:
    """The worker runs as a least-privilege login (member of anpr_service), made for this run and dropped after it
    (role names are cluster-wide: a name per run keeps concurrent demos apart). Where the database role may not
    create roles, the worker keeps the owner's URL and the demo says so."""
    done = subprocess.run([*cli, "db", "create-service-login", name], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        print(f"demo: the worker connects as the schema owner ({done.stderr.strip()})", flush=True)
        return env["ANPR_DATABASE_URL"]
    print(f"demo: the worker connects as {name}, a least-privilege member of anpr_service", flush=True)
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_ready(port: str, worker: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """The worker serves metrics once its watchlist is loaded and its pipeline built: then it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with status {worker.returncode}")
        try:
            text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        except OSError:
            await asyncio.sleep(0.25)
            continue
        if re.search(r"^anpr_watchlist_entries [1-9]", text, re.MULTILINE):
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the worker was not ready after {timeout:.0f} s")


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        body: bytes = response.read()
        return body.decode()


async def _replay_and_report(
    worker: subprocess.Popen[bytes],
    env: dict[str, str],
    bootstrap: str,
    sample: Path,
    truth: dict[str, Any],
    speed: float,
) -> bool:
    hits: dict[str, dict[str, Any]] = {}
    latencies: list[float] = []
    colour = sys.stdout.isatty()
    consumer = AIOKafkaConsumer(
        env["ANPR_TOPIC_HITS"], bootstrap_servers=bootstrap, group_id=None,
        isolation_level="read_committed", auto_offset_reset="earliest", fetch_max_wait_ms=10,
    )  # fmt: skip
    await consumer.start()
    stop = asyncio.Event()

    async def show_hits() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            received = time.time()
            for records in batch.values():
                for record in records:
                    hit = orjson.loads(record.value)
                    if hit["hit_id"] in hits:
                        continue
                    hits[hit["hit_id"]] = hit
                    appended = (
                        datetime.fromisoformat(hit["detected_at"]).timestamp() - hit["latency_ms"]["since_kafka"] / 1000
                    )
                    latencies.append(received - appended)
                    if not hit["suppressed"]:
                        print(_line(hit, colour), flush=True)

    shower = asyncio.create_task(show_hits())
    try:
        await _wait_ready(env["ANPR_METRICS_PORT"], worker)
        pace = f"{speed:g}x real time" if speed else "as fast as possible"
        print(f"demo: worker ready; replaying {sample.name} ({truth['lines']} lines, six hours ending now, {pace})\n")
        # Recorded traffic: shifted so that its six hours end now (reads from the future are rejected), replayed at
        # `speed` times real time (0: as fast as possible).
        start = datetime.now(UTC) - timedelta(hours=6, minutes=1)
        stats = await replay(
            sample, bootstrap, env["ANPR_TOPIC_READS"], speed=speed or None, shift_to_now=True, now=start
        )
        conn = await asyncpg.connect(env["ANPR_DATABASE_URL"])
        try:
            stored = await _wait_count(conn, "SELECT count(*) FROM passages", truth["reads"], 180, worker)
            # The last alerts wait for the watermark: every partition idle (ANPR_IDLE_PARTITION_SECONDS) after the end.
            await _wait_count(conn, "SELECT 1 - sign(count(*)) FROM hits WHERE suppressed IS NULL", 1, 30, worker)
            await asyncio.sleep(1)  # let the last hits reach the console
            by_list = await conn.fetch(
                "SELECT list, match_kind, count(*) AS n, count(*) FILTER (WHERE suppressed) AS s "
                "FROM hits GROUP BY 1, 2 ORDER BY 1, 2"
            )
            hit_reads = {r["read_id"] for r in await conn.fetch("SELECT read_id FROM hits")}
        finally:
            await conn.close()
    finally:
        stop.set()
        await shower
        await consumer.stop()
    dead = await _count_topic(bootstrap, env["ANPR_TOPIC_DLQ"])
    expected = {r["read_id"] for r in truth["planted_reads"] if r["expect_hit"]}
    found_expected = len(expected & hit_reads)
    latencies.sort()
    print("\n== summary ==")
    print(f"reads replayed       {stats.lines:>8}   ({stats.elapsed:.1f} s)")
    print(f"passages stored      {stored:>8}   (expected {truth['reads']})")
    print(f"rejected to DLQ      {dead:>8}   (expected {len(truth['invalid_lines'])} invalid lines)")
    dispatched = sum(1 for h in hits.values() if not h["suppressed"])
    total, repeats = sum(r["n"] for r in by_list), sum(r["s"] for r in by_list)
    print(f"hits                 {total:>8}   dispatched {dispatched}, suppressed repeats {repeats}")
    for row in by_list:
        print(f"  {row['list']:<18} {row['match_kind']:<8} {row['n']:>5}")
    print(f"planted reads found  {found_expected:>8}   of {len(expected)} that must hit")
    if latencies:
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        print(f"hit latency          p50 {1000 * statistics.median(latencies):.0f} ms, p99 {1000 * p99:.0f} ms "
              "(Kafka append -> hit readable on the hits topic)")  # fmt: skip
    print(f"\ndata: psql \"$ANPR_DATABASE_URL\" -c 'SET search_path={SCHEMA}; SELECT * FROM hits LIMIT 5'")  # noqa: S608
    return stored >= truth["reads"] and found_expected == len(expected)


async def _count_topic(bootstrap: str, topic: str) -> int:
    consumer = await open_from_beginning(bootstrap, topic)
    try:
        return sum([1 async for _ in records_to_end(consumer)])
    finally:
        await consumer.stop()


async def _until_terminated(keep_running: bool, speed: float) -> int:
    """SIGTERM (`kill`, or make passing it on) stops the demo as Ctrl-C does: its worker and API are stopped too
    (the default action would end this process alone and leave them running)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_demo(keep_running, speed)
    except asyncio.CancelledError:
        print("demo: terminated; worker and API stopped", file=sys.stderr)
        return 128 + signal.SIGTERM


def main(keep_running: bool = False, speed: float = 720.0) -> int:
    return asyncio.run(_until_terminated(keep_running, speed))


if __name__ == "__main__":
    sys.exit(main(keep_running="--keep-running" in sys.argv))
