"""Scale-out benchmark: reads/s of 1, 2 and 3 workers in one consumer group on the same backlog, every passage to
PostgreSQL, hits and offsets in one Kafka transaction per input partition and batch; plus one worker on a
one-partition topic, which shows what the per-partition transactions cost.

    .venv/bin/python benchmarks/bench_scaleout.py [--reads 100000] [--runs 3] [--workers 1,2,3] [--partitions 6]

Each run has its own topics, consumer group and database schema (dropped at the end): the workers are started on
the empty topic, the group is left to settle, then the backlog is produced; the rate counts from the first read the
workers report (`anpr_reads_total`, summed over their metrics endpoints) to the last. Prints a table (median of the
runs, ratio to one worker); writes benchmarks/results/scaleout.json and benchmarks/latest/scaleout.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import bench_pipeline as bp
import orjson
from aiokafka.admin import AIOKafkaAdminClient

from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.process import stop_children

ROOT = bp.ROOT
RESULTS = bp.RESULTS
LATEST = ROOT / "benchmarks" / "latest"


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


async def stable_members(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return len(described["members"]) if described["state"] == "Stable" else -1
    finally:
        await admin.close()


async def reads_so_far(ports: list[str]) -> float:
    total = 0.0
    for port in ports:
        with contextlib.suppress(OSError):  # not up yet
            total += bp.metric_total(await asyncio.to_thread(bp.scrape, port, 2), "anpr_reads_total")
    return total


async def one_run(
    found: endpoints.Endpoints, pairs: list[tuple[bytes, bytes]], workers: int, partitions: int, label: str
) -> float:
    """Reads/s of `workers` workers on a backlog of `pairs` in a topic of `partitions` partitions."""
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_{tag}"
    admin = await asyncpg.connect(found.database_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.close()
    env = bp.namespace_env(found.kafka_bootstrap, found.database_url, tag, schema, "0")
    env["ANPR_READS_PARTITIONS"] = str(partitions)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        cli = [sys.executable, "-m", "anpr_stream.cli"]
        for step in (["migrate"], ["watchlist", "load", *bp.LISTS]):
            subprocess.run([*cli, *step], env=env, cwd=ROOT, check=True, capture_output=True)
        ports = [free_port() for _ in range(workers)]
        for n, port in enumerate(ports):
            worker_env = {**env, "ANPR_WORKER_ID": f"{env['ANPR_WORKER_ID']}-{n}", "ANPR_METRICS_PORT": port}
            procs.append(bp.start_worker(worker_env, RESULTS / f"scaleout-{label}-{n}.log"))
        deadline = time.monotonic() + 120
        while await stable_members(found.kafka_bootstrap, env["ANPR_CONSUMER_GROUP"]) != workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the group did not settle with {workers} workers; see results/scaleout-*.log")
            await asyncio.sleep(0.5)
        producing = asyncio.create_task(bp.produce(found.kafka_bootstrap, env["ANPR_TOPIC_READS"], pairs))
        first: tuple[float, float] | None = None
        last_progress, last_count = time.monotonic(), 0.0
        while True:
            count = await reads_so_far(ports)
            now = time.perf_counter()
            if count and first is None:
                first = (now, count)
            if count >= len(pairs):
                await producing
                assert first is not None
                return (count - first[1]) / (now - first[0])
            if count > last_count:
                last_progress, last_count = time.monotonic(), count
            if time.monotonic() - last_progress > 120 or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{label}: stalled at {count:.0f} of {len(pairs)}; see results/scaleout-*.log")
            await asyncio.sleep(0.1)
    finally:
        for proc in procs:
            stop_children(proc)
        admin = await asyncpg.connect(found.database_url)
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def report(rows: list[dict[str, Any]], reads: int, cores: int) -> str:
    base = next(r["median"] for r in rows if r["workers"] == 1 and r["partitions"] > 1)
    lines = [
        "# Scale-out benchmark",
        "",
        f"{datetime.now(UTC).isoformat(timespec='seconds')}: `benchmarks/bench_scaleout.py`, backlog of {reads:,} "
        f"reads of generated zone traffic, on {cores} cores shared by Kafka, PostgreSQL, the workers and the "
        "producer. Reads/s from the first read the workers report to the last; median of the runs.",
        "",
        "| workers | partitions | reads/s (runs) | median | × 1 worker |",
        "|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        runs = ", ".join(f"{v:,.0f}" for v in r["runs"])
        lines.append(f"| {r['workers']} | {r['partitions']} | {runs} | {r['median']:,.0f} | {r['median'] / base:.2f} |")
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--partitions", type=int, default=6)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    print(f"generating {args.reads:,} reads ...", flush=True)
    pairs = bp.reads(args.reads, datetime.now(UTC) - timedelta(hours=7))
    plan = [(1, 1)] + [(int(w), args.partitions) for w in args.workers.split(",")]
    rows = []
    for workers, partitions in plan:
        runs = []
        for n in range(args.runs):
            label = f"{workers}w{partitions}p-{n}"
            rate = await one_run(found, pairs, workers, partitions, label)
            print(f"{workers} worker(s), {partitions} partition(s), run {n + 1}: {rate:,.0f} reads/s", flush=True)
            runs.append(rate)
        rows.append({"workers": workers, "partitions": partitions, "runs": runs, "median": statistics.median(runs)})
    text = report(rows, len(pairs), os.cpu_count() or 0)
    (RESULTS / "scaleout.json").write_text(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    LATEST.mkdir(exist_ok=True)
    (LATEST / "scaleout.md").write_text(text)
    print()
    print(text)


if __name__ == "__main__":
    task_loop = asyncio.new_event_loop()
    task = task_loop.create_task(main())
    # SIGTERM (e.g. a CI timeout) cancels the run, so each run's clean-up still stops its workers and drops its schema.
    task_loop.add_signal_handler(signal.SIGTERM, task.cancel)
    task_loop.run_until_complete(task)
