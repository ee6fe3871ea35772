"""The benchmark report (what `make bench` runs): one run on this machine comparing, on the same broker and the same
generated zone traffic, this service's worker against a raw aiokafka getmany+orjson loop (the ceiling) and a plain
per-event faust agent doing the same matching; hit latency against offered rate; match cost against watchlist
size; where the worker's time goes.

    .venv/bin/python benchmarks/bench_report.py [--reads 200000] [--rates 1000,2500,5000,10000] ...

Starts (or uses, per ANPR_KAFKA_BOOTSTRAP / ANPR_DATABASE_URL) the infrastructure; works in its own topics, consumer
groups and database schemas, and removes them at the end, as it stops every process it started, also on failure.
Writes benchmarks/results/report.{json,md} and PNG plots, and copies report.md and throughput.png to
benchmarks/latest/ (committed; benchmarks/results/ is not)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import bench_matching as bm
import bench_pipeline as bp
import bench_storage as bs
import orjson
import plots
from aiokafka.admin import AIOKafkaAdminClient

from anpr_stream.cameras import CameraRegistry
from anpr_stream.commands.replay import Progress, read_lines, replay
from anpr_stream.core import accel
from anpr_stream.core.batch import classify
from anpr_stream.core.hits import hits_of
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.plates import normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.record import InRecord
from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.kafka import LocalKafka
from anpr_stream.devinfra.paths import state_dir
from anpr_stream.devinfra.process import stop_children
from anpr_stream.traffic import generate, plant_watchlist
from anpr_stream.traffic.output import write_reads, write_watchlist
from anpr_stream.watchlists import load_watchlists

ROOT = bp.ROOT
RESULTS = bp.RESULTS
LATEST = ROOT / "benchmarks" / "latest"
FAUST_BASELINE = Path(__file__).resolve().parent / "faust_agent_baseline.py"
WORKER_POLICY = "default=fuzzy:0"  # the worker's default (README, Configuration)
BATCH = 2000  # ANPR_BATCH_MAX_RECORDS default: in-process batches are the worker's size
STARTED = time.monotonic()


IDLE_SETTLE_SECONDS = 3.0  # > ANPR_IDLE_PARTITION_SECONDS: see the latency runs


def say(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def rate_of(timeline: Sequence[tuple[float, float]]) -> float:
    """Reads/s from the first sample to the last (startup before the first read excluded)."""
    if len(timeline) < 2 or timeline[-1][0] <= timeline[0][0]:
        return 0.0
    return (timeline[-1][1] - timeline[0][1]) / (timeline[-1][0] - timeline[0][0])


# -- the contenders on the backlog -------------------------------------------------------------------------------


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def worker_backlog(
    env: dict[str, str], expected: int, stall: float, procs: list[subprocess.Popen[bytes]]
) -> tuple[subprocess.Popen[bytes], list[tuple[float, float]]]:
    """Start the worker (added to `procs`, for the clean-up) on the backlog; its progress every 0.25 s from
    `anpr_reads_total` (all outcomes). Gives up when nothing was read for `stall` seconds."""
    port = env["ANPR_METRICS_PORT"]
    log = RESULTS / "report-worker.log"  # not bench_pipeline's bench-worker.log: both may run on one machine
    proc = bp.start_worker(env, log)
    procs.append(proc)
    timeline: list[tuple[float, float]] = []
    last_progress, last_count = time.monotonic(), 0.0
    while True:
        try:
            count = bp.metric_total(await asyncio.to_thread(bp.scrape, port, 2), "anpr_reads_total")
        except OSError:  # the endpoint is not up yet
            count = 0.0
        if count:
            timeline.append((time.time(), count))
        if count >= expected:
            return proc, timeline
        if count > last_count:
            last_progress, last_count = time.monotonic(), count
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}; {log}:\n{log_tail(log)}")
        if time.monotonic() - last_progress > stall:
            raise TimeoutError(f"worker read nothing for {stall:.0f} s ({count:.0f} of {expected} done); {log}:\n"
                               f"{log_tail(log)}")  # fmt: skip
        await asyncio.sleep(0.25)


async def faust_backlog(
    label: str, args: list[str], expected: int, seconds: float, startup_timeout: float = 120
) -> list[tuple[float, float]]:
    """Run the faust baseline as a subprocess until it has done `expected` reads or run `seconds` since its first
    read; its progress comes from the file it appends to."""
    progress = RESULTS / f"report-faust-{label}.progress"
    progress.unlink(missing_ok=True)
    progress.touch()
    with open(RESULTS / f"report-faust-{label}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(FAUST_BASELINE), *args, "--progress", str(progress)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    timeline: list[tuple[float, float]] = []
    started = time.monotonic()
    try:
        with open(progress, "rb") as follow:
            pending = b""
            while True:
                pending += follow.read()
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    point = orjson.loads(line)
                    timeline.append((point["t"], point["n"]))
                if timeline and (timeline[-1][1] >= expected or time.time() - timeline[0][0] >= seconds):
                    return timeline
                if proc.poll() is not None:
                    raise RuntimeError(f"faust baseline exited with {proc.returncode}; see {log.name}")
                if not timeline and time.monotonic() - started > startup_timeout:
                    raise TimeoutError(f"faust baseline read nothing in {startup_timeout:.0f} s; see {log.name}")
                await asyncio.sleep(0.25)
    finally:
        stop_children(proc)


# -- in process: the match stage ---------------------------------------------------------------------------------


def records_of(lines: Sequence[bytes]) -> list[InRecord]:
    return [InRecord("bench", 0, i, b"cam", line, 0) for i, line in enumerate(lines)]


def match_stage(
    records: Sequence[InRecord], index: WatchlistIndex, policy: MatchPolicy, cameras: CameraRegistry, now: datetime
) -> int:
    """What the worker's `prepare` does, batch by batch: process_batch + hits_of. Returns the number of hits."""
    horizon = now - timedelta(days=365)
    hits = 0
    for start in range(0, len(records), BATCH):
        result = classify(records[start : start + BATCH], index, policy, cameras, horizon, now)
        hits += len(hits_of(result.passages, lambda name: policy.for_list(name).dispatch))
    return hits


def watchlist_sizes(sizes: Sequence[int], reads: int, repeats: int = 3) -> list[dict[str, Any]]:
    """process_batch per read against synthetic lists of each size (bench_matching's entries and reads: 1% of reads
    are OCR misreads of listed plates), exact+ocr and fuzzy:1, under every core implementation that loads here
    (core/accel.py: the native twin and the Python reference); median of `repeats`. The floor of each size: parse,
    normalise and one dict lookup per read of the same reads (bench_matching.floor_rate), the least any matcher does.
    The index's objects are frozen out of the collector's reach, as the worker freezes its start-up objects."""
    cameras = CameraRegistry.load()
    # After the last read (bench_matching spaces them 137 ms apart): every read is valid and matched. (An earlier
    # `AT + 1 h` put two thirds of the reads beyond the future-skew bound: the stage then mostly measured rejections.)
    now = bm.AT + timedelta(milliseconds=137 * reads) + timedelta(minutes=1)
    policies = {"exact+ocr": MatchPolicy.parse("default=fuzzy:0"), "fuzzy:1": MatchPolicy.parse("default=fuzzy:1")}
    rows: list[dict[str, Any]] = []
    for size in sizes:
        sample: list[str] = []
        started = time.perf_counter()
        index = WatchlistIndex.build(bm.entries(size, 11, sample))
        build_s = time.perf_counter() - started
        lines = bm.reading_lines(reads, 12, sample)
        records = records_of(lines)
        table = {normalise(entry.plate): 1 for entry in index}
        gc.collect()
        gc.freeze()
        floor_us = statistics.median(1e6 / bm.floor_rate(lines, table) for _ in range(repeats))
        for implementation in accel.available():
            with accel.use(implementation):
                for name, policy in policies.items():
                    timings = []
                    hits = 0
                    for _ in range(repeats):
                        started = time.perf_counter()
                        hits = match_stage(records, index, policy, cameras, now)
                        timings.append(time.perf_counter() - started)
                    seconds = statistics.median(timings)
                    us = 1e6 * seconds / len(records)
                    rows.append(
                        {
                            "entries": size,
                            "policy": name,
                            "implementation": implementation,
                            "reads_per_s": round(len(records) / seconds),
                            "us_per_read": round(us, 2),
                            "floor_us_per_read": round(floor_us, 2),
                            "of_floor": round(floor_us / us, 3),
                            "hits_per_read": round(hits / len(records), 4),
                            "build_s": round(build_s, 1),
                        }
                    )
                    say(f"  {size:>9,} entries {name:<9} {implementation:<6} {us:>6.2f} us/read "
                        f"({floor_us / us:.2f} of the floor)  build {build_s:.1f} s")  # fmt: skip
        gc.unfreeze()
        del index, records, table
        gc.collect()
    for row in rows:
        base = next(r for r in rows if (r["policy"], r["implementation"]) == (row["policy"], row["implementation"]))
        row["cost_vs_smallest"] = round(row["us_per_read"] / base["us_per_read"], 2)
    return rows


def profile_match_stage(lines: Sequence[bytes], lists: Sequence[Path], top: int = 10) -> dict[str, Any]:
    """cProfile of the match stage on the benchmark's own traffic, lists and the worker's policy."""
    entries, _ = load_watchlists(lists, lambda *_: None)
    index = WatchlistIndex.build(entries)
    records = records_of(lines)
    policy = MatchPolicy.parse(WORKER_POLICY)
    cameras = CameraRegistry.load()
    now = datetime.now(UTC)
    match_stage(records, index, policy, cameras, now)  # warm
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(match_stage, records, index, policy, cameras, now)
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    rows = []
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table untyped
    ranked = sorted(table.items(), key=lambda item: item[1][3], reverse=True)
    total = ranked[0][1][3]  # match_stage itself: the whole profiled call
    for (filename, line, function), (_, calls, own, cumulative, _) in ranked[1 : top + 1]:
        where = f"{Path(filename).name}:{line}" if line else "~"
        rows.append(
            {
                "function": f"{function} ({where})",
                "calls": calls,
                "own_s": round(own, 3),
                "cumulative_s": round(cumulative, 3),
                "share": round(cumulative / total, 3),
            }
        )
    return {
        "reads": len(records),
        "entries": len(index),
        "policy": WORKER_POLICY,
        "wall_s": round(wall, 2),
        "top": rows,
    }


# -- the machine -------------------------------------------------------------------------------------------------


def machine(found: endpoints.Endpoints, pg_version: str) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        found_model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found_model.group(1).strip() if found_model else cpu
    memory = "unknown"
    with contextlib.suppress(OSError, AttributeError, ValueError):
        kib = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        memory = f"{kib / 2**20:.1f} GiB"
    kafka = f"{found.kafka_source} broker at {found.kafka_bootstrap}"
    log = state_dir() / "kafka" / "server.log"
    if found.kafka_bootstrap == LocalKafka.from_env().bootstrap and log.is_file():
        reported = re.findall(r"Kafka version: (\S+)", log.read_text(errors="replace"))
        if reported:
            kafka = f"{reported[-1]} (local broker)"
    # BENCH_REVISION: for a run from an exported tree (git archive), which has no .git to ask.
    revision = (
        os.environ.get("BENCH_REVISION")
        or subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    return {
        "code": revision or "unknown",
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "kafka": kafka,
        "postgresql": pg_version,
        # The core the worker and the in-process stages load (the worker runs in this venv): core/accel.py.
        "core": accel.IMPLEMENTATION,
    }


# -- clean-up ----------------------------------------------------------------------------------------------------


async def remove_topics(bootstrap: str, tag: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if tag in t]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def drop_schemas(url: str, schemas: Sequence[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


# -- the run -----------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    say("infrastructure: starting or attaching to Kafka and PostgreSQL ...")
    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    tag = uuid.uuid4().hex[:8]
    schema, faust_schema, floor_schema = f"bench_{tag}", f"bench_{tag}_faust", f"bench_{tag}_floor"
    conn = await asyncpg.connect(found.database_url)
    try:
        pg_version = str(await conn.fetchval("SHOW server_version"))
        for name in (schema, faust_schema, floor_schema):
            await conn.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await conn.close()
    env = bp.namespace_env(found.kafka_bootstrap, found.database_url, tag, schema, free_port())
    reads_topic = env["ANPR_TOPIC_READS"]
    cli = [sys.executable, "-m", "anpr_stream.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    traffic = RESULTS / f"traffic-{tag}.jsonl"
    faust_datadir = state_dir() / f"faust-bench-{tag}"
    result: dict[str, Any] = {"tag": tag, "machine": machine(found, pg_version)}
    try:
        # -- traffic, lists, topics
        say(f"generating {args.reads:,} reads of zone traffic with planted watchlist vehicles ...")
        # A day of the zone's traffic (its daily profile) ending an hour ago, dense enough to hold the reads wanted
        # at any day of the week; the backlog is its first `--reads` reads.
        start = datetime.now(UTC) - timedelta(hours=25)
        window = timedelta(hours=24)
        cameras = list(CameraRegistry.load())
        planting = plant_watchlist(7, start, window, cameras)
        stream = generate(7, start, window, args.reads * 1.6, cameras=cameras, planting=planting)
        stats = write_reads(traffic, (r for _, r in zip(range(args.reads), stream, strict=False)))
        planted_list = RESULTS / f"report-planted-list-{tag}.csv"
        write_watchlist(planted_list, planting)
        # Latency runs: every 50th read a listed plate, each run its own plates, so no hit is a suppressed repeat.
        listed = [f"7-{a}{b}{c}-{n:03d}" for a in "HK" for b in "TW" for c in "KMPRV" for n in range(1000)]
        listed_file = RESULTS / f"report-latency-list-{tag}.csv"
        bp.write_listed(listed_file, listed)
        lists = [Path(p) for p in bp.LISTS] + [planted_list, listed_file]
        for step in (["migrate"], ["watchlist", "load", *map(str, lists)]):
            subprocess.run([*cli, *step], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
        faust_env = {**env, "ANPR_DATABASE_URL": endpoints.with_search_path(found.database_url, faust_schema)}
        subprocess.run([*cli, "migrate"], env=faust_env, cwd=ROOT, check=True, capture_output=True, timeout=300)

        say(f"replaying {stats.lines:,} reads to {reads_topic} as fast as possible (anpr-stream replay) ...")
        replayed = await replay(
            traffic, found.kafka_bootstrap, reads_topic, progress=Progress(stats.lines, sys.stderr, sys.stderr.isatty())
        )
        result["replay"] = {"reads": replayed.lines, "seconds": round(replayed.elapsed, 2)}
        total = replayed.lines

        # -- contender 1: the ceiling
        raw_rates: list[float] = []
        raw_timelines: list[list[tuple[float, float]]] = []
        for i in range(args.raw_runs):
            timeline: list[tuple[float, int]] = []
            raw_rates.append(await bp.raw_loop(found.kafka_bootstrap, reads_topic, total, timeline))
            raw_timelines.append([(t, float(n)) for t, n in timeline])
            say(f"raw aiokafka getmany+orjson loop, run {i + 1}/{args.raw_runs}: {raw_rates[-1]:,.0f} reads/s")
        raw_median = statistics.median(raw_rates)
        raw_timeline = raw_timelines[raw_rates.index(sorted(raw_rates)[len(raw_rates) // 2])]

        # -- contender 2: this service
        say("anpr-stream worker on the backlog, every passage to PostgreSQL ...")
        proc, worker_timeline = await worker_backlog(env, total, args.stall_seconds, procs)
        worker_rate = rate_of(worker_timeline)
        port = env["ANPR_METRICS_PORT"]
        metrics_text = bp.scrape(port)
        backlog_phases = bp.phase_profile(port)
        say(f"worker: {worker_rate:,.0f} reads/s ({worker_rate / raw_median:.3f} of the raw loop)")

        # -- latency against offered rate (the same worker, now idle and caught up). The backlog's partitions fall
        # quiet at its end: alerts wait until they are claimed idle (ANPR_IDLE_PARTITION_SECONDS, 2 s: up to 1.9 s
        # on the first hits when measured straight away). The transition is README's (Scale); this is steady state.
        await asyncio.sleep(IDLE_SETTLE_SECONDS)
        latency_rows = []
        samples_at: dict[int, list[float]] = {}
        used = 0
        for rate in args.rates:
            need = int(rate * args.latency_seconds / 50) + 2
            plates = listed[used : used + need]
            used += need
            if len(plates) < need:
                raise ValueError("not enough listed plates for these rates and durations")
            say(f"hit latency at {rate:,} reads/s offered for {args.latency_seconds:g} s ...")
            samples, detect, achieved = await bp.latency_samples(
                env, rate, args.latency_seconds, plates, read_prefix=f"lat{rate}"
            )
            row = bp.latency_summary(samples, detect, rate, achieved)
            latency_rows.append(row)
            samples_at[rate] = samples
            say(f"  achieved {row['achieved_rate']:,} reads/s; p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
        paced_phases = bp.phase_profile(port, backlog_phases)
        stop_children(proc)

        # -- contender 3: the storage floor (the same backlog, decoded, its passage rows COPYed into the same schema)
        say("storage floor: the same backlog decoded and COPYed into a fresh migrated schema ...")
        floor_env = {**env, "ANPR_DATABASE_URL": endpoints.with_search_path(found.database_url, floor_schema)}
        subprocess.run([*cli, "migrate"], env=floor_env, cwd=ROOT, check=True, capture_output=True, timeout=300)
        floor_timeline: list[tuple[float, float]] = []
        floor_rate = await bs.storage_floor(
            found.kafka_bootstrap, reads_topic, total, floor_env["ANPR_DATABASE_URL"], floor_timeline
        )
        say(f"  {floor_rate:,.0f} rows/s; the worker is {worker_rate / floor_rate:.2f} of it")
        say(f"each index's write cost: {args.index_rows:,} rows COPYed with and without each index ...")
        index_rows = [
            bs.passage_row(line, 0, i)
            for i, (_, line) in enumerate(zip(range(args.index_rows), read_lines(traffic), strict=False))
        ]
        indexes = await bs.index_costs(found.database_url, index_rows)

        # -- contender 4: the faust agent, without and with the per-event INSERT
        faust_common = [
            "--bootstrap", found.kafka_bootstrap, "--topic", reads_topic, "--policy", WORKER_POLICY,
            "--datadir", str(faust_datadir), "--watchlist", *map(str, lists),
        ]  # fmt: skip
        faust_timelines = {}
        for label, extra in (("nodb", []), ("db", ["--database-url", faust_env["ANPR_DATABASE_URL"]])):
            what = "match only, no database" if label == "nodb" else "one INSERT per read"
            say(f"faust agent per event ({what}), at most {args.faust_seconds:g} s ...")
            faust_timelines[label] = await faust_backlog(
                label, [*faust_common, "--group", f"bench-{tag}-faust-{label}", *extra], total, args.faust_seconds
            )
            say(f"  {rate_of(faust_timelines[label]):,.0f} reads/s over {faust_timelines[label][-1][1]:,.0f} reads")
        faust_rate = rate_of(faust_timelines["nodb"])
        faust_db_rate = rate_of(faust_timelines["db"])

        # -- in process: cost against list size, and the profile
        say(f"match-stage cost against watchlist size ({', '.join(f'{s:,}' for s in args.sizes)} entries) ...")
        sizes = watchlist_sizes(args.sizes, args.size_reads)
        say("cProfile of the match stage on the benchmark's traffic ...")
        lines = [line for _, line in zip(range(args.profile_reads), read_lines(traffic), strict=False)]
        profile = profile_match_stage(lines, lists)
    finally:
        for proc in procs:
            stop_children(proc)
        with contextlib.suppress(Exception):
            await drop_schemas(found.database_url, [schema, faust_schema, floor_schema])
        with contextlib.suppress(Exception):
            await remove_topics(found.kafka_bootstrap, tag)
        for scratch in (traffic, *(RESULTS / f"report-{name}-list-{tag}.csv" for name in ("planted", "latency"))):
            scratch.unlink(missing_ok=True)
        shutil.rmtree(faust_datadir, ignore_errors=True)

    def phases(measured: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
        busy = sum(v[0] for v in measured.values()) or 1.0
        return {
            k: {"seconds": round(v[0], 3), "batches": int(v[1]), "share": round(v[0] / busy, 3),
                "ms_per_batch": round(1000 * v[0] / max(v[1], 1), 2)}
            for k, v in measured.items()
        }  # fmt: skip

    result.update(
        reads=total,
        throughput={
            "raw_loop": {"reads_per_s": round(raw_median), "runs": [round(r) for r in raw_rates], "ratio": 1.0},
            "worker": {
                "reads_per_s": round(worker_rate),
                "ratio": round(worker_rate / raw_median, 4),
                "hits": int(bp.metric_total(metrics_text, "anpr_hits_total")),
                "batches": int(bp.metric_total(metrics_text, "anpr_batches_total")),
            },
            "storage_floor": {
                "reads_per_s": round(floor_rate),
                "ratio": round(floor_rate / raw_median, 4),
                "worker_over_floor": round(worker_rate / floor_rate, 3),
            },
            "faust_agent": {
                "reads_per_s": round(faust_rate),
                "ratio": round(faust_rate / raw_median, 4),
                "reads_measured": int(faust_timelines["nodb"][-1][1]),
            },
            "faust_agent_insert": {
                "reads_per_s": round(faust_db_rate),
                "ratio": round(faust_db_rate / raw_median, 4),
                "reads_measured": int(faust_timelines["db"][-1][1]),
            },
        },
        timelines={
            "raw_loop": raw_timeline,
            "worker": worker_timeline,
            "storage_floor": floor_timeline,
            "faust_agent": faust_timelines["nodb"],
            "faust_agent_insert": faust_timelines["db"],
        },
        indexes=indexes,
        latency=latency_rows,
        latency_samples_ms={str(k): [round(1000 * s, 2) for s in v] for k, v in samples_at.items()},
        watchlist_size=sizes,
        phases={"backlog": phases(backlog_phases), "paced": phases(paced_phases)},
        profile=profile,
    )
    return result


# -- the report --------------------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def index_section(ix: dict[str, Any]) -> list[str]:
    """Each index's write cost: the floor (COPY of the same rows) without it over the floor with every index."""
    out = [
        "## Storage: each index's write cost",
        "",
        f"{ix['rows']:,} passage rows of the backlog (built once, in memory) COPYed in batches of 2,000 into fresh "
        "migrated schemas: with every index of the day partition being written, without each of them in turn, with "
        "the primary key alone, and into day partitions whose day has ended (they also carry the two GIN trigram "
        "indexes, built when the day ends: migration 0014); median of "
        f"{ix['repeats']} interleaved runs. *Share*: the part of the write time with every index that dropping this "
        "one saves (negative: what adding the trigram indexes costs).",
        "",
        "| variant | rows/s | × all indexes | share |",
        "|---|---:|---:|---:|",
    ]
    for row in ix["variants"]:
        share = "" if row["index_share"] is None else f"{100 * row['index_share']:.0f}%"
        out.append(f"| {row['variant']} | {row['rows_per_s']:,} | {row['x_all_indexes']:.3f} | {share} |")
    return [*out, ""]


MATCH_GOAL_US = 5.0  # issue 18: exact+OCR at 100,000 entries
FUZZY_GOAL_OF_FLOOR = 0.3  # issue 18: fuzzy distance 1 at 1,000,000 entries, against parse+normalise+lookup


def size_order(row: Mapping[str, Any]) -> tuple[str, str, int]:
    return (row["policy"], row.get("implementation", "python"), row["entries"])


def match_section(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    out = [
        "## Match-stage cost against watchlist size",
        "",
        "In process: the worker's pure match stage (`classify` + `hits_of`, batches of 2,000) on synthetic "
        "reads (1% OCR misreads of listed plates) against synthetic lists in the zone's plate formats, under each "
        "implementation of the core that loads (*native*: the Rust twin of read decoding, native/; *python*: the "
        "reference, core/accel.py); median of 3. *Floor*: parse, normalise and one dict lookup per read of the same "
        "reads, the least any matcher does; *of floor* = floor µs / stage µs.",
        "",
    ]
    goals = []
    for policy, entries, key, goal, unit in (
        ("exact+ocr", 100_000, "us_per_read", MATCH_GOAL_US, "µs/read"),
        ("fuzzy:1", 1_000_000, "of_floor", FUZZY_GOAL_OF_FLOOR, "of the floor"),
    ):
        for row in rows:
            if (row["policy"], row["entries"]) == (policy, entries) and key in row:
                met = row[key] <= goal if key == "us_per_read" else row[key] >= goal
                goals.append(
                    f"{policy} at {entries:,} entries, {row.get('implementation', 'python')}: {row[key]:g} {unit} "
                    f"(goal {'≤' if key == 'us_per_read' else '≥'} {goal:g}: {'met' if met else 'missed'})"
                )
    if goals:
        out += ["Goals: " + "; ".join(goals) + ".", ""]
    out += [
        "| entries | policy | core | µs/read | × cost at the smallest list | floor µs/read | of floor | hits/read "
        "| index build s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(rows, key=size_order):
        floor = row.get("floor_us_per_read")
        out.append(
            f"| {row['entries']:,} | {row['policy']} | {row.get('implementation', 'python')} | "
            f"{row['us_per_read']:.2f} | {row['cost_vs_smallest']:.2f} | {fmt(floor, 2) if floor else '–'} | "
            f"{row.get('of_floor', 0):.3f} | {row['hits_per_read']:.4f} | {row['build_s']:.1f} |"
        )
    return out


def markdown(r: dict[str, Any], command: str, elapsed: float, images: Callable[[str], str]) -> str:
    m, t = r["machine"], r["throughput"]
    raw, worker, faust, faust_db = t["raw_loop"], t["worker"], t["faust_agent"], t["faust_agent_insert"]
    floor = t["storage_floor"]
    out = [
        "# anpr-stream benchmark report",
        "",
        f"Run {r['when']} with `{command}` in {elapsed / 60:.1f} min, code {m['code']}. "
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), "
        f"{m['memory']}, {m['os']}; Python {m['python']} (read-decoding core: {m.get('core', 'python')}); "
        f"Kafka {m['kafka']}; PostgreSQL {m['postgresql']}. "
        "Kafka, PostgreSQL, the contenders and the load generator all share this machine: one run, noisy; "
        "compare ratios (same run) before absolute numbers.",
        "",
        f"## Throughput: one worker on a backlog of {r['reads']:,} reads of generated zone traffic",
        "",
        f"**The worker runs at {floor['worker_over_floor']:.2f} of the storage floor** ({worker['reads_per_s']:,} "
        f"of {floor['reads_per_s']:,} reads/s): the floor is the same backlog decoded and its passage rows COPYed "
        "into the same schema, with nothing else done (goal: 0.8).",
        "",
        "| contender | × raw loop | reads/s | what it does |",
        "|---|---:|---:|---|",
        f"| raw aiokafka `getmany` + orjson loop (ceiling) | 1.000 | {raw['reads_per_s']:,} | consume and decode "
        f"only; median of {len(raw['runs'])} runs ({', '.join(f'{x:,}' for x in raw['runs'])}) |",
        f"| **anpr-stream worker** | **{worker['ratio']:.3f}** | **{worker['reads_per_s']:,}** | validate, match, "
        f"every passage to PostgreSQL (COPY per batch), hits + offsets in one Kafka transaction per input partition; "
        f"{worker['hits']:,} hits in {worker['batches']:,} batches |",
        f"| storage floor | {floor['ratio']:.3f} | {floor['reads_per_s']:,} | consume, decode, build the worker's "
        "passage rows and COPY them into the same migrated schema (every index), one transaction per batch of "
        "2,000; no validation, matching, hits or Kafka transaction (benchmarks/bench_storage.py) |",
        f"| plain per-event faust agent, no database | {faust['ratio']:.3f} | {faust['reads_per_s']:,} | the worker's "
        f"match-stage work per read, nothing written ({faust['reads_measured']:,} reads measured) |",
        f"| plain per-event faust agent + one INSERT per read | {faust_db['ratio']:.3f} | "
        f"{faust_db['reads_per_s']:,} | as above, each passage INSERTed and committed on its own "
        f"({faust_db['reads_measured']:,} reads measured) |",
        "",
        f"The worker does {worker['reads_per_s'] / max(faust['reads_per_s'], 1):.1f}x the reads/s of the per-event "
        f"faust agent that writes nothing, and {worker['reads_per_s'] / max(faust_db['reads_per_s'], 1):.0f}x those "
        "of the agent that writes each passage with its own INSERT. Rates run from each contender's first read to "
        "its last (start-up excluded); the faust agents are stopped after a fixed time rather than at the end of "
        "the backlog.",
        "",
        images("throughput.png"),
        "",
        *index_section(r["indexes"]),
        "## Hit latency against offered rate",
        "",
        "Per dispatched hit: from the read's append to Kafka to the hit being readable (`read_committed`) on the hits "
        "topic, i.e. after the batch is in PostgreSQL and its Kafka transaction committed. Every 50th read is on a "
        "list; each hit is a new alert. The load generator is a Python producer on the same machine: the achieved "
        "rate is what was really offered. The runs start once the backlog's partitions are idle (3 s after it): "
        "alerts wait for the event-time watermark, and partitions that just fell quiet hold it for up to "
        "`ANPR_IDLE_PARTITION_SECONDS` (2 s; README, Scale).",
        "",
        "| offered reads/s | achieved | hits | p50 ms | p99 ms | max ms | until matched p50 / p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["latency"]:
        out.append(
            f"| {row['offered_rate']:,} | {row['achieved_rate']:,} | {row['hits_measured']:,} | {fmt(row['p50_ms'], 1)}"
            f" | {fmt(row['p99_ms'], 1)} | {fmt(row['max_ms'], 1)} | {fmt(row['detect_p50_ms'], 1)} / "
            f"{fmt(row['detect_p99_ms'], 1)} |"
        )
    out += ["", images("latency_vs_rate.png"), "", images("latency.png"), ""]
    out += match_section(r["watchlist_size"])
    out += ["", images("watchlist_size.png"), "", "## Where the worker's time goes", ""]
    out += [
        "From the worker's `anpr_batch_phase_seconds` histogram: *match* (decode, validate, match; overlaps the "
        "writing of the batch before), *db* (repeat-suppression decisions and the batch's rows in PostgreSQL), "
        "*kafka* (hits, dead letters and offsets: one transaction per input partition of the batch, run at once); "
        "a *decide* phase, where the worker reports it apart, is the suppression lookup. Share of the summed phase "
        "time.",
        "",
        "| phase | backlog: share | ms/batch | paced (latency runs): share | ms/batch |",
        "|---|---:|---:|---:|---:|",
    ]
    backlog, paced = r["phases"]["backlog"], r["phases"]["paced"]
    known = ["match", "decide", "db", "kafka"]
    for phase in [p for p in known if p in backlog or p in paced] + sorted(set(backlog) - set(known)):
        b, p = backlog.get(phase, {}), paced.get(phase, {})
        out.append(
            f"| {phase} | {100 * b.get('share', 0):.0f}% | {b.get('ms_per_batch', 0):.1f} | "
            f"{100 * p.get('share', 0):.0f}% | {p.get('ms_per_batch', 0):.1f} |"
        )
    prof = r["profile"]
    out += [
        "",
        f"cProfile of the match stage in process ({prof['reads']:,} reads of the benchmark's traffic, "
        f"{prof['entries']:,} entries, policy `{prof['policy']}`; {prof['wall_s']} s under the profiler), "
        "top 10 by cumulative time (share of the whole stage):",
        "",
        "| function | calls | own s | cumulative s | share |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in prof["top"]:
        out.append(
            f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.3f} | {row['cumulative_s']:.3f} | "
            f"{100 * row['share']:.0f}% |"
        )
    out += [
        "",
        "## How it was measured",
        "",
        f"- Traffic: `anpr_stream.traffic.generate` (seed 7, zone cameras, BE/NL/DE/FR/LU plates, ~3% OCR misreads, "
        f"repeats, planted gang/convoy/stolen vehicles and their list), {r['reads']:,} reads published with "
        f"`anpr_stream.commands.replay.replay` as fast as possible ({r['replay']['seconds']} s) to a 6-partition "
        "topic of this run. Lists: the sample lists, the planted list, and 20,000 plates for the latency runs.",
        "- Each contender reads the same topic from the start with its own consumer group, one at a time (the "
        "previous one stopped). The worker runs with its defaults (policy `default=fuzzy:0`, batches of 2,000) as "
        "a subprocess; its progress comes from `anpr_reads_total` on its metrics endpoint every 0.25 s.",
        "- The faust baseline (`benchmarks/faust_agent_baseline.py`): `@app.agent(topic)`, `async for value in "
        "stream`, concurrency 1, faust's own offset commits; per read `classify` on a batch of one and "
        "`hits_of` (the worker's match-stage work, same index and policy). The *INSERT* variant then writes the "
        "passage with one autocommitted `INSERT ... ON CONFLICT DO NOTHING` (its own schema); neither variant "
        "stores hits nor publishes anything.",
        "- Start-up (topic metadata, group join, watchlist load) is excluded from every rate.",
    ]
    return "\n".join(out) + "\n"


def write_report(result: dict[str, Any], command: str, elapsed: float) -> Path:
    timelines = result["timelines"]
    t = result["throughput"]
    plots.throughput(
        {
            "raw": (f"raw getmany+orjson loop ({t['raw_loop']['reads_per_s']:,}/s)", timelines["raw_loop"]),
            "worker": (f"anpr-stream worker ({t['worker']['reads_per_s']:,}/s)", timelines["worker"]),
            "floor": (
                f"storage floor: decode + COPY ({t['storage_floor']['reads_per_s']:,}/s)",
                timelines["storage_floor"],
            ),
            "faust": (f"faust agent, no DB ({t['faust_agent']['reads_per_s']:,}/s)", timelines["faust_agent"]),
            "faust_db": (
                f"faust agent + INSERT per read ({t['faust_agent_insert']['reads_per_s']:,}/s)",
                timelines["faust_agent_insert"],
            ),
        },
        RESULTS / "throughput.png",
    )
    rates = [row["offered_rate"] for row in result["latency"]]
    cdf_rate = 5000 if 5000 in rates else rates[len(rates) // 2]
    row = result["latency"][rates.index(cdf_rate)]
    plots.latency_cdf(result["latency_samples_ms"][str(cdf_rate)], row, RESULTS / "latency.png")
    plots.latency_vs_rate(result["latency"], RESULTS / "latency_vs_rate.png")
    plots.watchlist_size(result["watchlist_size"], RESULTS / "watchlist_size.png")
    (RESULTS / "report.json").write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())

    def here(name: str) -> str:
        return f"![{name}]({name})"

    def from_latest(name: str) -> str:
        # Only throughput.png is committed beside the latest report; the others stay in the git-ignored results.
        return here(name) if name == "throughput.png" else f"![{name}](../results/{name}) (after a local run)"

    report = RESULTS / "report.md"
    report.write_text(markdown(result, command, elapsed, here))
    LATEST.mkdir(exist_ok=True)
    (LATEST / "report.md").write_text(markdown(result, command, elapsed, from_latest))
    shutil.copyfile(RESULTS / "throughput.png", LATEST / "throughput.png")
    return report


def summary(r: dict[str, Any]) -> str:
    t = r["throughput"]
    lines = ["", f"{'contender':<52}{'x raw':>8}{'reads/s':>12}"]
    for key, label in (
        ("raw_loop", "raw aiokafka getmany+orjson loop (median)"),
        ("worker", "anpr-stream worker, every passage to PostgreSQL"),
        ("storage_floor", "storage floor: decode + COPY of the same rows"),
        ("faust_agent", "faust agent per event, no database"),
        ("faust_agent_insert", "faust agent per event + INSERT per read"),
    ):
        lines.append(f"{label:<52}{t[key]['ratio']:>8.3f}{t[key]['reads_per_s']:>12,}")
    lines.append("")
    lines.append(f"{'offered':>8}{'achieved':>10}{'hits':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for row in r["latency"]:
        lines.append(
            f"{row['offered_rate']:>8,}{row['achieved_rate']:>10,}{row['hits_measured']:>7}"
            f"{fmt(row['p50_ms'], 1):>9}{fmt(row['p99_ms'], 1):>9}"
        )
    lines.append("")
    lines.append(f"{'entries':>10} {'policy':<10}{'core':<8}{'us/read':>9}{'x floor':>9}")
    for row in sorted(r["watchlist_size"], key=size_order):
        lines.append(
            f"{row['entries']:>10,} {row['policy']:<10}{row.get('implementation', 'python'):<8}"
            f"{row['us_per_read']:>9.2f}{row.get('of_floor', 0):>9.3f}"
        )
    for name, phases in r["phases"].items():
        shares = ", ".join(f"{k} {100 * v['share']:.0f}% ({v['ms_per_batch']:.1f} ms/batch)" for k, v in phases.items())
        lines.append(f"worker phases ({name}): {shares}")
    return "\n".join(lines)


def ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM (e.g. a CI timeout) cancels the run, so the clean-up in `run` still stops what it started.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=200_000, help="reads of generated traffic in the backlog")
    parser.add_argument("--raw-runs", type=int, default=3, help="raw-loop runs (the median is reported)")
    parser.add_argument("--rates", type=ints, default=[1000, 2500, 5000, 10000], help="offered reads/s, comma list")
    parser.add_argument("--latency-seconds", type=float, default=12, help="seconds per offered rate")
    parser.add_argument("--faust-seconds", type=float, default=30, help="longest run of each faust baseline")
    parser.add_argument("--sizes", type=ints, default=[1000, 10_000, 100_000, 1_000_000], help="watchlist sizes")
    parser.add_argument("--size-reads", type=int, default=20_000, help="reads per watchlist-size measurement")
    parser.add_argument("--profile-reads", type=int, default=50_000, help="reads under cProfile")
    parser.add_argument("--index-rows", type=int, default=60_000, help="rows per index write-cost measurement")
    parser.add_argument("--stall-seconds", type=float, default=60, help="give up when the worker reads nothing so long")
    args = parser.parse_args()
    command = "python benchmarks/bench_report.py" + "".join(f" {a}" for a in sys.argv[1:])
    try:
        result = asyncio.run(amain(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; everything it started is stopped and removed")
        return 130
    elapsed = time.monotonic() - STARTED
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["command"] = command
    result["elapsed_s"] = round(elapsed, 1)
    report = write_report(result, command, elapsed)
    print(summary(result))
    say(f"report: {report.relative_to(ROOT)} (+ report.json, throughput.png, latency.png, watchlist_size.png, "
        f"latency_vs_rate.png); copied to {LATEST.relative_to(ROOT)}/")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
