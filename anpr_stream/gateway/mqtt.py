"""The gateway's MQTT subscriber (Frigate's LPR events and the like): QoS 1, a persistent session, and a message
acknowledged only once the gateway has durably delivered its reads.

Manual acknowledgement: paho-mqtt 2.x supports it (`Client(manual_ack=True)`, then `client.ack(mid, qos)`: without it
paho sends the PUBACK as soon as its on_message callback returns, i.e. before our asynchronous handling has even
started). aiomqtt 2.5 does not expose it: its Client builds the paho client itself and takes no manual_ack option
(issue empicano/aiomqtt#345 and draft PR #346 are open; the workaround there reaches into the private
`client._client`). So this module drives paho directly from the asyncio loop, with paho's external-loop socket
callbacks (as aiomqtt and paho's examples/loop_asyncio.py do), and depends on paho-mqtt rather than aiomqtt.

Delivery: the broker resends an unacknowledged QoS 1 message only when the session reconnects (MQTT 3.1.1 4.4), so
an infrastructure failure in `handle` ends the connection; the session (clean_session false, fixed client id) keeps
the message, and the broker redelivers it after the reconnect. PUBACKs go out in the order the messages arrived
(3.1.1 4.6), since messages are handled one at a time. The broker's in-flight window (mosquitto: 20 per client)
bounds how many unacknowledged messages can be waiting here. A resubscription on reconnect resends retained
messages: delivery is at least once, and the gateway's read ids make a repeat the same read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import Counter

from anpr_stream import metrics
from anpr_stream.gateway.model import Payload, PayloadError

log = logging.getLogger(__name__)

QOS = 1
KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 15.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
DISCONNECT_WAIT_S = 2.0

MESSAGES = Counter(
    "anpr_gateway_mqtt_messages",
    "MQTT messages taken from the broker, by source and outcome (handled, rejected, unrouted)",
    ["source", "outcome"],
    registry=metrics.REGISTRY,
)
RECONNECTS = Counter(
    "anpr_gateway_mqtt_reconnects", "MQTT sessions ended by a failure, by cause", ["cause"], registry=metrics.REGISTRY
)

Handler = Callable[[str, Payload], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    topic_filter: str  # e.g. "frigate/tracked_object_update" or "frigate/#"
    source_id: str


@dataclass(frozen=True)
class Broker:
    """Where to connect, from an mqtt:// or mqtts:// URL; credentials are taken from it and kept out of repr."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"an MQTT URL starts with mqtt:// or mqtts://, not {parts.scheme or '(none)'}://")
        if not parts.hostname:
            raise ValueError("the MQTT URL names no host")
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname,
            port=parts.port or (8883 if tls else 1883),
            tls=tls,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __repr__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"Broker({scheme}://{user}{self.host}:{self.port})"


def source_for(topic: str, subscriptions: Sequence[Subscription]) -> str | None:
    """The source of the first subscription whose filter matches `topic` (+ and # wildcards), or None."""
    for subscription in subscriptions:
        if paho.topic_matches_sub(subscription.topic_filter, topic):
            return subscription.source_id
    return None


def check_subscriptions(subscriptions: Sequence[Subscription]) -> None:
    """A filter the broker would refuse is a configuration error: raised at once, not retried."""
    if not subscriptions:
        raise ValueError("no MQTT subscriptions configured")
    for subscription in subscriptions:
        levels = subscription.topic_filter.split("/")
        bad_hash = any("#" in level and (level != "#" or i != len(levels) - 1) for i, level in enumerate(levels))
        if not subscription.topic_filter or bad_hash or any("+" in level and level != "+" for level in levels):
            raise ValueError(f"invalid MQTT topic filter {subscription.topic_filter!r}")


def backoff(failures: int) -> float:
    """Seconds to wait before reconnect attempt `failures` (1, 2, ...): doubling from 0.5 s, at most 30 s, with
    jitter so that gateways cut off together do not come back together."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** min(failures - 1, 16))  # no float overflow in a long outage
    return ceiling * random.uniform(0.5, 1.0)  # jitter, not a secret


async def run(
    url: str,
    subscriptions: Sequence[Subscription],
    handle: Handler,
    *,
    client_id: str,
    stop: asyncio.Event,
    ca_file: str | None = None,
) -> None:
    """Subscribe and hand every message to `handle(source_id, payload)` until `stop` is set, reconnecting with
    bounded backoff whenever the broker goes away or `handle` fails for a reason other than a bad message."""
    broker = Broker.from_url(url)
    check_subscriptions(subscriptions)
    if not client_id:
        raise ValueError("a persistent session needs a fixed, non-empty client id")
    failures = 0
    while not stop.is_set():
        session = _Session(broker, subscriptions, handle, client_id=client_id, ca_file=ca_file, stop=stop)
        started = time.monotonic()
        try:
            await session.run()
        except Exception as exc:
            handler_failed = isinstance(exc, _HandlerFailed)
            RECONNECTS.labels("handler" if handler_failed else "connection").inc()
            if session.progressed or time.monotonic() - started > BACKOFF_MAX_S:
                failures = 0
            failures += 1
            delay = backoff(failures)
            if handler_failed:
                log.warning(
                    "MQTT %r: delivering a message failed, left unacknowledged for redelivery; reconnecting in "
                    "%.1f s", broker, delay, exc_info=exc.__cause__,
                )  # fmt: skip
            else:
                log.warning("MQTT %r: %s; reconnecting in %.1f s", broker, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)


class _HandlerFailed(Exception):
    """handle() raised something other than PayloadError: the message stays unacknowledged."""


class _ConnectionLost(Exception):
    pass


_LOST = object()  # queued by on_disconnect: the messages queued after it, if any, belong to a dead connection
_STOP = object()


class _Session:
    """One connection: paho's socket driven by the running loop, messages handled one at a time."""

    def __init__(
        self,
        broker: Broker,
        subscriptions: Sequence[Subscription],
        handle: Handler,
        *,
        client_id: str,
        ca_file: str | None,
        stop: asyncio.Event,
    ) -> None:
        self.broker = broker
        self.stop = stop
        self.subscriptions = subscriptions
        self.handle = handle
        self.progressed = False  # a message was handled: the next failure starts the backoff afresh
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.connected: asyncio.Future[ReasonCode] = self.loop.create_future()
        self.subscribed: asyncio.Future[list[ReasonCode]] = self.loop.create_future()
        self.closed = asyncio.Event()
        self.misc: asyncio.Task[None] | None = None
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv311,
            clean_session=False,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set_context(ssl.create_default_context(cafile=ca_file))  # verifies the host name too
        client.enable_logger(log)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self.client = client

    # -- paho callbacks: called on the loop, except during connect(), which runs in a worker thread ----------------

    def _soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """At once on the loop (keeping paho's order of events), marshalled from connect()'s worker thread."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            callback(*args)
        else:
            self.loop.call_soon_threadsafe(callback, *args)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self._soon(_settle, self.connected, reason)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        self._soon(_settle, self.subscribed, reasons)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._soon(self.queue.put_nowait, message)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any) -> None:
        self._soon(self.queue.put_nowait, _LOST)
        self._soon(self.closed.set)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._soon(self.loop.add_reader, sock, self._read)
        self._soon(self._start_misc)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._soon(self._forget, sock)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._soon(self.loop.add_writer, sock, self._write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._soon(self.loop.remove_writer, sock)

    def _forget(self, sock: Any) -> None:
        self.loop.remove_reader(sock)
        self.loop.remove_writer(sock)

    def _read(self) -> None:
        try:
            self.client.loop_read()
            # A TLS socket may hold decoded bytes that select() does not report (paho issue #131).
            sock = self.client.socket()
            while isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
                self.client.loop_read()
                sock = self.client.socket()
        except Exception:
            self._broken("reading")

    def _write(self) -> None:
        try:
            self.client.loop_write()
        except Exception:
            self._broken("writing")

    def _broken(self, doing: str) -> None:
        # paho reports a lost connection through on_disconnect; an exception here is unexpected: end the session.
        log.exception("MQTT %r: %s the socket failed", self.broker, doing)
        sock = self.client.socket()
        if sock is not None:
            self._forget(sock)
        self.queue.put_nowait(_LOST)

    def _start_misc(self) -> None:
        if self.misc is None:
            self.misc = self.loop.create_task(self._misc_loop())

    async def _misc_loop(self) -> None:
        # Keepalive pings and the detection of a silent broker.
        while self.client.loop_misc() == paho.MQTT_ERR_SUCCESS:
            await asyncio.sleep(1)

    # -- the session --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        stopper = self.loop.create_task(_put_when(self.stop, self.queue))
        try:
            await self._connect()
            await self._subscribe()
            await self._consume()
        finally:
            stopper.cancel()
            await self._close()

    async def _connect(self) -> None:
        b = self.broker
        try:
            # connect() blocks on DNS, TCP and the TLS handshake: a worker thread, so the loop keeps running.
            await self.loop.run_in_executor(None, self.client.connect, b.host, b.port, KEEPALIVE_S)
            reason = await asyncio.wait_for(self.connected, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise _ConnectionLost(f"cannot connect: {exc or type(exc).__name__}") from exc
        if reason.is_failure:
            raise _ConnectionLost(f"the broker refused the connection: {reason}")

    async def _subscribe(self) -> None:
        result, _ = self.client.subscribe([(s.topic_filter, QOS) for s in self.subscriptions])
        if result != paho.MQTT_ERR_SUCCESS:
            raise _ConnectionLost(f"subscribe failed: {paho.error_string(result)}")
        try:
            reasons = await asyncio.wait_for(self.subscribed, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise _ConnectionLost("no SUBACK from the broker") from exc
        refused = [s.topic_filter for s, r in zip(self.subscriptions, reasons, strict=False) if r.is_failure]
        if refused:
            raise _ConnectionLost(f"the broker refused the subscriptions {refused} (ACL?)")
        log.info("MQTT %r: subscribed to %s", self.broker, [s.topic_filter for s in self.subscriptions])

    async def _consume(self) -> None:
        while True:
            item = await self.queue.get()
            if item is _STOP or self.stop.is_set():
                return  # after the message in hand: the ones behind it stay unacknowledged, for the next session
            if item is _LOST:
                raise _ConnectionLost("the broker closed the connection")
            assert isinstance(item, paho.MQTTMessage)
            await self._deliver(item)

    async def _deliver(self, message: paho.MQTTMessage) -> None:
        source = source_for(message.topic, self.subscriptions)
        if source is None:
            # A filter dropped from the configuration still lives in the persistent session on the broker.
            MESSAGES.labels("", "unrouted").inc()
            log.warning("MQTT message on %r matches no configured subscription: dropped", message.topic)
        else:
            payload = Payload(body=bytes(message.payload), content_type="application/json", topic=message.topic)
            try:
                await self.handle(source, payload)
            except PayloadError as exc:
                MESSAGES.labels(source, "rejected").inc()
                log.warning("MQTT message on %r from source %s rejected: %s", message.topic, source, exc)
            except Exception as exc:
                raise _HandlerFailed() from exc
            else:
                MESSAGES.labels(source, "handled").inc()
            self.progressed = True
        if message.qos > 0:
            self.client.ack(message.mid, message.qos)

    async def _close(self) -> None:
        if self.client.socket() is not None:
            self.client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), timeout=DISCONNECT_WAIT_S)
        sock = self.client.socket()
        if sock is not None:  # the broker never answered the DISCONNECT: drop the socket ourselves
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
            sock.close()
        if self.misc is not None:
            self.misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.misc


def _settle(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)


async def _put_when(event: asyncio.Event, queue: asyncio.Queue[object]) -> None:
    await event.wait()
    queue.put_nowait(_STOP)
