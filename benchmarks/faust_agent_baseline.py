"""Baseline for the benchmark report: a plain per-event faust agent doing the worker's match-stage work per read.

    .venv/bin/python benchmarks/faust_agent_baseline.py --bootstrap HOST:PORT --topic T --group G \\
        --watchlist A.csv [B.csv ...] [--policy P] [--database-url URL] [--datadir DIR]

What a naive implementation looks like: `@app.agent(topic)` with `async for value in stream` (concurrency 1, faust's
own offset commits), and per read exactly what the worker's match stage does for a batch: `classify` on a
batch of one (size check, orjson, JSON Schema, `reading_from_mapping`, future/retention checks, normalise,
confusion class, plate format, camera lookup, `index.match` on the same WatchlistIndex and policy) and `hits_of`.
With --database-url each passage is then written with one autocommitted INSERT per read; hits (a few per ten
thousand reads) are not stored and nothing is published. Without it nothing is written.

Progress goes to the --progress file as JSON lines `{"n": reads, "t": epoch seconds}` (the first read, then every
PROGRESS_EVERY reads); the benchmark that starts this process follows that file and stops it with SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import faust
import orjson

from anpr_stream.cameras import CameraRegistry
from anpr_stream.core.batch import classify
from anpr_stream.core.hits import hits_of
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.record import InRecord
from anpr_stream.retention import preset
from anpr_stream.watchlists import load_watchlists

PROGRESS_EVERY = 500
_INSERT = """
INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country, confidence,
                      plate_format, camera_known, has_hit, extra)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING
"""


def build_app(args: argparse.Namespace) -> faust.App:
    entries, _skipped = load_watchlists(args.watchlist, lambda f, n, why: print(f"{f}:{n}: {why}", file=sys.stderr))
    index = WatchlistIndex.build(entries)
    policy = MatchPolicy.parse(args.policy)
    cameras = CameraRegistry.load()
    retention = preset("be")
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap.replace(',', ';kafka://')}",
        web_enabled=False,
        store="memory://",
        datadir=args.datadir,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    database_url: str | None = args.database_url
    state: dict[str, Any] = {"n": 0, "conn": None, "days": set()}

    progress_file = open(args.progress, "ab", buffering=0)  # noqa: SIM115 -- open for the life of the process

    def progress(count: int) -> None:
        progress_file.write(orjson.dumps({"n": count, "t": time.time()}) + b"\n")

    @app.agent(topic, concurrency=1)
    async def match_reads(stream: Any) -> None:
        if database_url is not None and state["conn"] is None:
            import asyncpg

            state["conn"] = await asyncpg.connect(database_url)
        conn = state["conn"]
        days: set[date] = state["days"]
        async for value in stream:
            now = datetime.now(UTC)
            event = stream.current_event
            message = event.message
            stamp_ms = int(message.timestamp * 1000)
            record = InRecord(message.topic, message.partition, message.offset, event.key, value, stamp_ms)
            result = classify([record], index, policy, cameras, retention.passage_horizon(now), now)
            hits = hits_of(result.passages, lambda name: policy.for_list(name).dispatch)
            if conn is not None:
                for p in result.passages:
                    day = p.reading.observed_at.astimezone(UTC).date()
                    if day not in days:
                        await conn.execute("SELECT ensure_passage_partition($1)", day)
                        days.add(day)
                    r = p.reading
                    await conn.execute(
                        _INSERT, r.read_id, r.camera_id, r.observed_at, r.plate, p.plate_norm, p.plate_class,
                        r.country, r.confidence, p.plate_format, p.camera_known, bool(hits),
                        orjson.dumps(r.extra).decode(),
                    )  # fmt: skip
            state["n"] += 1
            if state["n"] == 1 or state["n"] % PROGRESS_EVERY == 0:
                progress(state["n"])

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True, help="reads topic (only read)")
    parser.add_argument("--group", required=True, help="faust app id = consumer group; unique per run")
    parser.add_argument("--watchlist", nargs="+", required=True, type=Path, help="watchlist CSV files")
    parser.add_argument("--policy", default="default=fuzzy:0", help="ANPR_MATCH_POLICY syntax")
    parser.add_argument("--database-url", default=None, help="write every passage, one INSERT per read")
    parser.add_argument("--datadir", default=".local/faust-baseline", help="faust's data directory")
    parser.add_argument("--progress", required=True, type=Path, help="JSON lines of (reads, time) are appended here")
    parser.add_argument("--loglevel", default="warning")
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    app = build_app(args)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
