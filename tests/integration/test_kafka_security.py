"""The service on a secured broker (devinfra.kafka_secure: SASL_SSL with SCRAM-SHA-512, StandardAuthorizer, no ACL
means no access): each component as its own principal with the ACLs of `acl_plan`, and what a principal without
the ACL, a wrong password or a client that does not trust the CA gets."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from anpr_stream.audit.signer import SignerError, ensure_checkpoint_topic, topic_checkpoints
from anpr_stream.devinfra import tls
from anpr_stream.devinfra.kafka import collected_sockets
from anpr_stream.devinfra.kafka_secure import Principals, SecureKafka, TopicNames, acl_plan
from anpr_stream.stream.security import KafkaSecurity
from anpr_stream.stream.worker import EXIT_CONFIG
from tests.conftest import Infra
from tests.integration.conftest import ARTIFACTS, ROOT, Namespace, open_namespace
from tests.integration.test_console import events_until_ready
from tests.integration.test_pipeline import HEADER, reading

pytestmark = pytest.mark.integration

WHO = Principals()
REFUSAL_S = 20.0  # a refused client is refused at once; this bounds every wait for it


@pytest.fixture(autouse=True)
def _collect_refused_clients_sockets() -> Iterator[None]:
    """Refused and failed connection attempts are this module's business: whatever socket a client library left
    behind is collected here, not in a later test (see devinfra.kafka.collected_sockets)."""
    with collected_sockets():
        yield


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[SecureKafka]:
    kafka = SecureKafka(ROOT / ".local" / f"test-kafka-sasl-{uuid.uuid4().hex[:8]}")
    try:
        kafka.start(timeout=120)
        kafka.add_users(WHO.all())
        yield kafka
    finally:
        kafka.stop()
        if kafka.log_file.exists():  # the broker's log outlives its state (no secret in it)
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(kafka.log_file, ARTIFACTS / f"kafka-sasl-{kafka.home.name}.log")
        shutil.rmtree(kafka.home, ignore_errors=True)


@pytest.fixture
async def secured(secure_kafka: SecureKafka, infra: Infra) -> AsyncIterator[Namespace]:
    """A namespace whose topics the admin created on the secured broker, with the ACLs of `acl_plan`."""
    async with open_namespace(dataclasses.replace(infra, kafka_bootstrap=secure_kafka.bootstrap)) as ns:
        e = ns.env
        names = TopicNames(reads=e["ANPR_TOPIC_READS"], hits=e["ANPR_TOPIC_HITS"], dlq=e["ANPR_TOPIC_DLQ"],
                           watchlist=e["ANPR_TOPIC_WATCHLIST"], checkpoints=e["ANPR_TOPIC_AUDIT_CHECKPOINTS"],
                           group=e["ANPR_CONSUMER_GROUP"])  # fmt: skip
        compacted = {"cleanup.policy": "compact"}
        secure_kafka.create_topics({names.reads: 3, names.hits: 1, names.dlq: 1, names.watchlist: 1},
                                   {names.watchlist: compacted})  # fmt: skip
        secure_kafka.grant(acl_plan(names, WHO))
        yield ns


def as_user(kafka: SecureKafka, ns: Namespace, user: str) -> dict[str, str]:
    return {**ns.env, **kafka.env(user)}


async def produce(security: KafkaSecurity, bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **security.aiokafka_options(), acks="all",
                                request_timeout_ms=10_000)  # fmt: skip
    try:
        await producer.start()  # aiokafka: a start that fails leaves the producer to be stopped
        for value in values:
            await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"cam"), REFUSAL_S)
    finally:
        await producer.stop()


async def consume(security: KafkaSecurity, bootstrap: str, topic: str, count: int, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **security.aiokafka_options(), group_id=None,
                                isolation_level="read_committed", enable_auto_commit=False)  # fmt: skip
    try:
        await consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not consumer.partitions_for_topic(topic):
            assert loop.time() < deadline, f"no metadata for {topic}"
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.2)
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[Any] = []
        while len(out) < count and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            out += [r for rs in batch.values() for r in rs]
        return out
    finally:
        await consumer.stop()


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "anpr_stream.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          timeout=timeout, check=False)  # fmt: skip


async def test_worker_turns_a_camera_read_into_a_hit_the_api_principal_reads(
    secure_kafka: SecureKafka, secured: Namespace, tmp_path: Path
) -> None:
    ns, kafka = secured, secure_kafka
    listing = tmp_path / "list.csv"
    listing.write_text(f"{HEADER}\nSV-1,stolen_vehicle,1-HGT-904,BE,1,intercept,,,PV 1,false\n")
    loaded = cli(as_user(kafka, ns, WHO.watchlist_admin), "watchlist", "load", str(listing))
    assert loaded.returncode == 0, loaded.stderr.decode()

    ns.start_worker(extra_env=kafka.env(WHO.worker))
    camera = kafka.security(WHO.camera)
    await produce(camera, kafka.bootstrap, ns.reads, [reading("s-1", "1HGT904", datetime.now(UTC)),
                                                       reading("s-2", "9-ZZZ-999", datetime.now(UTC))])  # fmt: skip
    hits = await consume(kafka.security(WHO.api), kafka.bootstrap, ns.hits, 1, timeout=90)
    assert [orjson.loads(h.value)["read_id"] for h in hits] == ["s-1"]
    assert all(w.poll() is None for w in ns.workers), "the worker exited"

    # The API process, logged in as the API principal, streams that hit to a dispatcher (read from the topic: the
    # resume from its start replays what the stream's window holds).
    dispatcher = ns.add_user("disp-sasl", "dispatcher")
    base = ns.start_api(extra_env=kafka.env(WHO.api))
    headers = {"Authorization": f"Bearer {dispatcher}", "X-Purpose": "dispatch", "X-Case-Reference": "SASL 1",
               "Last-Event-ID": "0:0"}  # fmt: skip
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, asyncio.timeout(60):
        streamed, _ = await events_until_ready(client, headers)
    assert [(kind, hit) for kind, hit, _ in streamed] == [("hit", orjson.loads(hits[0].value)["hit_id"])]


async def test_principals_without_the_acl_are_refused(secure_kafka: SecureKafka, secured: Namespace) -> None:
    ns, kafka = secured, secure_kafka
    camera, api = kafka.security(WHO.camera), kafka.security(WHO.api)
    # The camera may write reads (the control: the refusals below are the ACLs', not a broken client) ...
    await produce(camera, kafka.bootstrap, ns.reads, [b"{}"])
    # ... but not write the watchlist, nor read hits (not even see them), and the API may not write reads.
    with pytest.raises(KafkaError):
        await produce(camera, kafka.bootstrap, ns.watchlist, [b"{}"])
    with pytest.raises((KafkaError, AssertionError)):
        await consume(camera, kafka.bootstrap, ns.hits, 1, timeout=5)
    with pytest.raises(KafkaError):
        await produce(api, kafka.bootstrap, ns.reads, [b"{}"])


async def test_the_api_publishes_an_investigators_entry_as_its_principal_and_may_not_read_the_list(
    secure_kafka: SecureKafka, secured: Namespace
) -> None:
    ns, kafka = secured, secure_kafka
    investigator = ns.add_user("inv-sasl", "investigator")
    base = ns.start_api(extra_env=kafka.env(WHO.api))
    entry = {"entry_id": "WS-SASL-1", "list": "stolen_vehicle", "plate": "1-HGT-904", "country": "BE", "priority": 1,
             "action": "intercept"}  # fmt: skip
    headers = {"Authorization": f"Bearer {investigator}", "X-Purpose": "follow-up", "X-Case-Reference": "SASL 2"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        got = await client.post("/v1/watchlist/entries", json=entry, headers=headers)
    assert got.status_code == 201, got.text
    (record,) = await consume(kafka.security(WHO.watchlist_admin), kafka.bootstrap, ns.watchlist, 1, timeout=30)
    assert record.key == b"WS-SASL-1" and orjson.loads(record.value)["plate"] == "1-HGT-904"
    with pytest.raises((KafkaError, AssertionError)):  # WRITE only: the API may not read the list
        await consume(kafka.security(WHO.api), kafka.bootstrap, ns.watchlist, 1, timeout=5)


async def test_a_wrong_password_and_an_untrusted_ca_are_refused(
    secure_kafka: SecureKafka, secured: Namespace, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ns, kafka = secured, secure_kafka
    wrong = tmp_path / "wrong.password"
    tls.write_private(wrong, b"not-the-password")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(produce(kafka.security(WHO.camera, wrong), kafka.bootstrap, ns.reads, [b"{}"]),
                               REFUSAL_S)  # fmt: skip
    assert "SaslAuthenticationFailed" in caplog.text  # refused for the password, not for anything else
    caplog.clear()
    other_ca = tls.make_ca("some other CA").write(tmp_path / "other-ca.crt")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(
            produce(kafka.security(WHO.camera, ca_file=other_ca), kafka.bootstrap, ns.reads, [b"{}"]), REFUSAL_S
        )
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    # Nothing but the control records reached the topic as the admin sees it.
    assert await consume(kafka.admin_security, kafka.bootstrap, ns.reads, 1, timeout=3) == []


async def test_a_worker_whose_topics_are_missing_and_not_creatable_stops_with_a_clear_message(
    secure_kafka: SecureKafka, secured: Namespace
) -> None:
    ns, kafka = secured, secure_kafka
    gone = {k: f"{v}.never-created" for k, v in ns.env.items() if k.startswith("ANPR_TOPIC_")}
    worker = ns.start_worker(name="no-topics", extra_env={**kafka.env(WHO.worker), **gone})
    code = await asyncio.to_thread(worker.wait, 60)
    log = (ROOT / "test-artifacts" / f"worker-{ns.tag}-no-topics.log").read_text()
    assert code == EXIT_CONFIG, log[-3000:]
    assert "may not create them (no CREATE ACL)" in log and gone["ANPR_TOPIC_READS"] in log, log[-3000:]
    assert "retrying" not in log and "Traceback" not in log, log[-3000:]


async def test_replay_writes_reads_as_the_camera_and_is_refused_as_the_api(
    secure_kafka: SecureKafka, secured: Namespace, tmp_path: Path
) -> None:
    ns, kafka = secured, secure_kafka
    feed = tmp_path / "reads.jsonl"
    feed.write_bytes(reading("p-1", "1ABC123", datetime.now(UTC)) + b"\n")
    sent = cli(as_user(kafka, ns, WHO.camera), "replay", str(feed), "--topic", ns.reads)
    assert sent.returncode == 0, sent.stderr.decode()
    refused = cli(as_user(kafka, ns, WHO.api), "replay", str(feed), "--topic", ns.reads, timeout=90)
    assert refused.returncode == 1, refused.stderr.decode()  # EXIT_BROKER, with a message, no traceback
    assert b"Traceback" not in refused.stderr
    got = await consume(kafka.admin_security, kafka.bootstrap, ns.reads, 2, timeout=5)
    assert [orjson.loads(r.value)["read_id"] for r in got] == ["p-1"]


async def test_the_audit_signer_may_use_its_topic_but_not_create_one(
    secure_kafka: SecureKafka, secured: Namespace
) -> None:
    ns, kafka = secured, secure_kafka
    signer = kafka.security(WHO.audit_signer)
    checkpoints = ns.env["ANPR_TOPIC_AUDIT_CHECKPOINTS"]
    with pytest.raises(SignerError, match=r"does not exist and User:anpr-audit-signer may not create it"):
        await ensure_checkpoint_topic(kafka.bootstrap, checkpoints, security=signer)
    kafka.create_topics({checkpoints: 1})
    await ensure_checkpoint_topic(kafka.bootstrap, checkpoints, security=signer)  # there: left alone
    assert await topic_checkpoints(kafka.bootstrap, checkpoints, wait_s=10, security=signer) == []
    with pytest.raises((KafkaError, RuntimeError)):  # the camera may not even see it
        await topic_checkpoints(kafka.bootstrap, checkpoints, wait_s=3, security=kafka.security(WHO.camera))
