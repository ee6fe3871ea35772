"""Nothing is lost or duplicated when the worker is killed (SIGKILL, repeatedly) during a 100k-read replay, or when
PostgreSQL is down for 30 s mid-stream. Expected hits come from the pure matcher, independently of the worker."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from anpr_stream.core.identity import read_hit_id
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.devinfra.postgres import LocalPostgres
from anpr_stream.watchlists import load_watchlists
from tests.integration.conftest import Namespace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADER = "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert"
LETTERS = "ABCEFHJKMNPRTVWXY"  # no lookalikes of digits: random plates do not hit the list by accident
WANTED = ["1-KXR-482", "2-BSG-716", "GX-482-T", "1-HGT-904", "751-BJS", "M-JKR-66"]


def traffic(count: int, seed: int, start: datetime) -> tuple[list[bytes], list[bytes], int]:
    """(values, keys, number of invalid messages); ~0.5% planted listed plates, ~0.2% invalid."""
    rng = random.Random(seed)
    cameras = ["LM-E314-BOORSEM-IN", "LM-VELDWEZELT-OUT", "LM-N78-REKEM-N", "LM-EISDEN", "UNKNOWN-7"]
    values: list[bytes] = []
    keys: list[bytes] = []
    invalid = 0
    for i in range(count):
        camera = cameras[i % len(cameras)]
        at = start + timedelta(milliseconds=37 * i)
        if rng.random() < 0.002:
            values.append(b'{"read_id": "broken-' + str(i).encode() + b'", ')
            invalid += 1
        else:
            if rng.random() < 0.005:
                plate = rng.choice(WANTED)
            else:
                plate = f"{rng.choice('12')}-{''.join(rng.choices(LETTERS, k=3))}-{rng.randrange(1000):03d}"
            values.append(
                orjson.dumps(
                    {"read_id": f"rd-{seed}-{i}", "camera_id": camera, "observed_at": at.isoformat(),
                     "plate": plate, "country": "BE", "confidence": 0.9}
                )
            )  # fmt: skip
        keys.append(camera.encode())
    return values, keys, invalid


def write_list(path: Path) -> Path:
    rows = [f"E-{i},stolen_vehicle,{plate},BE,1,intercept,,,PV {i},false" for i, plate in enumerate(WANTED)]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def expected_hits(values: list[bytes], list_file: Path) -> set[str]:
    entries, _ = load_watchlists([list_file], lambda *a: None)
    index = WatchlistIndex.build(entries)
    policy = MatchPolicy.parse("default=fuzzy:0")
    out = set()
    for value in values:
        try:
            read = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        at = datetime.fromisoformat(read["observed_at"])
        for match in index.match(read["plate"], at, policy):
            out.add(read_hit_id(read, match.entry.entry_id))
    return out


async def check_exactly_once(ns: Namespace, values: list[bytes], invalid: int, expected: set[str]) -> None:
    valid = len(values) - invalid
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", valid, timeout=240) == valid
    assert await ns.wait_for_rows("SELECT count(*) FROM hits", len(expected), timeout=60) == len(expected)
    conn = await ns.db()
    try:
        assert await conn.fetchval("SELECT count(DISTINCT read_id) FROM passages") == valid
        stored = {r["hit_id"] for r in await conn.fetch("SELECT hit_id::text FROM hits")}
        assert stored == expected
    finally:
        await conn.close()
    published = await ns.consume(ns.hits, len(expected), timeout=60)
    counts = Counter(r.key.decode() for r in published if not orjson.loads(r.value)["suppressed"])
    assert not [k for k, n in counts.items() if n > 1], "a hit was dispatched twice"
    dead = await ns.consume(ns.dlq, invalid, timeout=30)
    assert len({(r.partition, r.offset) for r in dead}) == invalid
    assert len({r.value for r in dead}) == invalid, "a dead letter was published twice"


async def test_sigkill_during_replay_loses_and_duplicates_nothing(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    list_file = write_list(tmp_path / "list.csv")
    assert ns.cli("watchlist", "load", str(list_file)).returncode == 0
    start = datetime.now(UTC) - timedelta(hours=2)
    values, keys, invalid = traffic(100_000, seed=7, start=start)
    expected = expected_hits(values, list_file)
    assert len(expected) > 300

    worker = ns.start_worker()
    await ns.produce(values, keys)
    kills = 0
    for _ in range(4):
        # Let it get somewhere, then kill it mid-batch and start a fresh one.
        await asyncio.sleep(2.5)
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
        worker = ns.start_worker()
    assert kills >= 3
    await check_exactly_once(ns, values, invalid, expected)


async def test_postgres_outage_of_30_seconds_is_waited_out(namespace: Namespace, tmp_path: Path) -> None:
    ns = namespace
    if ns.infra.database_source != "local":
        pytest.skip("stops and starts the local PostgreSQL; this run uses an external one")
    list_file = write_list(tmp_path / "list.csv")
    assert ns.cli("watchlist", "load", str(list_file)).returncode == 0
    values, keys, invalid = traffic(20_000, seed=11, start=datetime.now(UTC) - timedelta(hours=1))
    expected = expected_hits(values, list_file)
    worker = ns.start_worker()
    half = len(values) // 2
    await ns.produce(values[:half], keys[:half])
    assert await ns.wait_for_rows("SELECT count(*) FROM passages", 1000, timeout=60) >= 1000

    postgres = LocalPostgres.from_env()
    assert postgres.stop()
    try:
        await ns.produce(values[half:], keys[half:])  # arrives while the database is down
        await asyncio.sleep(30)
        assert worker.poll() is None, "the worker died during the outage"
    finally:
        await asyncio.to_thread(postgres.ensure_running)
    await check_exactly_once(ns, values, invalid, expected)
    assert worker.poll() is None
