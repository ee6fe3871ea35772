"""What exact repeat suppression costs in hit latency: alerts held until the event-time watermark reaches them (the
default) against alerts decided on arrival (`ANPR_ALERT_HOLD_MAX_SECONDS=0`), one worker each, in the same run.

    .venv/bin/python benchmarks/bench_hold.py [--rates 1000,5000] [--seconds 10] [--rounds 3] [--cameras 12]

Each mode has its own topics, consumer group and database schema; the two are measured in alternation (paired in
time, so that the machine's moods hit both), reads spread over `--cameras` cameras (so over the partitions of
anpr.reads: with one camera only one partition has reads and the watermark is that partition's own). Latency: from
the read's Kafka append to the hit readable (read_committed) on anpr.hits, every 50th read a listed plate that was
never seen before. Prints medians over the rounds of each round's p50 and p99, and the hold/no-hold ratio; writes
benchmarks/results/hold.json. Then the cost of a failover: two workers with the hold, one SIGKILLed under load; the
alerts of the next 30 s wait for its partitions to be taken over (session timeout)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import bench_pipeline as bp
import orjson

from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.process import stop_children

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLI = [sys.executable, "-m", "anpr_stream.cli"]
MODES = {"hold": {}, "no hold": {"ANPR_ALERT_HOLD_MAX_SECONDS": "0"}}


class Plates:
    """Listed plates handed out once each: no hit of a run is a repeat of another's."""

    def __init__(self) -> None:
        letters = "BCDFGHJKLMNPRSTVWXZ"
        self.all = [f"7-H{a}{b}-{n:03d}" for a in letters for b in letters[:4] for n in range(1000)]
        self.next = 0

    def take(self, count: int) -> list[str]:
        out = self.all[self.next : self.next + count]
        self.next += count
        assert len(out) == count, "out of plates"
        return out


async def namespace(found: endpoints.Endpoints, extra: dict[str, str], listed: Path) -> tuple[dict[str, str], str]:
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_{tag}"
    admin = await asyncpg.connect(found.database_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    await admin.close()
    env = {**bp.namespace_env(found.kafka_bootstrap, found.database_url, tag, schema, "0"), **extra}
    for step in (["migrate"], ["watchlist", "load", str(listed)]):
        subprocess.run([*CLI, *step], env=env, cwd=ROOT, check=True, capture_output=True)
    return env, schema


async def measure(env: dict[str, str], rate: int, seconds: float, plates: Plates, cameras: int) -> dict[str, Any]:
    need = int(rate * seconds / 50) + 2
    prefix = f"r{uuid.uuid4().hex[:6]}"
    samples, detect, achieved = await bp.latency_samples(
        env, rate, seconds, plates.take(need), read_prefix=prefix, cameras=cameras
    )
    return bp.latency_summary(samples, detect, rate, achieved)


async def failover(env: dict[str, str], rate: int, plates: Plates, cameras: int) -> dict[str, Any]:
    """Two workers with the hold; the second SIGKILLed 5 s into 40 s of load: latency of the alerts after it."""
    # Each its own ANPR_WORKER_ID: the id is the worker's static group membership.
    procs = [
        bp.start_worker({**env, "ANPR_WORKER_ID": f"{env['ANPR_WORKER_ID']}-{n}"}, RESULTS / f"hold-failover-{n}.log")
        for n in range(2)
    ]
    try:
        await asyncio.sleep(15)  # both in the group, partitions spread
        task = asyncio.create_task(
            bp.latency_samples(env, rate, 40, plates.take(int(rate * 40 / 50) + 2), read_prefix="fo", cameras=cameras)
        )
        await asyncio.sleep(5)
        procs[1].send_signal(signal.SIGKILL)
        samples, detect, achieved = await task
    finally:
        stop_children(*procs)
    return bp.latency_summary(samples, detect, rate, achieved)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1000,5000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=12)
    parser.add_argument("--no-failover", action="store_true")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    plates = Plates()
    listed = RESULTS / "hold-list.csv"
    bp.write_listed(listed, plates.all)
    envs: dict[str, dict[str, str]] = {}
    schemas: list[str] = []
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {mode: {rate: [] for rate in rates} for mode in MODES}
    fo: dict[str, Any] | None = None
    try:
        for mode, extra in MODES.items():
            envs[mode], schema = await namespace(found, extra, listed)
            schemas.append(schema)
            procs.append(bp.start_worker(envs[mode], RESULTS / f"hold-{mode.replace(' ', '-')}.log"))
        await asyncio.sleep(12)
        for mode in MODES:  # warm-up, not counted: the group settles, the partitions' progress rows exist
            await measure(envs[mode], rates[0], 3, plates, args.cameras)
        for n in range(args.rounds):
            for rate in rates:
                for mode in MODES if n % 2 == 0 else reversed(MODES):
                    row = await measure(envs[mode], rate, args.seconds, plates, args.cameras)
                    runs[mode][rate].append(row)
                    print(f"round {n + 1} {mode:<8} {rate:>6} reads/s: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms,"
                          f" {row['hits_measured']} hits", flush=True)  # fmt: skip
        stop_children(*procs)
        procs.clear()
        if not args.no_failover:
            env, schema = await namespace(found, {}, listed)
            schemas.append(schema)
            fo = await failover(env, rates[0], plates, args.cameras)
    finally:
        stop_children(*procs)
        admin = await asyncpg.connect(found.database_url)
        for schema in schemas:
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
        listed.unlink(missing_ok=True)

    def med(mode: str, rate: int, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode][rate] if r[key] is not None)

    table = []
    for rate in rates:
        row: dict[str, Any] = {"rate": rate}
        for key in ("p50_ms", "p99_ms"):
            hold, none = med("hold", rate, key), med("no hold", rate, key)
            row[key] = {"hold": hold, "no_hold": none, "ratio": round(hold / none, 2) if none else None}
        table.append(row)
    result = {"cameras": args.cameras, "seconds": args.seconds, "rounds": args.rounds, "table": table, "runs": runs,
              "failover": fo}  # fmt: skip
    (RESULTS / "hold.json").write_text(
        orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    print(f"\nhit latency, median over {args.rounds} rounds ({args.cameras} cameras, {args.seconds:g} s each)")
    print(f"{'reads/s':>8} {'p50 hold':>9} {'no hold':>8} {'ratio':>6} {'p99 hold':>9} {'no hold':>8} {'ratio':>6}")
    for row in table:
        p50, p99 = row["p50_ms"], row["p99_ms"]
        print(f"{row['rate']:>8} {p50['hold']:>9.1f} {p50['no_hold']:>8.1f} {p50['ratio']!s:>6} "
              f"{p99['hold']:>9.1f} {p99['no_hold']:>8.1f} {p99['ratio']!s:>6}")  # fmt: skip
    if fo is not None:
        print(f"failover (2 workers, one SIGKILLed 5 s into 40 s at {fo['achieved_rate']} reads/s):")
        print(f"  p50 {fo['p50_ms']} ms, p99 {fo['p99_ms']} ms, max {fo['max_ms']} ms, {fo['hits_measured']} alerts")


if __name__ == "__main__":
    asyncio.run(main())
