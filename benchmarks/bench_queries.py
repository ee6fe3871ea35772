"""Investigation queries on a big passages table: p50/p95 of exact, wildcard, fuzzy, route, co-travel and camera
queries (the SQL the API runs, anpr_stream/api/passage_queries.py, and a subset through HTTP), and the time the real
purge code (anpr_stream/retention/purge.py) takes to remove one day partition.

Run: .venv/bin/python benchmarks/bench_queries.py  (10M passages: ~15-20 minutes on 2 cores; --passages to change)

Loads synthetic passages in the zone's plate formats into day partitions made by ensure_passage_partition, in its own
schema of the local PostgreSQL (dropped at the end, also after a failure). Skewed traffic: 1% of passages by 100 very
frequent plates, 29% by 20,000 regular ones, 70% spread over all plates; one planted convoy (a target with three
companions within 30 s at the same camera). The secondary indexes are dropped for the bulk load and rebuilt from their
own definitions (pg_indexes), which is what a restore would do; the figures are for the indexes as the migrations
define them. Writes benchmarks/latest/queries.md and queries.json (--name: another name, for a run at another size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from anpr_stream.api.passage_queries import Key, candidate_plates, cotravellers, passages_page, route
from anpr_stream.api.plate_query import fuzzy_form, fuzzy_like_patterns, like_pattern
from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.plates import confusion_form, normalise, plate_format
from anpr_stream.core.plates.synthetic import ZONE_TRAFFIC_MIX, synthetic_plate
from anpr_stream.devinfra import endpoints
from anpr_stream.devinfra.process import stop_children
from anpr_stream.retention.policy import DataClass, preset
from anpr_stream.retention.purge import purge
from anpr_stream.sinks.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "benchmarks" / "latest"
FREQUENT, REGULAR = 100, 20_000


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p95_ms": round(percentile(samples, 0.95) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


async def timed(runs: list[Callable[[], Awaitable[Any]]]) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for run in runs:
        start = time.perf_counter()
        results.append(await run())
        times.append(time.perf_counter() - start)
    return times, results


def make_plates(count: int, seed: int) -> list[tuple[int, str, str, str, str, str | None]]:
    rng = random.Random(seed)
    countries, weights = list(ZONE_TRAFFIC_MIX), list(ZONE_TRAFFIC_MIX.values())
    seen: set[str] = set()
    out = []
    while len(out) < count:
        country = rng.choices(countries, weights)[0]
        printed = synthetic_plate(rng, country)
        norm = normalise(printed)
        if norm in seen:
            continue
        seen.add(norm)
        out.append((len(out), printed, norm, confusion_form(norm), country, plate_format(norm, country)))
    return out


async def load(conn: asyncpg.Connection, passages: int, days: int, plates: int, today: date) -> dict[str, float]:
    figures: dict[str, float] = {}
    start = time.perf_counter()
    rows = make_plates(plates, 7)
    await conn.execute(
        "CREATE UNLOGGED TABLE bench_plates (id int PRIMARY KEY, plate_raw text, plate_norm text, plate_class text, "
        "country text, plate_format text)"
    )
    await conn.copy_records_to_table("bench_plates", records=rows)
    cameras = [c.camera_id for c in CameraRegistry.load() if not c.mobile]
    first = today - timedelta(days=days - 1)
    for i in range(days):
        await conn.execute("SELECT ensure_passage_partition($1)", first + timedelta(days=i))
    # pg_indexes shows a partitioned index as "ON ONLY passages": run as such it would make an empty, invalid parent.
    definitions = [
        r["indexdef"].replace(" ON ONLY ", " ON ", 1)
        for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'passages' "
            "AND indexname NOT LIKE '%pkey'"
        )
    ]
    for r in await conn.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'passages' "
        "AND indexname NOT LIKE '%pkey'"
    ):
        await conn.execute(f'DROP INDEX "{r["indexname"]}"')
    figures["generate_plates_s"] = time.perf_counter() - start
    per_day = passages // days
    start = time.perf_counter()
    for i in range(days):
        day_start = datetime.combine(first + timedelta(days=i), dtime(), tzinfo=UTC)
        # 1% frequent plates (ids < FREQUENT), 29% regular (ids < REGULAR), 70% any plate.
        await conn.execute(
            """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
                   confidence, plate_format, camera_known)
               SELECT 'b' || $1::int || '-' || g, ($2::text[])[1 + floor(random() * $3)::int],
                      $4::timestamptz + (random() * 86399.0) * interval '1 second',
                      p.plate_raw, p.plate_norm, p.plate_class, p.country, 0.7 + random() * 0.3, p.plate_format, true
                 FROM (SELECT g, CASE WHEN r < 0.01 THEN floor(random() * $5)::int
                                   WHEN r < 0.30 THEN floor(random() * $6)::int
                                   ELSE floor(random() * $7)::int END AS plate_id
                         FROM (SELECT g, random() AS r FROM generate_series(1, $8) g) s) x
                 JOIN bench_plates p ON p.id = x.plate_id""",
            i, cameras, len(cameras), day_start, FREQUENT, REGULAR, plates, per_day,
        )  # fmt: skip
        if i % 10 == 9:
            print(f"  loaded {i + 1}/{days} days ({time.perf_counter() - start:.0f} s)", flush=True)
    figures["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for definition in definitions:
        step = time.perf_counter()
        await conn.execute(definition)
        name = definition.split(" INDEX ", 1)[1].split(" ", 1)[0]
        figures[f"index_{name}_s"] = time.perf_counter() - step
        print(f"  {name}: {figures[f'index_{name}_s']:.0f} s", flush=True)
    # As the worker's maintenance loop leaves them (migration 0014): the trigram indexes on every day that ended,
    # none on today's partition, the one being written.
    step = time.perf_counter()
    await conn.execute("SELECT index_closed_passage_partitions($1)", today)
    figures["index_closed_days_s"] = time.perf_counter() - step
    print(f"  trigram indexes of the closed days: {figures['index_closed_days_s']:.0f} s", flush=True)
    figures["indexes_s"] = time.perf_counter() - start
    start = time.perf_counter()
    await conn.execute("VACUUM ANALYZE passages")
    figures["vacuum_analyze_s"] = time.perf_counter() - start
    return figures


async def plant_convoy(conn: asyncpg.Connection, today: date, days: int) -> tuple[str, list[str]]:
    """A target plate with three companions: 60 passages over the last days (up to 20), companions within 30 s."""
    target, companions = "1CVY001", ["1CVY002", "2CVY003", "1CVY004"]
    rng = random.Random(11)
    cameras = [c.camera_id for c in CameraRegistry.load() if not c.mobile]
    records = []
    for n in range(60):
        at = datetime.combine(today - timedelta(days=1 + n % min(20, days - 2)), dtime(6 + n % 12), tzinfo=UTC)
        camera = rng.choice(cameras)
        for j, plate in enumerate([target, *companions]):
            seen = at + timedelta(seconds=rng.randint(-30, 30) if j else 0)
            records.append((f"cvy-{n}-{j}", camera, seen, plate, plate, confusion_form(plate), "BE", 0.95, None, True))
    await conn.copy_records_to_table(
        "passages", records=records,
        columns=["read_id", "camera_id", "observed_at", "plate_raw", "plate_norm", "plate_class", "country",
                 "confidence", "plate_format", "camera_known"],
    )  # fmt: skip
    return target, companions


def wildcard_of(rng: random.Random, plate: str) -> str:
    if rng.random() < 0.5:
        return plate[: max(3, len(plate) - 3)] + "*"  # the start of a plate, e.g. "1AB*"
    i = rng.randrange(1, len(plate) - 1)
    return plate[:i] + "?" + plate[i + 1 :]  # one unreadable character


async def queries(pool: asyncpg.Pool, sample: list[str], hot: list[str], now: datetime, n: int) -> dict[str, Any]:
    rng = random.Random(3)
    since30 = now - timedelta(days=30)
    since_all = now - timedelta(days=400)
    out: dict[str, Any] = {}
    plates = [rng.choice(sample) for _ in range(n)]
    times, res = await timed(
        [lambda p=p: passages_page(pool, Key.PLATE, p, since30, None, None, None, 100) for p in plates]
    )
    out["exact"] = {**summary(times), "mean_rows": statistics.mean(map(len, res))}
    patterns = [like_pattern(wildcard_of(rng, p)) for p in plates]
    times, res = await timed(
        [lambda p=p: passages_page(pool, Key.PLATE_LIKE, p, since30, None, None, None, 100) for p in patterns]
    )
    out["wildcard"] = {**summary(times), "mean_rows": statistics.mean(map(len, res))}
    ocr = [confusion_form(p) for p in plates]
    times, _ = await timed(
        [lambda p=p: passages_page(pool, Key.PLATE_CLASS, p, since30, None, None, None, 100) for p in ocr]
    )
    out["ocr"] = summary(times)
    routes = [rng.choice(hot) for _ in range(n)]
    times, res = await timed([lambda p=p: route(pool, Key.PLATE, p, since_all, None, None, 10_001) for p in routes])
    out["route"] = {**summary(times), "mean_rows": statistics.mean(map(len, res))}
    co = routes[: max(20, n // 4)]
    times, res = await timed(
        [
            lambda p=p: cotravellers(
                pool, Key.PLATE, p, confusion_form(p), since30, None, None, timedelta(seconds=60), 2, 50, 2000
            )
            for p in co
        ]
    )
    out["cotravel"] = {**summary(times), "mean_target_passages": statistics.mean(r[0] for r in res)}
    for distance in (1, 2):

        async def fuzzy(p: str, d: int = distance) -> int:
            form = fuzzy_form(p, d)
            found = await candidate_plates(
                pool, since30, None, None, class_like=fuzzy_like_patterns(form, d),
                lengths=(len(form) - d, len(form) + d),
            )  # fmt: skip
            return len(found)

        fuzzy_plates = [p for p in plates if len(p) >= 5][: max(20, n // 4)]
        times, res = await timed([lambda p=p: fuzzy(p) for p in fuzzy_plates])
        out[f"fuzzy{distance}_candidates"] = {**summary(times), "mean_candidate_plates": statistics.mean(res)}
    cams = [c.camera_id for c in CameraRegistry.load() if not c.mobile]
    times, _ = await timed(
        [
            lambda c=c: passages_page(pool, Key.CAMERA, c, since30, None, None, None, 100)
            for c in [rng.choice(cams) for _ in range(max(20, n // 4))]
        ]
    )
    out["camera_page"] = summary(times)
    return out


async def http_subset(env: dict[str, str], sample: list[str], hot: list[str], now: datetime, n: int) -> dict[str, Any]:
    cli = [sys.executable, "-m", "anpr_stream.cli"]
    made = subprocess.run([*cli, "users", "add", "bench", "--role", "investigator"], env=env, cwd=ROOT,
                          capture_output=True, check=True)  # fmt: skip
    token = made.stdout.decode().strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([*cli, "api", "--port", str(port), "--loglevel", "warning"], env=env, cwd=ROOT,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "benchmark", "X-Case-Reference": "BENCH-1"}
    since = (now - timedelta(days=29)).isoformat()
    rng = random.Random(5)
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            for _ in range(300):
                try:
                    if (await client.get("/openapi.json")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)

            async def get(path: str, params: dict[str, Any]) -> int:
                response = await client.get(path, params=params)
                response.raise_for_status()
                return len(response.content)

            out: dict[str, Any] = {}
            plates = [rng.choice(sample) for _ in range(n)]
            times, _ = await timed([lambda p=p: get("/v1/plates/search", {"plate": p, "since": since}) for p in plates])
            out["http_exact"] = summary(times)
            patterns = [wildcard_of(rng, p) for p in plates]
            times, _ = await timed(
                [
                    lambda p=p: get("/v1/plates/search", {"plate": p, "mode": "wildcard", "since": since})
                    for p in patterns
                ]
            )
            out["http_wildcard"] = summary(times)
            routes = [rng.choice(hot) for _ in range(n)]
            times, _ = await timed([lambda p=p: get(f"/v1/plates/{p}/route", {"since": since}) for p in routes])
            out["http_route"] = summary(times)
            times, _ = await timed([lambda p=p: get(f"/v1/plates/{p}/cotravel", {"since": since}) for p in routes])
            out["http_cotravel"] = summary(times)
            return out
    finally:
        stop_children(proc, timeout=15)


async def explain(pool: asyncpg.Pool, plate: str, now: datetime) -> dict[str, str]:
    """The plans of the main queries (EXPLAIN ANALYZE, buffers), kept with the figures."""
    since = now - timedelta(days=30)
    out = {}
    cases = {
        "exact": ("SELECT read_id FROM passages WHERE plate_norm = $1 AND observed_at >= $2 "
                  "ORDER BY observed_at DESC, read_id DESC LIMIT 100", [plate, since]),
        "wildcard": ("SELECT read_id FROM passages WHERE plate_norm LIKE $1 AND observed_at >= $2 "
                     "ORDER BY observed_at DESC, read_id DESC LIMIT 100", [plate[:4] + "%", since]),
        "fuzzy2_candidates": ("SELECT DISTINCT plate_norm FROM passages WHERE plate_class LIKE ANY($1) "
                              "AND observed_at >= $2", [fuzzy_like_patterns(confusion_form(plate), 2), since]),
    }  # fmt: skip
    async with pool.acquire() as conn:
        for name, (sql, args) in cases.items():
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, SUMMARY ON) {sql}", *args)
            lines = [r[0] for r in rows]
            out[name] = "\n".join(lines[:12] + (["..."] if len(lines) > 14 else []) + lines[-2:])
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument("--plates", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--http-queries", type=int, default=50)
    parser.add_argument("--name", default="queries", help="report name in benchmarks/latest/ (e.g. queries-100m)")
    parser.add_argument("--keep", action="store_true", help="keep the schema (drop it by hand: it is big)")
    args = parser.parse_args()
    free = shutil.disk_usage("/").free
    need = args.passages * 600  # heap + 6 indexes, generous
    if free < need + 5 * 2**30:
        sys.exit(f"bench_queries: {free / 2**30:.0f} GiB free, need ~{need / 2**30:.0f} GiB plus 5 GiB to spare")
    found = await asyncio.to_thread(endpoints.resolve, os.environ)
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_q_{tag}"
    admin = await asyncpg.connect(found.database_url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    env = endpoints.isolated_env(found.kafka_bootstrap, found.database_url, "benchq", tag, schema,
                                 ANPR_METRICS_PORT="0")  # fmt: skip
    url = env["ANPR_DATABASE_URL"]
    result: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "passages": args.passages,
                              "days": args.days, "plates": args.plates, "machine": f"{platform.machine()}, "
                              f"{os.cpu_count()} cores (shared)"}  # fmt: skip
    complete = False
    try:
        now = datetime.now(UTC)
        today = now.date()
        conn = await asyncpg.connect(url)
        await migrate(conn)
        result["postgres"] = await conn.fetchval("SHOW server_version")
        print(f"loading {args.passages:,} passages over {args.days} days into {schema} ...", flush=True)
        result["load"] = {
            k: round(v, 1) for k, v in (await load(conn, args.passages, args.days, args.plates, today)).items()
        }
        target, companions = await plant_convoy(conn, today, args.days)
        await conn.execute("ANALYZE passages")
        result["rows"] = await conn.fetchval("SELECT count(*) FROM passages")
        result["sizes"] = {
            r["name"]: r["size"]
            for r in await conn.fetch(
                """SELECT pi.relname AS name, pg_size_pretty(sum(pg_relation_size(t.relid))) AS size
                     FROM pg_class pi CROSS JOIN LATERAL pg_partition_tree(pi.oid) t
                    WHERE pi.relnamespace = current_schema()::regnamespace AND pi.relkind = 'I'
                      AND pi.relname IN (SELECT indexname FROM pg_indexes
                                          WHERE schemaname = current_schema() AND tablename = 'passages')
                    GROUP BY 1"""
            )
        }
        result["sizes"]["heap"] = await conn.fetchval(
            "SELECT pg_size_pretty(sum(pg_relation_size(relid))) FROM pg_partition_tree('passages')"
        )
        sample = [r[0] for r in await conn.fetch("SELECT plate_norm FROM bench_plates ORDER BY random() LIMIT 2000")]
        hot = [r[0] for r in await conn.fetch("SELECT plate_norm FROM bench_plates WHERE id < $1", REGULAR)]
        await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        print("queries (the API's SQL) ...", flush=True)
        result["queries"] = await queries(pool, sample, hot, now, args.queries)
        _, found_convoy = await cotravellers(
            pool, Key.PLATE, target, confusion_form(target), now - timedelta(days=30), None, None,
            timedelta(seconds=60), 2, 10, 2000,
        )  # fmt: skip
        result["convoy_found"] = sorted(r["plate"] for r in found_convoy[:3]) == sorted(companions)
        result["plans"] = await explain(pool, sample[0], now)
        await pool.close()
        print("queries through HTTP ...", flush=True)
        result["http"] = await http_subset(env, sample, hot, now, args.http_queries)
        conn = await asyncpg.connect(url)
        policy = preset("be")
        oldest = today - timedelta(days=args.days - 1)
        as_of = datetime.combine(oldest + timedelta(days=1), dtime(), tzinfo=UTC) + policy.horizon_for(
            DataClass.PASSAGES
        )
        start = time.perf_counter()
        report = await purge(conn, policy, as_of)
        result["purge_one_day"] = {
            "seconds": round(time.perf_counter() - start, 3),
            "dropped": report.dropped_partitions,
            "passages_removed": report.passages_removed,
        }
        await conn.close()
        complete = True
    finally:
        if not (args.keep and complete):
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
    LATEST.mkdir(parents=True, exist_ok=True)
    (LATEST / f"{args.name}.json").write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    (LATEST / f"{args.name}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Investigation queries on a big passages table",
        "",
        f"{r['when']}: {r['rows']:,} passages over {r['days']} day partitions, {r['plates']:,} distinct plates, "
        f"PostgreSQL {r['postgres']}, {r['machine']}. Load: {r['load']}.",
        "",
        "| query (API's SQL, no HTTP) | n | p50 ms | p95 ms | max ms | notes |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in r["queries"].items():
        notes = ", ".join(f"{k} {v:.1f}" for k, v in s.items() if k.startswith("mean"))
        lines.append(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} | {notes} |")
    lines += ["", "| through HTTP (auth, audit row, JSON) | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for name, s in r["http"].items():
        lines.append(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} |")
    p = r["purge_one_day"]
    lines += [
        "",
        f"Purge of one day partition (retention/purge.py, DETACH CONCURRENTLY + DROP): {p['seconds']} s "
        f"({p['passages_removed']:,} passages, {', '.join(p['dropped'])}).",
        f"Planted convoy found (its three companions ranked first): {r['convoy_found']}.",
        "",
        f"Sizes: {r['sizes']}.",
        "",
        "## Plans",
    ]
    for name, plan in r["plans"].items():
        lines += ["", f"{name}:", "```", plan, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    asyncio.run(main())
