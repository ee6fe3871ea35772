"""`anpr-stream replay FILE`: publish recorded reads (JSONL, optionally gzip) to the reads topic, lines unchanged."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from anpr_stream import config
from anpr_stream.commands import arguments
from anpr_stream.stream.security import KafkaSecurity, KafkaSecurityError

EXIT_OK = 0
EXIT_BROKER = 1
EXIT_USAGE = 2
DEFAULT_TOPIC = "anpr.reads"
KAFKA_ENV = "ANPR_KAFKA_BOOTSTRAP"
# Delivery futures awaited together: large enough to keep the producer's batches full, small enough to bound memory.
CHUNK = 8192
TTY_REFRESH = 0.25
LOG_REFRESH = 5.0

_MS = timedelta(milliseconds=1)
_FRACTION = re.compile(r"\.(\d+)")
_OBSERVED_AT = re.compile(rb'"observed_at"\s*:\s*"([^"\\]*)"')


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="publish a recorded reads file (JSONL or JSONL.gz) to the reads topic",
        description=(
            "Each line is sent unchanged (invalid lines too: they are what the dead-letter topic is for), keyed by "
            "its camera_id; lines that are not JSON objects with a camera_id get no key."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="reads, one JSON object per line (.gz: gzip)")
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"topic (default {DEFAULT_TOPIC})")
    parser.add_argument("--bootstrap", default=None, help=f"Kafka bootstrap servers (default ${KAFKA_ENV})")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed", type=arguments.positive_float, default=None, help="real time times X, by observed_at gaps"
    )
    pace.add_argument("--as-fast-as-possible", action="store_true", help="no pacing (the default without --speed)")
    parser.add_argument(
        "--shift-to-now", action="store_true", help="rewrite observed_at so the first read is now, gaps kept"
    )
    parser.add_argument("--limit", type=arguments.count, default=None, help="send at most N lines")
    parser.set_defaults(handler=_replay)


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_lines(path: Path) -> Iterator[bytes]:
    """The file's non-empty lines without their line ending; gzip recognised by its magic bytes."""
    with _open(path) as handle:
        for line in handle:
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def count_lines(path: Path) -> int:
    return sum(1 for _ in read_lines(path))


def camera_key(line: bytes) -> tuple[bytes | None, dict[str, Any] | None]:
    """(key, decoded object): the camera_id as bytes, or None for a line that is not a JSON object with one."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(value, dict):
        return None, None
    camera = value.get("camera_id")
    return (camera.encode() if isinstance(camera, str) and camera else None), value


def parse_observed_at(value: dict[str, Any]) -> datetime | None:
    text = value.get("observed_at")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def format_like(original: str, moment: datetime) -> str:
    """`moment` in the offset and precision of `original` (a Z stays a Z)."""
    fraction = _FRACTION.search(original)
    spec = "seconds" if fraction is None else "milliseconds" if len(fraction.group(1)) <= 3 else "microseconds"
    text = moment.isoformat(timespec=spec)
    if original[-1:] in "Zz" and text.endswith("+00:00"):
        text = text[:-6] + original[-1]
    return text


def shift_line(line: bytes, moment: datetime) -> bytes:
    """The line with its observed_at value replaced; every other byte as it was."""
    match = _OBSERVED_AT.search(line)
    if match is None:
        return line
    original = match.group(1).decode("ascii", "replace")
    shifted = format_like(original, moment).encode()
    return line[: match.start(1)] + shifted + line[match.end(1) :]


class Progress:
    """Count/total, rate and elapsed on stderr: a redrawn bar on a terminal, else a line every few seconds."""

    def __init__(self, total: int | None, stream: IO[str], tty: bool) -> None:
        self.total = total
        self.stream = stream
        self.tty = tty
        self.started = time.monotonic()
        self.last = self.started
        self.last_count = 0
        self.rate = 0.0

    def update(self, count: int, force: bool = False) -> None:
        now = time.monotonic()
        interval = TTY_REFRESH if self.tty else LOG_REFRESH
        if not force and now - self.last < interval:
            return
        if now > self.last:
            self.rate = (count - self.last_count) / (now - self.last)
        self.last, self.last_count = now, count
        elapsed = now - self.started
        if self.tty:
            bar = ""
            if self.total:
                done = min(count / self.total, 1.0)
                bar = f"[{'#' * int(done * 30):<30}] {done:6.1%} "
            total = f"/{self.total:,}" if self.total else ""
            self.stream.write(f"\r{bar}{count:,}{total} reads  {self.rate:,.0f} reads/s  {_clock(elapsed)}\x1b[K")
        else:
            total = f"/{self.total:,}" if self.total else ""
            self.stream.write(f"replay: {count:,}{total} reads, {self.rate:,.0f} reads/s, {_clock(elapsed)}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class _BatchPublisher:
    """Records appended straight into per-partition batches (the C record builder), each batch submitted whole.

    `producer.send()` costs ~30 µs a record in Python (partitioner, accumulator, a future each): half the budget
    of 50k reads/s. Keys go to partitions as the Java client's default partitioner does (murmur2), computed once
    per camera; unkeyed lines go round-robin.
    """

    def __init__(self, producer: Any, topic: str, partitions: list[int]) -> None:
        from aiokafka.partitioner import DefaultPartitioner

        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.partitioner = DefaultPartitioner()
        self.by_key: dict[bytes, int] = {}
        self.round_robin = 0
        self.open: dict[int, Any] = {}
        self.futures: list[asyncio.Future[Any]] = []
        self.unconfirmed = 0

    def partition(self, key: bytes | None) -> int:
        if key is None:
            self.round_robin += 1
            return self.partitions[self.round_robin % len(self.partitions)]
        partition = self.by_key.get(key)
        if partition is None:
            partition = self.by_key[key] = self.partitioner(key, self.partitions, self.partitions)
        return partition

    async def add(self, key: bytes | None, value: bytes) -> None:
        partition = self.partition(key)
        batch = self.open.get(partition)
        if batch is None:
            batch = self.open[partition] = self.producer.create_batch()
        if batch.append(timestamp=None, key=key, value=value) is None:
            await self.submit(partition)
            batch = self.open[partition] = self.producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value) is None:
                # Larger than a whole batch: let the producer apply its own size checks and errors.
                del self.open[partition]
                self.futures.append(await self.producer.send(self.topic, value=value, key=key, partition=partition))
        self.unconfirmed += 1

    async def submit(self, partition: int) -> None:
        batch = self.open.pop(partition)
        if batch.record_count():
            self.futures.append(await self.producer.send_batch(batch, self.topic, partition=partition))

    async def submit_open(self) -> None:
        for partition in list(self.open):
            await self.submit(partition)

    async def confirm(self) -> None:
        """Wait until every submitted batch is acknowledged (acks=all); raises the first delivery error."""
        if self.futures:
            await asyncio.gather(*self.futures)
            self.futures.clear()
        self.unconfirmed = 0


@dataclass
class ReplayStats:
    lines: int = 0
    unkeyed: int = 0
    shifted: int = 0
    elapsed: float = 0.0


async def replay(
    path: Path,
    bootstrap: str,
    topic: str,
    *,
    speed: float | None = None,
    shift_to_now: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
    security: KafkaSecurity | None = None,
) -> ReplayStats:
    """Publish the file's lines to `topic`; raises aiokafka's KafkaError on broker trouble. `security`: the client's
    (docs/kafka-security.md; the camera/gateway principal may write the reads topic only), default PLAINTEXT."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaTimeoutError

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **(security or KafkaSecurity()).aiokafka_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        max_batch_size=256 * 1024,
        # No compression: lz4/snappy/zstd need optional packages, and gzip costs more CPU than the network saves here.
        compression_type=None,
        request_timeout_ms=30_000,
    )
    stats = ReplayStats()
    try:
        await producer.start()
        try:
            partitions = await asyncio.wait_for(producer.partitions_for(topic), timeout=30)
        except (TimeoutError, KafkaTimeoutError):
            message = f"no metadata for topic {topic!r}: it does not exist or the broker does not answer"
            raise KafkaTimeoutError(message) from None
        if not partitions:
            raise KafkaTimeoutError(f"topic {topic!r} has no partitions")
        publisher = _BatchPublisher(producer, topic, sorted(partitions))
        started = time.monotonic()
        first: datetime | None = None
        delta = timedelta(0)
        for line in read_lines(path):
            if limit is not None and stats.lines >= limit:
                break
            key, value = camera_key(line)
            if key is None:
                stats.unkeyed += 1
            observed = parse_observed_at(value) if value is not None and (shift_to_now or speed) else None
            if observed is not None:
                if first is None:
                    first = observed
                    # Whole milliseconds, as cameras report them: every gap between reads stays exact.
                    delta = timedelta(milliseconds=round(((now or datetime.now(UTC)) - first) / _MS))
                if speed is not None:
                    due = (observed - first).total_seconds() / speed - (time.monotonic() - started)
                    if due > 0:
                        # What is due goes out before the pause, not when a batch happens to fill.
                        await publisher.submit_open()
                        if progress is not None:
                            progress.update(stats.lines)
                        await asyncio.sleep(due)
                if shift_to_now:
                    line = shift_line(line, observed + delta)
                    stats.shifted += 1
            await publisher.add(key, line)
            stats.lines += 1
            if publisher.unconfirmed >= CHUNK:
                await publisher.confirm()
                if progress is not None:
                    progress.update(stats.lines)
        await publisher.submit_open()
        await publisher.confirm()
        stats.elapsed = time.monotonic() - started
    finally:
        await producer.stop()
    if progress is not None:
        progress.update(stats.lines, force=True)
        progress.finish()
    return stats


def _replay(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    # aiokafka warns "Topic ... not found in cluster metadata" while a topic is being auto-created: noise here.
    # A refused connection is logged by aiokafka and then raised: say it once, below.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    bootstrap = args.bootstrap or config.value(KAFKA_ENV)
    if not bootstrap:
        print(f"replay: no broker: give --bootstrap or set {KAFKA_ENV} (eval \"$(make -s infra)\" in a checkout)",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    path: Path = args.file
    if not path.is_file():
        print(f"replay: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    tty = sys.stderr.isatty()
    try:
        total = count_lines(path) if tty else None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        print(f"replay: {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if total is not None and args.limit is not None:
        total = min(total, args.limit)
    try:
        security = KafkaSecurity.from_env()
    except KafkaSecurityError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = Progress(total, sys.stderr, tty)
    try:
        stats = asyncio.run(
            replay(
                path,
                bootstrap,
                args.topic,
                speed=args.speed,
                shift_to_now=args.shift_to_now,
                limit=args.limit,
                progress=progress,
                security=security,
            )
        )
    except KafkaError as exc:
        progress.finish()
        print(f"replay: Kafka at {bootstrap}: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        progress.finish()
        print(f"replay: {path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rate = stats.lines / stats.elapsed if stats.elapsed > 0 else 0.0
    print(
        f"replay: {stats.lines:,} lines to {args.topic} ({stats.unkeyed:,} without a camera key, "
        f"{stats.shifted:,} shifted to now) in {stats.elapsed:.2f}s, {rate:,.0f} reads/s",
        file=sys.stderr,
    )
    return EXIT_OK
