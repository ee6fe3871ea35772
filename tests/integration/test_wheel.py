"""The installable package, proven: the wheel built from the working tree's files (tracked and new, not ignored), in a
copy outside the checkout, holds the service only and everything it reads; installed into a fresh virtualenv (its
dependencies from the index, pinned to the dev venv's tested versions), its `anpr-stream` runs `migrate`, `users`,
`watchlist load`, `worker` and `api` from `/` with an environment that knows nothing of the checkout: a read in, a
hit out on Kafka and through the API."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from anpr_stream.devinfra.endpoints import isolated_env
from anpr_stream.devinfra.process import stop_children, tail
from tests.conftest import Infra

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STEP_TIMEOUT = 600.0
HEADER = "entry_id,list,plate,country,priority,action,valid_from,valid_until,reference,covert"


@dataclass
class Installed:
    wheel: Path
    venv: Path
    home: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False, **kwargs
    )  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result  # type: ignore[no-any-return]


def _clean_environment(home: Path) -> dict[str, str]:
    """Nothing of the checkout or of the dev venv: no PYTHONPATH, VIRTUAL_ENV or ANPR_ setting, a PATH of system
    directories only."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8")}
    return env


def _network_environment(home: Path) -> dict[str, str]:
    """For pip only: the machine's index, certificate and proxy settings on top of the clean environment."""
    passed = ("PIP_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    kept = {k: v for k, v in os.environ.items() if k.upper().startswith(passed)}
    return {**_clean_environment(home), **kept}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("wheel")
    assert not work.resolve().is_relative_to(ROOT)
    source = work / "src"
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT).stdout.split("\0")
    for name in filter(None, listed):
        path = ROOT / name
        if path.is_file():  # a tracked file deleted in the working tree is not part of it
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    home = work / "home"
    home.mkdir()
    env = _network_environment(home)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source], env=env, cwd=work)
    (wheel,) = dist.glob("anpr_stream-*.whl")
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"]).stdout.splitlines()
    constraints = work / "constraints.txt"
    constraints.write_text(
        "\n".join(line for line in frozen if line and not line.startswith(("#", "-e")) and "anpr" not in line.lower())
        + "\n"
    )
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv], env=env, cwd=work)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", constraints, wheel], env=env, cwd=work)
    yield Installed(wheel, venv, home)


def test_the_wheel_holds_the_service_and_its_data_only(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    modules = [n for n in names if n.endswith(".py")]
    for forbidden in ("anpr_stream/devinfra/", "anpr_stream/traffic/", "tests/", "benchmarks/"):
        assert not [n for n in names if n.startswith(forbidden)], forbidden
    assert all(n.startswith("anpr_stream/") for n in modules)
    assert {
        "anpr_stream/schemas/reading.schema.json",
        "anpr_stream/schemas/watchlist-entry.schema.json",
        "anpr_stream/sinks/migrations/0001_passages_hits.sql",
        "anpr_stream/console/static/index.html",
        "anpr_stream/examples/cameras.csv",
        "anpr_stream/py.typed",
    } <= set(names)
    migrations = {p.name for p in (ROOT / "anpr_stream/sinks/migrations").glob("*.sql")}
    assert {Path(n).name for n in names if n.startswith("anpr_stream/sinks/migrations/") and n.endswith(".sql")} == (
        migrations
    )
    statics = {p.name for p in (ROOT / "anpr_stream/console/static").iterdir() if p.is_file()}
    assert {Path(n).name for n in names if n.startswith("anpr_stream/console/static/")} == statics
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line for line in zipfile.ZipFile(installed.wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]  # fmt: skip
    assert not [r for r in requires if "kafka-python" in r], requires


def test_the_installation_has_no_development_code(installed: Installed) -> None:
    env = _clean_environment(installed.home)
    python = installed.bin / "python"
    found = _run([python, "-c", "import anpr_stream, sys; print(anpr_stream.__file__)"], env=env, cwd="/").stdout
    assert Path(found.strip()).is_relative_to(installed.venv), found
    for package in ("anpr_stream.devinfra", "anpr_stream.traffic", "tests.conftest"):
        tried = subprocess.run(
            [python, "-c", f"import {package}"], env=env, cwd="/", capture_output=True, text=True, timeout=60
        )  # fmt: skip
        assert tried.returncode != 0 and "ModuleNotFoundError" in tried.stderr, package
    helped = _run([installed.bin / "anpr-stream", "--help"], env=env, cwd="/")
    assert "development only: not in this installation" in helped.stdout
    demo = subprocess.run(
        [installed.bin / "anpr-stream", "demo", "--speed", "0"], env=env, cwd="/", capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert demo.returncode == 2 and "not part of this installation" in demo.stderr, demo.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _first_record(bootstrap: str, topic: str, timeout: float) -> bytes | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        partitions: list[TopicPartition] = []
        while not partitions and asyncio.get_running_loop().time() < deadline:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if not partitions:
                await asyncio.sleep(0.5)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    value: bytes | None = record.value
                    return value
        return None
    finally:
        await consumer.stop()


async def test_the_installed_service_runs_from_root(installed: Installed, infra: Infra, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    schema = f"w_{tag}"
    conn = await asyncpg.connect(infra.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    settings = isolated_env(
        infra.kafka_bootstrap, infra.database_url, "w", tag, schema,
        ANPR_METRICS_PORT="0", ANPR_READS_PARTITIONS="1", ANPR_HITS_PARTITIONS="1", ANPR_IDLE_PARTITION_SECONDS="0.5",
    )  # fmt: skip
    env = {**_clean_environment(installed.home), **{k: v for k, v in settings.items() if k.startswith("ANPR_")}}
    assert not [k for k in env if k.startswith("ANPR_LOCAL_") or k == "ANPR_PROJECT_DIR" or k == "ANPR_CAMERAS_FILE"]
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env
    anpr = str(installed.bin / "anpr-stream")

    def cli(*args: str) -> str:
        return _run([anpr, *args], env=env, cwd="/").stdout

    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                [anpr, *args], env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        procs.append(proc)
        return proc

    try:
        cli("migrate")
        cli("migrate")  # a second run is harmless
        token = cli("users", "add", "wheel-dispatcher", "--role", "dispatcher").strip()
        assert token.startswith("anpr_"), token
        watchlist = tmp_path / "list.csv"
        watchlist.write_text(f"{HEADER}\nSV-W,stolen_vehicle,1-WHL-123,BE,1,intercept,,,PV wheel,false\n")
        cli("watchlist", "load", str(watchlist))
        worker = start("worker", "worker", "--loglevel", "warning")
        port = _free_port()
        api = start("api", "api", "--port", str(port), "--loglevel", "warning")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, tail(logs / "api.log")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"api did not answer: {tail(logs / 'api.log')}"
            await asyncio.sleep(0.2)

        read = {
            "read_id": f"wheel-{tag}", "camera_id": "LM-VELDWEZELT-IN", "plate": "1 WHL 123",
            "observed_at": datetime.now(UTC).isoformat(timespec="milliseconds"), "country": "BE", "confidence": 0.9,
        }  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings["ANPR_TOPIC_READS"], orjson.dumps(read), key=b"LM-VELDWEZELT-IN")
        finally:
            await producer.stop()
        value = await _first_record(infra.kafka_bootstrap, settings["ANPR_TOPIC_HITS"], timeout=90)
        assert worker.poll() is None, tail(logs / "worker.log")
        assert value is not None, f"no hit on {settings['ANPR_TOPIC_HITS']}: {tail(logs / 'worker.log')}"
        hit = orjson.loads(value)
        assert (hit["read_id"], hit["entry_id"], hit["camera"]["known"]) == (read["read_id"], "SV-W", True)

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            auth = {"Authorization": f"Bearer {token}", "X-Purpose": "wheel installation check",
                    "X-Case-Reference": "LM.2026.0001"}  # fmt: skip
            got = await client.get(f"/v1/hits/{hit['hit_id']}", headers=auth)
            assert got.status_code == 200, got.text
            assert got.json()["hit_id"] == hit["hit_id"]
            console = await client.get("/console")
            assert console.status_code == 200 and "<html" in console.text.lower()
    finally:
        stop_children(*procs, timeout=20)
        conn = await asyncpg.connect(infra.database_url)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()
