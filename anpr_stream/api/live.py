"""Live hits for the dispatch console: one read_committed consumer of the hits topic per API process, fanned out to
Server-Sent Events streams; outcomes pushed from PostgreSQL LISTEN; exact resumption by Kafka position.

Event ids are positions: for every partition of the hits topic, the next offset the stream has passed
("0:17,1:4,2:9"). A console that reconnects sends its last id (Last-Event-ID header or `resume` parameter) and gets
every hit after it: from the process's in-memory ring, or read back from Kafka when the ring no longer reaches that
far. Positions are Kafka's, so they are valid on any API process of the deployment."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from anpr_stream.api.access import Denied, User
from anpr_stream.api.context import CallDep, error_responses, justification_headers
from anpr_stream.api.hits import HIT_COLUMNS, LATEST_OUTCOME, hit_view
from anpr_stream.config import Settings
from anpr_stream.retention.policy import DataClass
from anpr_stream.stream.topics import ensure_topics

log = logging.getLogger(__name__)

OUTCOME_CHANNEL = "anpr_hit_outcomes"  # api/hits.py acknowledge() notifies it
BACKLOG_HITS = 50  # a freshly opened console shows the last hits of ...
BACKLOG_WINDOW = timedelta(hours=12)  # ... this window (a shift), with their outcomes
HEARTBEAT_SECONDS = 15.0  # the page reconnects when it hears nothing for ~2.5 heartbeats
RING_CAPACITY = 5000
QUEUE_CAPACITY = 10_000  # a console this far behind is cut off; it resumes from its last event id
READ_BACK_TIMEOUT = 20.0

Position = dict[int, int]  # partition -> next offset


def format_position(position: Mapping[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(position.items()))


def parse_position(text: str) -> Position:
    """An event id back to a position; ValueError naming what is wrong."""
    position: Position = {}
    for part in filter(None, (t.strip() for t in text.split(","))):
        partition, sep, offset = part.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise ValueError(f"event id {text[:100]!r} is not a list of partition:offset")
        position[int(partition)] = int(offset)
    if not position:
        raise ValueError("empty event id")
    return position


def sse(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One Server-Sent Event. `data` is one line of JSON (orjson never writes newlines)."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head.encode() + b"data: " + data + b"\n\n"


@dataclass(frozen=True, slots=True)
class Event:
    """A hit as read from the hits topic: its place there, its id and camera (for dedupe and scope), its payload."""

    partition: int
    offset: int
    hit_id: str
    camera_id: str
    data: bytes


def event_of(partition: int, offset: int, value: bytes | None) -> Event | None:
    try:
        payload = orjson.loads(value or b"")
        camera = payload.get("camera") or {}
        return Event(
            partition, offset, str(payload["hit_id"]), str(camera.get("camera_id") or ""), orjson.dumps(payload)
        )
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
        return None


class Ring:
    """The last hits this process read, and from which offset on each partition it still has all of them."""

    def __init__(self, start: Mapping[int, int], capacity: int = RING_CAPACITY) -> None:
        self._events: deque[Event] = deque()
        self._floor: Position = dict(start)
        self._capacity = capacity

    def append(self, event: Event) -> None:
        if len(self._events) >= self._capacity:
            old = self._events.popleft()
            self._floor[old.partition] = max(self._floor.get(old.partition, 0), old.offset + 1)
        self._events.append(event)

    def covers(self, partition: int, offset: int) -> bool:
        return partition in self._floor and offset >= self._floor[partition]

    def between(self, partition: int, low: int, high: int) -> list[Event]:
        return [e for e in self._events if e.partition == partition and low <= e.offset < high]


@dataclass(eq=False)
class Subscription:
    """One open stream: what it may see, where the live feed stood when it joined, what is waiting for it."""

    user: User
    handover: Position
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_CAPACITY))
    overflowed: bool = False

    def offer(self, kind: str, item: Any) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait((kind, item))
        except asyncio.QueueFull:
            self.overflowed = True


class LiveHub:
    """The process's live feed (hits topic, outcome notifications) and its subscribers."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.pool = pool
        self.position: Position = {}
        self.ring: Ring | None = None
        self.ready = asyncio.Event()
        self.schema = ""
        self._subscribers: set[Subscription] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.schema = str(await self.pool.fetchval("SELECT current_schema()"))
        self._tasks = [
            asyncio.create_task(self._feed(), name="live-hits"),
            asyncio.create_task(self._outcomes(), name="live-outcomes"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._pending]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)

    def subscribe(self, user: User) -> Subscription:
        """Join the live feed; everything read from now on is offered to the subscription (no await in here, so
        the handover position and the first queued event meet exactly)."""
        subscription = Subscription(user, dict(self.position))
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, group_id=None, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100,
        )  # fmt: skip

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        topic = self.settings.topics.hits
        while True:
            found = consumer.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            await consumer._client.force_metadata_update()  # aiokafka has no public refresh
            if not consumer.partitions_for_topic(topic):
                await asyncio.sleep(0.5)

    async def _feed(self) -> None:
        delay = 0.5
        while True:
            consumer = self._consumer()
            try:
                try:
                    await ensure_topics(self.settings)
                except Exception as exc:  # e.g. no right to create topics: wait for the worker to make it
                    log.warning("could not ensure the topics (%s); waiting for %s", exc, self.settings.topics.hits)
                await consumer.start()
                # The partitions as they are now: partitions added to the hits topic later reach consoles after
                # the API restarts (or the feed does, after a failure).
                partitions = await self._partitions(consumer)
                consumer.assign(partitions)
                if self.ring is None:
                    # Live from now on; what came before reaches a console as its backlog (PostgreSQL).
                    await consumer.seek_to_end(*partitions)
                    self.position = {tp.partition: await consumer.position(tp) for tp in partitions}
                    self.ring = Ring(self.position)
                    self.ready.set()
                else:  # after a failure: on from where the feed stood, nothing skipped
                    for tp in partitions:
                        consumer.seek(tp, self.position.setdefault(tp.partition, 0))
                delay = 0.5
                while True:
                    batches = await consumer.getmany(timeout_ms=1000)
                    for tp, records in batches.items():
                        for record in records:
                            self._publish(tp.partition, record.offset, record.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live hits feed failed; restarting in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                await consumer.stop()

    def _publish(self, partition: int, offset: int, value: bytes | None) -> None:
        self.position[partition] = offset + 1
        event = event_of(partition, offset, value)
        if event is None:
            log.warning("hits topic partition %d offset %d: not a hit payload, skipped", partition, offset)
            return
        assert self.ring is not None
        self.ring.append(event)
        for subscription in self._subscribers:  # every one: a stream passes the hits it may not show, too
            subscription.offer("hit", event)

    async def _outcomes(self) -> None:
        """LISTEN on a dedicated connection, reconnecting when it is lost."""
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.settings.database_url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(OUTCOME_CHANNEL, self._on_outcome)
                delay = 0.5
                await lost.wait()
                log.warning("outcome listener connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outcome listener failed (%s); retrying in %.1f s", exc, delay)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _on_outcome(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        # One channel per database; environments (schemas) sharing it tell their outcomes apart by name.
        if not isinstance(body, dict) or body.pop("schema", None) != self.schema:
            return
        task = asyncio.create_task(self._fan_outcome(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _fan_outcome(self, body: dict[str, Any]) -> None:
        try:
            camera = await self.pool.fetchval("SELECT camera_id FROM hits WHERE hit_id = $1", uuid.UUID(body["hit_id"]))
        except (KeyError, ValueError):
            return
        if camera is None:
            return
        for subscription in self._subscribers:
            if subscription.user.sees_camera(camera):
                subscription.offer("outcome", body)

    async def replay(self, since: Mapping[int, int], upto: Mapping[int, int]) -> AsyncIterator[Event]:
        """Every hit at or after `since` and before `upto`: from the ring where it reaches, else from Kafka."""
        assert self.ring is not None
        wanted = {p: (since.get(p, high), high) for p, high in upto.items() if since.get(p, high) < high}
        ring = self.ring
        from_ring = [e for p, (low, high) in wanted.items() if ring.covers(p, low) for e in ring.between(p, low, high)]
        rest = {p: span for p, span in wanted.items() if not ring.covers(p, span[0])}
        for event in from_ring:
            yield event
        if rest:
            async for event in self._read_back(rest):
                yield event

    async def _read_back(self, spans: Mapping[int, tuple[int, int]]) -> AsyncIterator[Event]:
        topic = self.settings.topics.hits
        consumer = self._consumer()
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in sorted(spans)]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, spans[tp.partition][0])
            # A deadline, not asyncio.timeout(): this generator yields to its consumer, whose awaits the timeout
            # would cancel too.
            deadline = asyncio.get_running_loop().time() + READ_BACK_TIMEOUT
            open_ = set(partitions)
            while open_:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"reading back the hits topic from {spans} took over {READ_BACK_TIMEOUT} s")
                batches = await consumer.getmany(*open_, timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        if record.offset < spans[tp.partition][1]:
                            event = event_of(tp.partition, record.offset, record.value)
                            if event is not None:
                                yield event
                for tp in list(open_):
                    if await consumer.position(tp) >= spans[tp.partition][1]:
                        open_.discard(tp)
        finally:
            await consumer.stop()


def hub_of(request: Request) -> LiveHub:
    found: LiveHub = request.app.state.live
    return found


def attach(app: FastAPI) -> None:
    """Run the live hub inside the app's lifespan (after the core's: it needs the database pool)."""
    core = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with core(app) as state:
            hub = LiveHub(app.state.services.settings, app.state.services.pool)
            app.state.live = hub
            await hub.start()
            try:
                yield state
            finally:
                await hub.stop()

    app.router.lifespan_context = lifespan


router = APIRouter(
    prefix="/v1/live",
    tags=["live"],
    dependencies=[Depends(justification_headers)],
    responses=error_responses(400, 401, 403, 503),
)

STREAM_DESCRIPTION = """Server-Sent Events (`text/event-stream`), for the dispatch console. Events:
`hit` (the payload as published on the hits topic; covert lists masked), `outcome` (an acknowledgement recorded on
any console), `ready` (the backlog is sent; from here on live), `position` (no hit for the caller, but the stream
moved on). Hits, `ready` and `position` carry an id (the stream's Kafka position): reconnect with it in
`Last-Event-ID` (or `resume`) to get every hit after it, and the current outcomes. Without it, the stream starts
with the last hits of the past hours. Comments (`: keepalive`) every 15 s otherwise. The stream never ends by
itself; one audit row per connection."""


@router.get(
    "/hits", name="hits.stream", summary="Live hits and outcomes (Server-Sent Events)", description=STREAM_DESCRIPTION,
    response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}},
)  # fmt: skip
async def stream_hits(
    call: CallDep,
    resume: Annotated[str | None, Query(description="the last event id seen (instead of Last-Event-ID)")] = None,
    last_event_id: Annotated[str | None, Header(description="the last event id seen")] = None,
) -> StreamingResponse:
    hub = hub_of(call.request)
    since = call.now - BACKLOG_WINDOW
    resume_text = resume or last_event_id
    extra = {"resume": resume_text} if resume_text else None
    grant = await call.grant(since=since, data_class=DataClass.HITS, extra=extra)
    try:
        resume_from = parse_position(resume_text) if resume_text else None
    except ValueError as exc:
        raise await call.deny(Denied(400, str(exc)), extra) from None
    try:
        async with asyncio.timeout(10):
            await hub.ready.wait()
    except TimeoutError:
        raise await call.deny(Denied(503, "the live feed is not connected to Kafka yet; retry"), extra) from None
    cameras = grant.cameras(None)
    subscription = hub.subscribe(call.user)  # before the queries: nothing between them and the feed is lost
    try:
        backlog = [] if resume_from is not None else await _backlog(hub, call.user, grant.since, cameras)
        outcomes = await _outcomes(hub, grant.since, cameras)
        await call.answered(grant, len(backlog), extra)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    return StreamingResponse(
        _events(hub, subscription, backlog, outcomes, resume_from),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        background=BackgroundTask(hub.unsubscribe, subscription),
    )


async def _backlog(hub: LiveHub, user: User, since: Any, cameras: list[str] | None) -> list[bytes]:
    """The last dispatched hits (with their latest outcome), oldest first. The worker commits a hit to PostgreSQL
    before its Kafka transaction, so a hit published before the subscription is here; one in both is shown once."""
    rows = await hub.pool.fetch(
        f"""SELECT {HIT_COLUMNS} FROM hits h {LATEST_OUTCOME}
            WHERE h.dispatch AND h.suppressed IS NOT NULL AND h.observed_at >= $1
              AND ($2::text[] IS NULL OR h.camera_id = ANY($2))
            ORDER BY h.observed_at DESC, h.hit_id DESC LIMIT $3""",  # noqa: S608 -- constant fragments only
        since, cameras, BACKLOG_HITS,
    )  # fmt: skip
    return [orjson.dumps(hit_view(row, user)) for row in reversed(rows)]


async def _outcomes(hub: LiveHub, since: Any, cameras: list[str] | None) -> list[bytes]:
    """The latest outcome of every hit of the window: a reconnecting console catches up on those it missed."""
    rows = await hub.pool.fetch(
        """SELECT DISTINCT ON (o.hit_id) o.hit_id, o.outcome, o.note, o.recorded_by, o.recorded_at
           FROM hit_outcomes o JOIN hits h ON h.hit_id = o.hit_id
           WHERE h.observed_at >= $1 AND ($2::text[] IS NULL OR h.camera_id = ANY($2))
           ORDER BY o.hit_id, o.recorded_at DESC, o.outcome_id DESC""",
        since, cameras,
    )  # fmt: skip
    return [
        orjson.dumps({"hit_id": str(r["hit_id"]), "outcome": r["outcome"], "note": r["note"],
                      "recorded_by": r["recorded_by"], "recorded_at": r["recorded_at"].isoformat()})
        for r in rows
    ]  # fmt: skip


async def _events(
    hub: LiveHub,
    subscription: Subscription,
    backlog: Iterable[bytes],
    outcomes: Iterable[bytes],
    resume_from: Position | None,
) -> AsyncIterator[bytes]:
    handover = subscription.handover
    position = {**handover, **(resume_from or {})}
    try:
        for data in backlog:
            yield sse("hit", data)
        for data in outcomes:
            yield sse("outcome", data)
        if resume_from is not None:
            async for event in hub.replay(resume_from, handover):
                position[event.partition] = event.offset + 1
                if subscription.user.sees_camera(event.camera_id):
                    yield sse("hit", event.data, format_position(position))
            for partition, offset in handover.items():
                position[partition] = max(position.get(partition, 0), offset)
        told = format_position(position)
        yield sse("ready", orjson.dumps({"resumed": resume_from is not None}), told)
        while True:
            try:
                kind, item = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if subscription.overflowed:
                    return  # the console resumes from its last event id
                # A console that sees few of the hits (camera scope) still moves on: its next resume reads less.
                now_at = format_position(position)
                yield b": keepalive\n\n" if now_at == told else sse("position", b"{}", now_at)
                told = now_at
                continue
            if kind == "outcome":
                yield sse("outcome", orjson.dumps(item))
            elif item.offset >= position.get(item.partition, 0):  # the console may be ahead (another process)
                position[item.partition] = item.offset + 1
                if subscription.user.sees_camera(item.camera_id):
                    told = format_position(position)
                    yield sse("hit", item.data, told)
            if subscription.overflowed and subscription.queue.empty():
                return
    finally:
        hub.unsubscribe(subscription)
