"""`anpr-stream replay` against the real broker: every line arrives unchanged (but observed_at when shifted), keyed
by camera, in file order per camera; pacing, limits and broker errors."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from anpr_stream.cameras import CameraRegistry
from anpr_stream.commands.replay import camera_key, parse_observed_at, replay, shift_line
from anpr_stream.traffic import generate, plant_watchlist
from anpr_stream.traffic.output import write_reads
from tests.conftest import Infra

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 26, 7, 0, tzinfo=timezone(timedelta(hours=1)))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """Ten minutes of the morning peak with 2% invalid lines."""
    path = tmp_path_factory.mktemp("replay") / "sample.jsonl.gz"
    duration = timedelta(minutes=10)
    reads = generate(
        3, START, duration, 150_000, planting=plant_watchlist(3, START, duration, list(CameraRegistry.load()))
    )
    write_reads(path, reads, invalid_rate=0.02, seed=3)
    with gzip.open(path, "rb") as handle:
        lines = handle.read().splitlines()
    assert 1000 < len(lines) < 3000
    return path, lines


async def _topic(infra: Infra, partitions: int = 3) -> str:
    topic = f"test.replay.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def _consume(infra: Infra, topic: str, count: int) -> list[tuple[int, bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=infra.kafka_bootstrap, auto_offset_reset="earliest", group_id=f"g-{topic}"
    )
    await consumer.start()
    received: list[tuple[int, bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    received += [(r.partition, r.key, r.value) for r in records]
        await asyncio.sleep(0.5)  # nothing more than what was sent
        batches = await consumer.getmany(timeout_ms=500)
        received += [(r.partition, r.key, r.value) for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    return received


async def test_replay_shifted_to_now_sends_every_line_keyed_by_camera(
    infra: Infra, sample: tuple[Path, list[bytes]]
) -> None:
    path, lines = sample
    topic = await _topic(infra)
    now = datetime.now(UTC)
    stats = await replay(path, infra.kafka_bootstrap, topic, shift_to_now=True, now=now)
    assert stats.lines == len(lines)
    received = await _consume(infra, topic, len(lines))
    assert len(received) == len(lines)

    decoded_lines = (camera_key(line)[1] for line in lines)
    first_observed = next(o for d in decoded_lines if d is not None and (o := parse_observed_at(d)) is not None)
    delta = timedelta(milliseconds=round((now - first_observed) / timedelta(milliseconds=1)))
    assert abs(first_observed + delta - now) <= timedelta(milliseconds=1)
    # Per key (camera), the partition keeps file order: compare line by line.
    by_key: dict[bytes | None, list[bytes]] = {}
    for line in lines:
        by_key.setdefault(camera_key(line)[0], []).append(line)
    got: dict[bytes | None, list[bytes]] = {}
    partition_of: dict[bytes, set[int]] = {}
    for partition, key, value in received:
        got.setdefault(key, []).append(value)
        if key is not None:
            partition_of.setdefault(key, set()).add(partition)
    assert all(len(p) == 1 for p in partition_of.values()), "one camera, one partition"
    assert len({p for ps in partition_of.values() for p in ps}) > 1, "cameras spread over partitions"
    assert None in by_key, "the sample has lines without a camera key"
    assert sorted(got[None]) == sorted(by_key[None])
    shifted = 0
    for key, originals in by_key.items():
        if key is None:
            continue
        assert len(got[key]) == len(originals)
        for original, value in zip(originals, got[key], strict=True):
            _, decoded = camera_key(original)
            assert decoded is not None
            try:
                observed = datetime.fromisoformat(decoded["observed_at"])
            except (KeyError, TypeError, ValueError):
                assert value == original  # no usable observed_at: sent untouched
                continue
            if observed.tzinfo is None:
                assert value == original
                continue
            assert value == shift_line(original, observed + delta)
            assert datetime.fromisoformat(json.loads(value)["observed_at"]) == observed + delta
            shifted += 1
    assert shifted == stats.shifted > 0.9 * len(lines)


async def test_replay_paced_and_limited(infra: Infra, sample: tuple[Path, list[bytes]]) -> None:
    path, lines = sample
    topic = await _topic(infra, partitions=1)
    # The first 60 lines span a few seconds of traffic; at 20x they take a fraction of that.
    last = datetime.fromisoformat(json.loads(lines[59])["observed_at"]) if camera_key(lines[59])[0] else None
    began = time.monotonic()
    stats = await replay(path, infra.kafka_bootstrap, topic, speed=20, limit=60)
    elapsed = time.monotonic() - began
    assert stats.lines == 60 and stats.shifted == 0
    received = await _consume(infra, topic, 60)
    assert [value for _, _, value in received] == lines[:60]
    if last is not None:
        span = (last - datetime.fromisoformat(json.loads(lines[0])["observed_at"])).total_seconds()
        assert elapsed >= span / 20 - 0.05


def test_cli_replay_summary_and_broker_errors(infra: Infra, sample: tuple[Path, list[bytes]]) -> None:
    path, lines = sample
    topic = asyncio.run(_topic(infra))
    env = {**os.environ, "ANPR_KAFKA_BOOTSTRAP": infra.kafka_bootstrap}
    cli = [sys.executable, "-m", "anpr_stream.cli", "replay", str(path), "--topic", topic, "--shift-to-now"]
    done = subprocess.run(cli, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"replay: {len(lines):,} lines to {topic}" in done.stderr
    assert "reads/s" in done.stderr and "\r" not in done.stderr  # not a terminal: no redrawn bar
    broken = [*cli[:5], "--bootstrap", "127.0.0.1:1", "--topic", topic]
    done = subprocess.run(broken, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "replay: Kafka at 127.0.0.1:1:" in done.stderr and "Traceback" not in done.stderr
