"""The camera gateway's throughput and latency: posts/s of one gateway process for a typical OpenALPR alpr_group with
a 50 KB plate image and without an image, and the time from request to answer (the answer waits for Kafka's
acknowledgement, acks=all) at a steady 500 posts/s; with a raw aiokafka producer of the same readings (acks=all) in
the same run as the floor the broker itself sets.

    .venv/bin/python benchmarks/bench_gateway.py [--seconds 10] [--connections 16] [--rate 500]

Starts (or uses, per ANPR_KAFKA_BOOTSTRAP) the local Kafka; works in a topic of its own, deleted at the end. The load
generator is a minimal HTTP/1.1 keep-alive client in a second process (httpx would be the bottleneck). Prints a
table; writes benchmarks/results/gateway.json and benchmarks/latest/gateway.md."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from anpr_stream.devinfra import endpoints

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LATEST = ROOT / "benchmarks" / "latest"
SAMPLE = ROOT / "tests" / "unit" / "gateway" / "payloads" / "openalpr" / "alpr_group.json"
IMAGE_BYTES = 50 * 1024


def alpr_group(n: int, image: bytes | None) -> bytes:
    """The sample alpr_group with a fresh uuid and plate per post (every post a new read), optionally a JPEG crop."""
    body = orjson.loads(SAMPLE.read_bytes())
    body["best_uuid"] = f"bench-{n}"
    body["uuids"] = [f"bench-{n}"]
    body["best_plate_number"] = f"BX{n % 100000:05d}"
    if isinstance(body.get("best_plate"), dict):
        body["best_plate"]["plate"] = body["best_plate_number"]
    if image is not None:
        body.setdefault("best_plate", {})["plate_crop_jpeg"] = base64.b64encode(image).decode()
    else:
        if isinstance(body.get("best_plate"), dict):
            body["best_plate"].pop("plate_crop_jpeg", None)
        body.pop("vehicle_crop_jpeg", None)
    return orjson.dumps(body)


def request(port: int, token: str, body: bytes) -> bytes:
    head = (f"POST /v1/ingest/bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status


async def _closed_loop(port: int, requests: list[bytes], seconds: float, connections: int) -> dict[str, Any]:
    done = [0]
    bad = [0]
    stop = time.monotonic() + seconds

    async def worker(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.monotonic() < stop:
            status = await _one(reader, writer, requests[i % len(requests)])
            i += connections
            (done if status == 200 else bad)[0] += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    return {"posts_per_s": done[0] / (time.monotonic() - started), "ok": done[0], "not_ok": bad[0]}


async def _open_loop(port: int, requests: list[bytes], seconds: float, rate: float, connections: int) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    bad = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, req = item
            status = await _one(reader, writer, req)
            latencies.append(time.monotonic() - due)  # from when it was due: queueing in the client counts too
            if status != 200:
                bad[0] += 1
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.monotonic()
    total = int(seconds * rate)
    for n in range(total):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        queue.put_nowait((due, requests[n % len(requests)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    return {"rate": rate, "posts": len(latencies), "not_ok": bad[0], "p50_ms": 1000 * p50, "p99_ms": 1000 * p99}


def _client(args: tuple[str, int, list[bytes], float, int, float], out: Any) -> None:
    mode, port, requests, seconds, connections, rate = args
    if mode == "closed":
        out.put(asyncio.run(_closed_loop(port, requests, seconds, connections)))
    else:
        out.put(asyncio.run(_open_loop(port, requests, seconds, rate, connections)))


def load(mode: str, port: int, requests: list[bytes], seconds: float, connections: int, rate: float = 0) -> Any:
    """The load generator in a process of its own (the gateway has the other core)."""
    out: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_client, args=((mode, port, requests, seconds, connections, rate), out))
    proc.start()
    result = out.get(timeout=seconds + 120)
    proc.join(30)
    return result


async def kafka_floor(bootstrap: str, topic: str, values: list[bytes], seconds: float) -> float:
    """Readings/s of a raw aiokafka producer, acks=all and idempotent, one send awaited at a time per 16 tasks (as
    16 connections of the gateway do)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=1)
    await producer.start()
    done = [0]
    stop = time.monotonic() + seconds

    async def task(offset: int) -> None:
        i = offset
        while time.monotonic() < stop:
            await (await producer.send(topic, values[i % len(values)], key=b"LM-A2-N"))
            i += 16
            done[0] += 1

    started = time.monotonic()
    try:
        await asyncio.gather(*(task(k) for k in range(16)))
    finally:
        await producer.stop()
    return done[0] / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    # Kafka only: the gateway writes nothing to PostgreSQL (a set URL is left alone, an unset one not started).
    bootstrap = endpoints.resolve(os.environ, start_postgres=lambda: "").kafka_bootstrap
    topic = f"bench.gateway.{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 6, 1)])
        finally:
            await admin.close()

    asyncio.run(create())
    state = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "ANPR_KAFKA_BOOTSTRAP": bootstrap, "ANPR_TOPIC_READS": topic,
           "ANPR_GATEWAY_SOURCES": str(state / "sources.json"), "ANPR_GATEWAY_SPOOL_DIR": str(state / "spool"),
           "ANPR_EVIDENCE_DIR": str(state / "evidence")}  # fmt: skip
    cli = [sys.executable, "-m", "anpr_stream.cli", "gateway"]
    added = subprocess.run([*cli, "source", "add", "bench", "--format", "openalpr", "--unknown-cameras", "mark"],
                           env=env, capture_output=True, check=True)  # fmt: skip
    token = re.search(rb"^(gw_\S+)$", added.stdout, re.M).group(1).decode()  # type: ignore[union-attr]
    gateway = subprocess.Popen([*cli, "serve", "--port", str(port), "--loglevel", "warning"], env=env)
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores", "seconds": args.seconds,
                               "connections": args.connections}  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        rng = random.Random(16)
        image = b"\xff\xd8\xff\xe0" + bytes(rng.getrandbits(8) for _ in range(IMAGE_BYTES - 6)) + b"\xff\xd9"
        plain = [request(port, token, alpr_group(n, None)) for n in range(4000)]
        with_image = [request(port, token, alpr_group(100000 + n, image)) for n in range(1000)]
        load("closed", port, plain[:200], 2, args.connections)  # warm-up: Kafka connections, metadata
        results["without_image"] = load("closed", port, plain, args.seconds, args.connections)
        results["with_50kb_image"] = load("closed", port, with_image, args.seconds, args.connections)
        results["latency"] = load("open", port, plain, args.seconds, args.connections, args.rate)
        value = orjson.dumps(orjson.loads(plain[0].split(b"\r\n\r\n", 1)[1]))
        results["kafka_floor_reads_per_s"] = asyncio.run(kafka_floor(bootstrap, topic, [value], args.seconds))
    finally:
        gateway.terminate()
        gateway.wait(30)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(results, indent=2) + "\n")
    lat = results["latency"]
    table = "\n".join([
        "# Gateway benchmark", "",
        f"`.venv/bin/python benchmarks/bench_gateway.py --seconds {args.seconds:g} --connections {args.connections}"
        f" --rate {args.rate:g}` on {results['machine']} (gateway, broker and load generator on one machine).", "",
        "| measure | result | goal |", "|---|---|---|",
        f"| posts/s, alpr_group without image | {results['without_image']['posts_per_s']:,.0f} | >= 3,000 |",
        f"| posts/s, alpr_group with a 50 KB image | {results['with_50kb_image']['posts_per_s']:,.0f} | >= 1,000 |",
        f"| request to Kafka ack at {lat['rate']:g} posts/s: p50 / p99 ms | {lat['p50_ms']:.1f} / {lat['p99_ms']:.1f}"
        " | p99 <= 20 |",
        f"| raw aiokafka producer (acks=all, 16 in flight), reads/s | {results['kafka_floor_reads_per_s']:,.0f} | |",
    ]) + "\n"  # fmt: skip
    LATEST.mkdir(parents=True, exist_ok=True)
    (LATEST / "gateway.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
