"""The camera gateway as a real process between vendor payloads and the real worker: every sample payload of every
format, posted as its vendor posts it, ends as passages in PostgreSQL under the read ids the gateway answered; images
are in the evidence store; a bad payload is a 400 with nothing produced; heartbeats are answered and not produced."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from anpr_stream.devinfra.mosquitto import MqttEndpoint
from anpr_stream.gateway.adapters.registry import formats
from tests.integration.conftest import Namespace
from tests.integration.gateway_support import GatewayProcess
from tests.integration.test_mqtt import publish

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[1] / "unit" / "gateway" / "payloads"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
MEDIA = {".json": "application/json", ".xml": "application/xml"}
# Payload folders by the format their samples are in (genetec holds two formats: told apart by name).
FOLDERS = {"openalpr": "openalpr", "native": "anpr", "verkada": "verkada", "platerecognizer": "platerecognizer",
           "survision": "survision", "axis": "axis"}  # fmt: skip


@pytest.fixture
def gateway(namespace: Namespace, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(namespace, tmp_path / "gateway")
    yield process
    process.stop()


def samples() -> list[tuple[str, Path]]:
    """Every sample payload of every registered format (a folder of a format not registered is not posted)."""
    found: list[tuple[str, Path]] = []
    for folder, fmt in FOLDERS.items():
        found += [(fmt, p) for p in sorted((PAYLOADS / folder).glob("*")) if p.suffix in MEDIA]
    for p in sorted((PAYLOADS / "genetec").glob("*")):
        if p.suffix in MEDIA:
            found.append(("genetec-securitycenter" if "securitycenter" in p.name.lower() else "genetec-sharpv", p))
    return [(fmt, p) for fmt, p in found if fmt in formats()]


async def _passages(ns: Namespace, read_ids: set[str], timeout: float = 60) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        conn = await ns.db()
        try:
            rows = await conn.fetch(
                "SELECT read_id, camera_id, observed_at, plate_raw, confidence, extra FROM passages "
                "WHERE read_id = ANY($1::text[])",
                list(read_ids),
            )
        finally:
            await conn.close()
        if len(rows) >= len(read_ids) or time.monotonic() > deadline:
            return {r["read_id"]: dict(r) for r in rows}
        time.sleep(0.3)


async def test_every_sample_of_every_format_is_stored_under_the_read_ids_answered(
    namespace: Namespace, gateway: GatewayProcess
) -> None:
    namespace.start_worker()
    tokens = {fmt: gateway.add_source(f"src-{fmt}", fmt, "--unknown-cameras", "mark", "--timezone", "Europe/Brussels")
              for fmt in {fmt for fmt, _ in samples()}}  # fmt: skip
    gateway.start()
    acknowledged: set[str] = set()
    ignored = 0
    with httpx.Client(base_url=gateway.base, timeout=30) as client:
        for fmt, path in samples():
            answer = client.post(f"/v1/ingest/src-{fmt}", content=path.read_bytes(),
                                 headers={"Authorization": f"Bearer {tokens[fmt]}", "Content-Type": MEDIA[path.suffix],
                                          "X-Serial-Number": "SV-TEST-1"})  # fmt: skip
            if answer.status_code == 400 and any(w in path.name.lower() for w in ("invalid", "broken", "bad")):
                continue  # samples kept to be refused
            assert answer.status_code == 200, f"{fmt} {path.name}: {answer.status_code} {answer.text}"
            acknowledged.update(answer.json().get("read_ids", []))
            ignored += answer.json()["accepted"] == 0
    assert len(acknowledged) >= 10, "too few reads in the samples to say anything"
    produced = {orjson.loads(r.value)["read_id"]: orjson.loads(r.value)
                for r in await namespace.consume(namespace.reads, len(acknowledged))}  # fmt: skip
    assert set(produced) == acknowledged, "the reads topic differs from what the gateway acknowledged"
    # Samples from the vendors' documentation are years old: the worker keeps only reads within the retention
    # period (older ones are not stored, by law); every recent one must be in PostgreSQL.
    horizon = datetime.now(UTC) - timedelta(days=300)
    recent = {rid for rid, r in produced.items() if datetime.fromisoformat(r["observed_at"]) > horizon}
    stored = await _passages(namespace, recent)
    assert set(stored) == recent
    for row in stored.values():
        extra = orjson.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]
        assert extra["gateway"]["source"].startswith("src-")
        assert 0 <= row["confidence"] <= 1


async def test_a_native_read_with_an_image_keeps_its_values_and_its_image(
    namespace: Namespace, gateway: GatewayProcess
) -> None:
    namespace.start_worker()
    token = gateway.add_source("cams", "anpr", "--camera", "vendor-7=LM-N2-VW-IN")
    gateway.start()
    read = {"read_id": "evt-77", "camera_id": "vendor-7", "observed_at": "2026-12-02T08:15:00.250+01:00",
            "plate": "1-ABC-123", "country": "BE", "confidence": 0.93, "image": base64.b64encode(JPEG).decode(),
            "candidates": [{"plate": "1-ABC-128", "confidence": 0.4}]}  # fmt: skip
    with httpx.Client(base_url=gateway.base, timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}
        answer = client.post("/v1/ingest/cams", content=orjson.dumps(read), headers=headers)
        assert answer.status_code == 200, answer.text
        again = client.post("/v1/ingest/cams", content=orjson.dumps(read), headers=headers)
        bad = client.post("/v1/ingest/cams", content=orjson.dumps([read, {**read, "confidence": "high"}]),
                          headers=headers)  # fmt: skip
        wrong = client.post("/v1/ingest/cams", content=orjson.dumps(read), headers={"Authorization": "Bearer x"})
    assert again.json()["read_ids"] == answer.json()["read_ids"]
    assert bad.status_code == 400 and "reads[1].confidence" in bad.json()["detail"]
    assert wrong.status_code == 401
    [read_id] = answer.json()["read_ids"]
    stored = await _passages(namespace, {read_id})
    row = stored[read_id]
    assert row["camera_id"] == "LM-N2-VW-IN" and row["plate_raw"] == "1-ABC-123"
    assert row["observed_at"].isoformat() == "2026-12-02T07:15:00.250000+00:00"
    extra = orjson.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]
    assert extra["candidates"] == [{"plate": "1-ABC-128", "confidence": 0.4}]
    ref = extra["image_ref"]
    assert (gateway.state / "evidence" / ref).read_bytes() == JPEG
    conn = await namespace.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM passages") == 1, "a resend or a refused message was stored"
    finally:
        await conn.close()


async def test_frigate_over_a_real_mosquitto_reaches_postgresql(
    namespace: Namespace, gateway: GatewayProcess, mqtt_broker: MqttEndpoint
) -> None:
    namespace.start_worker()
    gateway.add_source("frigate", "frigate", "--mqtt-topic", "frigate/#", "--camera", "border_n78=LM-N78-E")
    gateway.start(extra_env={"ANPR_GATEWAY_MQTT_URL": mqtt_broker.gateway_url})
    now = datetime.now(UTC).timestamp()
    event = orjson.loads((PAYLOADS / "frigate" / "events_update.json").read_bytes())
    event["after"].update(id=f"{now:.6f}-e2e", frame_time=now - 1, start_time=now - 2)
    person = orjson.loads((PAYLOADS / "frigate" / "events_no_plate.json").read_bytes())
    await publish(mqtt_broker.publisher_url, "frigate/events", orjson.dumps(person), orjson.dumps(event),
                  b"{broken", orjson.dumps({**event, "type": "end"}), ca_file=mqtt_broker.ca_file)  # fmt: skip
    deadline = time.monotonic() + 60
    rows: list[object] = []
    while time.monotonic() < deadline and not rows:
        conn = await namespace.db()
        try:
            rows = await conn.fetch("SELECT camera_id, plate_raw, confidence FROM passages")
        finally:
            await conn.close()
        time.sleep(0.3)
    # The person is ignored, the broken message refused (and acknowledged: it does not block the next), the event's
    # update and end are one read.
    assert [tuple(r) for r in rows] == [("LM-N78-E", "46HVR9", pytest.approx(0.88))]  # type: ignore[arg-type]
