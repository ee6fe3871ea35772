"""End-to-end benchmark of one worker: reads/s with every passage logged to PostgreSQL, against a raw aiokafka
getmany + orjson loop over the same reads on the same broker in the same run, and hit latency at a sustained rate.

    .venv/bin/python benchmarks/bench_pipeline.py [--reads 200000] [--rate 5000] [--latency-seconds 30]

Starts (or uses, per ANPR_KAFKA_BOOTSTRAP / ANPR_DATABASE_URL) the infrastructure; works in its own topics,
consumer groups and database schema, and drops the schema at the end. Prints a table; writes
benchmarks/results/pipeline.json."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from anpr_stream.cameras import CameraRegistry
from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.process import stop_children
from anpr_stream.traffic import generate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LISTS = sorted(str(p) for p in (ROOT / "watchlists").glob("*.csv"))
CAMERAS = [camera.camera_id for camera in CameraRegistry.load() if not camera.mobile]


def scrape(port: str, timeout: float = 5) -> str:
    """The worker's Prometheus metrics page."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:
        return str(response.read().decode())


def metric_total(text: str, name: str) -> float:
    """Sum of a metric's samples over all its labels (e.g. anpr_reads_total over outcomes)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def phase_profile(port: str, before: dict[str, tuple[float, float]] | None = None) -> dict[str, tuple[float, float]]:
    """(seconds, batches) per phase from the worker's own histogram; minus `before` when given."""
    text = scrape(port)
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("anpr_batch_phase_seconds_sum") or line.startswith("anpr_batch_phase_seconds_count"):
            name, value = line.rsplit(" ", 1)
            phase = name.split('phase="')[1].split('"')[0]
            (sums if "_sum" in name else counts)[phase] = float(value)
    out = {phase: (sums[phase], counts.get(phase, 0.0)) for phase in sums}
    if before:
        out = {k: (v[0] - before.get(k, (0, 0))[0], v[1] - before.get(k, (0, 0))[1]) for k, v in out.items()}
    return out


def reads(count: int, start: datetime) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs of realistic zone traffic (the traffic generator: formats, OCR errors, repeats)."""
    stream = generate(seed=42, start=start, duration=timedelta(hours=6), reads_per_day=count * 6)
    return [(r["camera_id"].encode(), orjson.dumps(r)) for r in itertools.islice(stream, count)]


async def produce(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for chunk_start in range(0, len(pairs), 5000):
            futures = [await producer.send(topic, value=v, key=k) for k, v in pairs[chunk_start : chunk_start + 5000]]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_loop(bootstrap: str, topic: str, count: int, timeline: list[tuple[float, int]] | None = None) -> float:
    """The ceiling: a consumer group reading and decoding every message, doing nothing else. Returns reads/s;
    `timeline` (when given) receives (time.time(), reads so far) after every batch."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        seen = 0
        started = 0.0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for records in batch.values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
            if batch:
                if timeline is not None:
                    timeline.append((time.time(), seen))
                await consumer.commit()
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def count_rows(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`anpr-stream worker` as a subprocess in its own session, output to `log_path`."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "anpr_stream.cli", "worker", "--loglevel", "warning"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


async def worker_throughput(env: dict[str, str], url: str, expected: int) -> tuple[float, subprocess.Popen[bytes]]:
    """Start a worker on the backlog; reads/s from the first stored passage to the last (startup excluded)."""
    log_path = RESULTS / "bench-worker.log"
    proc = start_worker(env, log_path)
    conn = await asyncpg.connect(url)
    try:
        first_count, first_time = 0, 0.0
        while True:
            got = int(await conn.fetchval("SELECT count(*) FROM passages"))
            now = time.perf_counter()
            if got and not first_time:
                first_count, first_time = got, now
            if got >= expected:
                return (got - first_count) / (now - first_time), proc
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}; see {log_path}")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def latency(
    env: dict[str, str], rate: int, seconds: float, listed: list[str], cameras: int = 1
) -> dict[str, Any]:
    """Produce `rate` reads/s for `seconds` (2% carry listed plates); measure, per dispatched hit, the time from the
    read's Kafka append to the hit being readable (read_committed) on the hits topic."""
    samples, detect, achieved = await latency_samples(env, rate, seconds, listed, cameras=cameras)
    return latency_summary(samples, detect, rate, achieved)


async def latency_samples(
    env: dict[str, str],
    rate: int,
    seconds: float,
    listed: list[str],
    read_prefix: str = "lat",
    cameras: int = 1,
) -> tuple[list[float], list[float], float]:
    """(end-to-end seconds per dispatched hit, seconds until matched in the worker per hit, achieved reads/s).
    Every 50th read carries the next plate of `listed`: give each run its own plates (and `read_prefix`) so that
    no hit is a suppressed repeat of an earlier run's."""
    bootstrap = env["ANPR_KAFKA_BOOTSTRAP"]
    hits_consumer = AIOKafkaConsumer(
        env["ANPR_TOPIC_HITS"], bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
        auto_offset_reset="latest", fetch_max_wait_ms=5,
    )  # fmt: skip
    await hits_consumer.start()
    await hits_consumer.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=1)
    await producer.start()
    samples: list[float] = []
    detect: list[float] = []  # read appended -> hit matched in the worker (before its database write and commit)
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            batch = await hits_consumer.getmany(timeout_ms=100)
            received = time.time()
            for records in batch.values():
                for record in records:
                    hit = orjson.loads(record.value)
                    if hit["suppressed"]:
                        continue
                    detected = datetime.fromisoformat(hit["detected_at"]).timestamp()
                    appended = detected - hit["latency_ms"]["since_kafka"] / 1000
                    samples.append(received - appended)
                    detect.append(hit["latency_ms"]["since_kafka"] / 1000)

    collector = asyncio.create_task(collect())
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    sent = 0
    started = time.perf_counter()
    try:
        for step in range(int(seconds / tick)):
            target = started + step * tick
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = datetime.now(UTC)
            for _ in range(per_tick):
                sent += 1
                # every 50th read is a listed plate, each a different entry: no repeat suppression
                plate = listed[(sent // 50) % len(listed)] if sent % 50 == 0 else f"1-LAT-{sent % 1000:03d}"
                camera = CAMERAS[sent % cameras]  # several cameras: batches span partitions (and transactions)
                body = {"read_id": f"{read_prefix}-{sent}", "camera_id": camera,
                        "observed_at": now.isoformat(), "plate": plate, "country": "BE", "confidence": 0.9}  # fmt: skip
                await producer.send(env["ANPR_TOPIC_READS"], value=orjson.dumps(body), key=camera.encode())
        achieved = sent / (time.perf_counter() - started)
        await asyncio.sleep(3)
    finally:
        stop.set()
        await collector
        await producer.stop()
        await hits_consumer.stop()
    return samples, detect, achieved


def latency_summary(samples: list[float], detect: list[float], rate: int, achieved: float) -> dict[str, Any]:
    samples = sorted(samples)
    detect = sorted(detect)
    return {
        "detect_p50_ms": round(1000 * statistics.median(detect), 1) if detect else None,
        "detect_p99_ms": round(1000 * detect[int(0.99 * (len(detect) - 1))], 1) if detect else None,
        "offered_rate": rate,
        "achieved_rate": round(achieved),
        "hits_measured": len(samples),
        "p50_ms": round(1000 * statistics.median(samples), 1) if samples else None,
        "p99_ms": round(1000 * samples[int(0.99 * (len(samples) - 1))], 1) if samples else None,
        "max_ms": round(1000 * samples[-1], 1) if samples else None,
    }


def namespace_env(bootstrap: str, database_url: str, tag: str, schema: str, metrics_port: str) -> dict[str, str]:
    """The environment for CLI commands and workers of one run: its own topics, group and database schema."""
    return endpoints.isolated_env(bootstrap, database_url, "bench", tag, schema, ANPR_METRICS_PORT=metrics_port)


def write_listed(path: Path, listed: list[str]) -> None:
    """A stolen-vehicle list of `listed` plates (entry ids LAT-n): the hits of the latency runs."""
    path.write_text(
        "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert\n"
        + "".join(f"LAT-{i},stolen_vehicle,{plate},BE,1,intercept,,,bench,false\n" for i, plate in enumerate(listed))
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--latency-seconds", type=int, default=30)
    parser.add_argument("--raw-runs", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=1, help="latency reads spread over this many cameras")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)

    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_{tag}"
    admin = await asyncpg.connect(found.database_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.close()
    metrics_port = os.environ.get("BENCH_METRICS_PORT", "19464")
    env = namespace_env(found.kafka_bootstrap, found.database_url, tag, schema, metrics_port)
    cli = [sys.executable, "-m", "anpr_stream.cli"]
    proc: subprocess.Popen[bytes] | None = None
    try:
        listed = [f"7-{triple}-{n:03d}" for triple in ("HTK", "HTM", "HTP", "HTR", "HTV") for n in range(1000)]
        bench_list = RESULTS / "bench-latency-list.csv"
        write_listed(bench_list, listed)
        for step in (["migrate"], ["watchlist", "load", *LISTS, str(bench_list)]):
            subprocess.run([*cli, *step], env=env, cwd=ROOT, check=True, capture_output=True)
        print(f"generating {args.reads} reads ...", flush=True)
        pairs = reads(args.reads, datetime.now(UTC) - timedelta(hours=7))
        # the topic is created by `watchlist load` (ensure_topics) with the configured partitions
        await produce(found.kafka_bootstrap, env["ANPR_TOPIC_READS"], pairs)
        raw = [await raw_loop(found.kafka_bootstrap, env["ANPR_TOPIC_READS"], len(pairs)) for _ in range(args.raw_runs)]
        raw_median = statistics.median(raw)
        worker_rate, proc = await worker_throughput(env, env["ANPR_DATABASE_URL"], len(pairs))
        port = env["ANPR_METRICS_PORT"]
        backlog_phases = phase_profile(port)
        lat = await latency(env, args.rate, args.latency_seconds, listed, args.cameras)
        paced_phases = phase_profile(port, backlog_phases)
    finally:
        stop_children(proc)
        admin = await asyncpg.connect(found.database_url)
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()

    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "reads": len(pairs),
        "raw_loop_reads_per_s": [round(r) for r in raw],
        "raw_loop_median": round(raw_median),
        "worker_reads_per_s": round(worker_rate),
        "ratio_worker_to_raw": round(worker_rate / raw_median, 3),
        "latency": lat,
        "phases_backlog": {k: {"seconds": round(v[0], 3), "batches": int(v[1])} for k, v in backlog_phases.items()},
        "phases_paced": {k: {"seconds": round(v[0], 3), "batches": int(v[1])} for k, v in paced_phases.items()},
    }
    (RESULTS / "pipeline.json").write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    print()
    print(f"{'what':<48}{'value':>14}")
    print(f"{'raw aiokafka getmany+orjson loop (median reads/s)':<48}{raw_median:>14,.0f}")
    print(f"{'worker, every passage to PostgreSQL (reads/s)':<48}{worker_rate:>14,.0f}")
    print(f"{'ratio worker / raw loop':<48}{worker_rate / raw_median:>14.3f}")
    print(f"{'hit latency p50 at ' + str(lat['achieved_rate']) + ' reads/s (ms)':<48}{lat['p50_ms']!s:>14}")
    print(f"{'hit latency p99 (ms)':<48}{lat['p99_ms']!s:>14}")
    detect = f"{lat['detect_p50_ms']} / {lat['detect_p99_ms']}"
    print(f"{'  of which until matched in the worker, p50 / p99 (ms)':<48}{detect:>14}")
    print(f"{'hits measured':<48}{lat['hits_measured']:>14}")
    for title, phases in (("backlog", backlog_phases), ("paced", paced_phases)):
        total = sum(v[0] for v in phases.values()) or 1.0
        shares = ", ".join(
            f"{k} {100 * v[0] / total:.0f}% ({1000 * v[0] / max(v[1], 1):.1f} ms/batch)" for k, v in phases.items()
        )
        print(f"where a batch's time goes ({title}): {shares}")


if __name__ == "__main__":
    asyncio.run(main())
