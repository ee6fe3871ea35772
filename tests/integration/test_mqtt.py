"""The gateway's MQTT subscriber against the real mosquitto: QoS 1 delivery and routing, bad messages acknowledged,
failed deliveries redelivered, the persistent session across a restart of the subscriber, TLS, and a broker that goes
away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from anpr_stream import metrics
from anpr_stream.devinfra import paths
from anpr_stream.devinfra.mosquitto import PUBLISHER_USER, LocalMosquitto, MqttEndpoint
from anpr_stream.gateway import mqtt
from anpr_stream.gateway.model import Payload, PayloadError
from anpr_stream.gateway.mqtt import Subscription

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WAIT_S = 15.0
Received = tuple[str, Payload]


@pytest.mark.parametrize(
    ("topic", "source"),
    [
        ("frigate/tracked_object_update", "frigate"),
        ("frigate/events", "frigate"),
        ("frigate", "frigate"),  # "#" also matches its parent level
        ("gate/north/lpr", "gate"),
        ("gate/north/south/lpr", None),  # "+" is one level
        ("gate/lpr", None),
        ("other/frigate/events", None),
    ],
)
def test_topic_to_source(topic: str, source: str | None) -> None:
    subscriptions = [Subscription("frigate/#", "frigate"), Subscription("gate/+/lpr", "gate")]
    assert mqtt.source_for(topic, subscriptions) == source


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", mqtt.Broker("127.0.0.1", 1883, tls=False)),
        ("mqtts://broker.zone.internal", mqtt.Broker("broker.zone.internal", 8883, tls=True)),
        ("mqtt://gw:p%40ss%3Aword@127.0.0.1:11883", mqtt.Broker("127.0.0.1", 11883, False, "gw", "p@ss:word")),
    ],
)
def test_broker_from_url(url: str, expected: mqtt.Broker) -> None:
    assert mqtt.Broker.from_url(url) == expected
    assert "word" not in repr(mqtt.Broker.from_url(url))


@pytest.mark.parametrize("url", ["http://127.0.0.1", "127.0.0.1:1883", "mqtt://"])
def test_broker_from_a_bad_url(url: str) -> None:
    with pytest.raises(ValueError):
        mqtt.Broker.from_url(url)


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a/b#", "a/+b", "a/#/#"])
def test_invalid_filters_are_refused_before_connecting(topic_filter: str) -> None:
    with pytest.raises(ValueError, match="invalid MQTT topic filter"):
        mqtt.check_subscriptions([Subscription(topic_filter, "s")])


def test_backoff_is_bounded_and_grows() -> None:
    assert 0.25 <= mqtt.backoff(1) <= 0.5
    assert 2.0 <= mqtt.backoff(4) <= 4.0
    assert all(mqtt.BACKOFF_MAX_S / 2 <= mqtt.backoff(n) <= mqtt.BACKOFF_MAX_S for n in (7, 20, 200, 100_000))


def _prefix() -> str:
    return f"test/{uuid.uuid4().hex[:10]}"


def _publish_now(url: str, topic: str, bodies: list[bytes], ca_file: str | None = None) -> None:
    """A camera-side publisher (Frigate uses paho too): QoS 1, each message acknowledged by the broker."""
    broker = mqtt.Broker.from_url(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311, clean_session=True)
    client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        client.tls_set(ca_certs=ca_file)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for body in bodies:
            info = client.publish(topic, body, qos=1)
            info.wait_for_publish(timeout=WAIT_S)
            assert info.is_published(), f"broker did not acknowledge the publish to {topic}"
    finally:
        client.disconnect()
        client.loop_stop()


async def publish(url: str, topic: str, *bodies: bytes, ca_file: str | None = None) -> None:
    await asyncio.to_thread(_publish_now, url, topic, list(bodies), ca_file)


class Recorder:
    """The gateway's `handle`: records what it is given; `fail` decides, per call, to raise instead."""

    def __init__(self, fail: Callable[[int, Payload], Exception | None] | None = None) -> None:
        self.calls: list[Received] = []
        self.done: asyncio.Queue[Received] = asyncio.Queue()
        self.fail = fail

    async def __call__(self, source: str, payload: Payload) -> None:
        self.calls.append((source, payload))
        error = self.fail(len(self.calls), payload) if self.fail else None
        if error is not None:
            raise error
        await self.done.put((source, payload))

    async def next(self) -> Received:
        return await asyncio.wait_for(self.done.get(), timeout=WAIT_S)


@contextlib.asynccontextmanager
async def subscriber(
    url: str, subscriptions: list[Subscription], handle: Recorder, client_id: str, ca_file: str | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(mqtt.run(url, subscriptions, handle, client_id=client_id, stop=stop, ca_file=ca_file))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=WAIT_S)  # stops cleanly, and re-raises what the task may have raised


async def subscribed(url: str, prefix: str, recorder: Recorder) -> None:
    """Wait until the subscription is in place: a probe message published now comes back."""
    for _ in range(int(WAIT_S / 0.5)):
        await publish(url, f"{prefix}/probe", b"probe")
        with contextlib.suppress(TimeoutError):
            while True:
                _, payload = await asyncio.wait_for(recorder.done.get(), timeout=0.5)
                if payload.topic == f"{prefix}/probe":
                    return
    raise AssertionError("the subscription never received its probe")


def _count(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _publisher(broker: MqttEndpoint) -> str:
    return broker.publisher_url


async def test_qos1_message_reaches_handle_with_its_source_and_topic(mqtt_broker: MqttEndpoint) -> None:
    prefix = _prefix()
    subscriptions = [
        Subscription(f"{prefix}/probe", "probe"),
        Subscription(f"{prefix}/gate/+/lpr", "cam-gate"),
        Subscription(f"{prefix}/frigate/#", "cam-frigate"),
    ]
    recorder = Recorder()
    async with subscriber(mqtt_broker.gateway_url, subscriptions, recorder, client_id=f"gw-{prefix}"):
        await subscribed(_publisher(mqtt_broker), prefix, recorder)
        await publish(_publisher(mqtt_broker), f"{prefix}/frigate/tracked_object_update", b'{"type": "lpr"}')
        await publish(_publisher(mqtt_broker), f"{prefix}/gate/north/lpr", b'{"plate": "AB12CDE"}')
        first, second = await recorder.next(), await recorder.next()
    frigate_topic = f"{prefix}/frigate/tracked_object_update"
    expected = Payload(body=b'{"type": "lpr"}', content_type="application/json", topic=frigate_topic)
    assert first == ("cam-frigate", expected)
    assert second[0] == "cam-gate" and second[1].topic == f"{prefix}/gate/north/lpr"
    assert second[1].body == b'{"plate": "AB12CDE"}'


async def test_a_bad_message_is_acknowledged_and_does_not_stall_the_subscription(mqtt_broker: MqttEndpoint) -> None:
    prefix, client_id = _prefix(), f"gw-{uuid.uuid4().hex[:8]}"
    subscriptions = [Subscription(f"{prefix}/#", "cam-1")]
    topic = f"{prefix}/frigate/tracked_object_update"

    def reject_bad(_: int, payload: Payload) -> Exception | None:
        return PayloadError("body: not JSON") if payload.body == b"bad" else None

    recorder = Recorder(fail=reject_bad)
    rejected_before = _count("anpr_gateway_mqtt_messages_total", source="cam-1", outcome="rejected")
    async with subscriber(mqtt_broker.gateway_url, subscriptions, recorder, client_id=client_id):
        await subscribed(_publisher(mqtt_broker), prefix, recorder)
        await publish(_publisher(mqtt_broker), topic, b"bad", b"good")
        assert (await recorder.next())[1].body == b"good"
    assert [p.body for _, p in recorder.calls if p.topic == topic] == [b"bad", b"good"]
    assert _count("anpr_gateway_mqtt_messages_total", source="cam-1", outcome="rejected") == rejected_before + 1
    # Acknowledged, not merely skipped: the same session, resumed, gets no redelivery of it. An unacknowledged
    # message would be resent at once on reconnect, before anything published afterwards (the marker).
    again = Recorder()
    async with subscriber(mqtt_broker.gateway_url, subscriptions, again, client_id=client_id):
        await subscribed(_publisher(mqtt_broker), prefix, again)
        await publish(_publisher(mqtt_broker), topic, b"marker")
        assert (await again.next())[1].body == b"marker"
    assert [p.body for _, p in again.calls if p.topic == topic] == [b"marker"]


async def test_a_failed_delivery_is_redelivered_after_reconnect(mqtt_broker: MqttEndpoint) -> None:
    prefix = _prefix()
    subscriptions = [Subscription(f"{prefix}/#", "cam-1")]
    topic = f"{prefix}/lpr"

    def kafka_down_once(_: int, payload: Payload) -> Exception | None:
        attempts = sum(1 for _, p in recorder.calls if p.body == b"read-1")
        return ConnectionError("Kafka unavailable") if payload.body == b"read-1" and attempts == 1 else None

    recorder = Recorder(fail=kafka_down_once)
    failures_before = _count("anpr_gateway_mqtt_reconnects_total", cause="handler")
    async with subscriber(mqtt_broker.gateway_url, subscriptions, recorder, client_id=f"gw-{uuid.uuid4().hex[:8]}"):
        await subscribed(_publisher(mqtt_broker), prefix, recorder)
        await publish(_publisher(mqtt_broker), topic, b"read-1", b"read-2")
        delivered = [(await recorder.next())[1].body, (await recorder.next())[1].body]
    assert delivered == [b"read-1", b"read-2"]
    assert [p.body for _, p in recorder.calls if p.topic == topic] == [b"read-1", b"read-1", b"read-2"]
    assert _count("anpr_gateway_mqtt_reconnects_total", cause="handler") == failures_before + 1


async def test_messages_published_while_the_gateway_is_down_arrive_on_restart(mqtt_broker: MqttEndpoint) -> None:
    prefix, client_id = _prefix(), f"gw-{uuid.uuid4().hex[:8]}"
    subscriptions = [Subscription(f"{prefix}/#", "cam-1")]
    first = Recorder()
    async with subscriber(mqtt_broker.gateway_url, subscriptions, first, client_id=client_id):
        await subscribed(_publisher(mqtt_broker), prefix, first)  # the broker now holds the session's subscription
    await publish(_publisher(mqtt_broker), f"{prefix}/lpr", b"while-down-1", b"while-down-2", b"while-down-3")
    second = Recorder()
    async with subscriber(mqtt_broker.gateway_url, subscriptions, second, client_id=client_id):
        got = [(await second.next())[1].body for _ in range(3)]
    assert got == [b"while-down-1", b"while-down-2", b"while-down-3"]


async def test_mqtts_with_the_brokers_ca_file(mqtt_broker: MqttEndpoint) -> None:
    if mqtt_broker.source != "local" or not mqtt_broker.ca_file:
        pytest.skip("the broker from ANPR_GATEWAY_MQTT_URL has no TLS listener known to this test")
    local = LocalMosquitto.from_env()
    prefix = _prefix()
    recorder = Recorder()
    url = local.url(secure=True)
    assert url.startswith("mqtts://")
    async with subscriber(url, [Subscription(f"{prefix}/#", "cam-tls")], recorder, f"gw-{prefix}", mqtt_broker.ca_file):
        await subscribed(_publisher(mqtt_broker), prefix, recorder)
        await publish(local.url(PUBLISHER_USER, secure=True), f"{prefix}/lpr", b"over-tls", ca_file=mqtt_broker.ca_file)
        assert await recorder.next() == ("cam-tls", Payload(body=b"over-tls", topic=f"{prefix}/lpr"))


async def test_refused_credentials_are_retried_and_stop_still_ends_it(mqtt_broker: MqttEndpoint) -> None:
    broker = mqtt.Broker.from_url(mqtt_broker.gateway_url)
    wrong = f"mqtt://{broker.username}:not-the-password@{broker.host}:{broker.port}"
    stop = asyncio.Event()
    recorder = Recorder()
    refused_before = _count("anpr_gateway_mqtt_reconnects_total", cause="connection")
    task = asyncio.create_task(mqtt.run(wrong, [Subscription("x/#", "x")], recorder, client_id="gw-refused", stop=stop))
    for _ in range(100):
        if _count("anpr_gateway_mqtt_reconnects_total", cause="connection") >= refused_before + 2:
            break
        await asyncio.sleep(0.1)
    assert _count("anpr_gateway_mqtt_reconnects_total", cause="connection") >= refused_before + 2
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert recorder.calls == []


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise AssertionError("no two free neighbouring ports")


async def test_the_broker_going_away_and_back_loses_nothing(mqtt_broker: MqttEndpoint) -> None:
    """A private broker (own port, own state), restarted: its persistence keeps the session's subscription and queued
    QoS 1 messages, and a running subscriber reconnects (with backoff) on its own."""
    if mqtt_broker.source != "local":
        pytest.skip("needs the local mosquitto installation")
    # Under .local/, not pytest's tmp_path (private to root): as root the broker runs as the mosquitto user.
    home = Path(tempfile.mkdtemp(prefix="mosquitto-test-", dir=paths.state_dir()))
    home.chmod(0o755)
    private = LocalMosquitto(port=_free_port_pair(), home=home)
    await asyncio.to_thread(private.ensure_running)
    try:
        prefix, client_id, publisher = _prefix(), f"gw-{uuid.uuid4().hex[:8]}", private.url(PUBLISHER_USER)
        subscriptions = [Subscription(f"{prefix}/#", "cam-1")]
        first = Recorder()
        async with subscriber(private.url(), subscriptions, first, client_id):
            await subscribed(publisher, prefix, first)
        await publish(publisher, f"{prefix}/lpr", b"before-restart")
        await asyncio.to_thread(private.stop)
        await asyncio.to_thread(private.ensure_running)
        await publish(publisher, f"{prefix}/lpr", b"after-restart")  # matched only by the persisted subscription
        second = Recorder()
        async with subscriber(private.url(), subscriptions, second, client_id):
            assert [(await second.next())[1].body for _ in range(2)] == [b"before-restart", b"after-restart"]
            await asyncio.to_thread(private.stop)
            await asyncio.to_thread(private.ensure_running)
            await publish(publisher, f"{prefix}/lpr", b"while-reconnecting")
            assert (await second.next())[1].body == b"while-reconnecting"
    finally:
        await asyncio.to_thread(private.stop)
        shutil.rmtree(home, ignore_errors=True)
