"""Live hits for the dispatch console: one read_committed consumer of the hits topic per API process, fanned out to
Server-Sent Events streams; outcomes pushed from PostgreSQL LISTEN; exact resumption by Kafka position.

Event ids are positions: for every partition of the hits topic, the next offset the stream has passed
("0:17,1:4,2:9"). A console that reconnects sends its last id (Last-Event-ID header or `resume` parameter) and gets
every hit after it: from the process's in-memory ring, or read back from Kafka when the ring no longer reaches that
far. Positions are Kafka's, so they are valid on any API process of the deployment.

What a stream shows stays within its grant: hits of the caller's cameras observed inside the window granted when it
opened (its width kept as the clock moves), replays included; covert entries opaque unless the caller is cleared
(then completed from PostgreSQL). Every open stream's token is checked again every few seconds: a revoked one ends
its streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from anpr_stream.api.access import Denied, User
from anpr_stream.api.context import CallDep, error_responses, justification_headers
from anpr_stream.api.hits import HIT_COLUMNS, LATEST_OUTCOME, hit_view
from anpr_stream.api.users import authenticate
from anpr_stream.config import Settings
from anpr_stream.core.outgoing import covert_masked, is_covert
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
MAX_REPLAY = RING_CAPACITY  # hits replayed on one resume; a console further behind resumes again from the last one
# A read back from Kafka starts at the first record written after the window's start, less this: a hit is
# published after it is observed, so nothing older than the window is skipped unless a camera's clock runs ahead.
READ_BACK_SLACK = timedelta(minutes=5)
TOKEN_CHECK_SECONDS = 2.0  # a revoked token's streams end within about this

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
    """A hit as read from the hits topic: its place there, its id, camera and time (for dedupe, scope and window),
    its payload (covert entries opaque), and whether it is covert (cleared callers get its details)."""

    partition: int
    offset: int
    hit_id: str
    camera_id: str
    data: bytes
    observed_at: datetime | None = None
    covert: bool = False


def _observed_at(payload: Mapping[str, Any]) -> datetime | None:
    read = payload.get("read")
    try:
        at = datetime.fromisoformat(str(read.get("observed_at"))) if isinstance(read, Mapping) else None
    except ValueError:
        return None
    return at if at is not None and at.tzinfo is not None else None


def event_of(partition: int, offset: int, value: bytes | None) -> Event | None:
    try:
        payload = orjson.loads(value or b"")
        camera = payload.get("camera") or {}
        hit_id, camera_id = str(payload["hit_id"]), str(camera.get("camera_id") or "")
        covert = is_covert(payload)
        # Masked here too: records published before covert hits were opaque named the entry and its priority.
        data = orjson.dumps(covert_masked(payload) if covert else payload)
        return Event(partition, offset, hit_id, camera_id, data, _observed_at(payload), covert)
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
    # Hits observed longer ago than this are never shown (None: no bound); the grant's window, moving with the clock.
    window: timedelta | None = None
    token: str = field(default="", repr=False)  # checked again while the stream is open
    closed: bool = False  # the token was revoked: the stream ends now, whatever it holds

    def offer(self, kind: str, item: Any) -> None:
        if self.overflowed or self.closed:
            return
        try:
            self.queue.put_nowait((kind, item))
        except asyncio.QueueFull:
            self.overflowed = True

    def may_see(self, camera_id: str, observed_at: datetime | None, now: datetime) -> bool:
        if not self.user.sees_camera(camera_id):
            return False
        return self.window is None or (observed_at is not None and observed_at >= now - self.window)

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue has the stream awake already
            self.queue.put_nowait(("closed", None))


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
            asyncio.create_task(self._check_tokens(), name="live-tokens"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._pending]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)

    def subscribe(self, user: User, token: str = "", window: timedelta | None = None) -> Subscription:
        """Join the live feed; everything read from now on is offered to the subscription (no await in here, so
        the handover position and the first queued event meet exactly)."""
        subscription = Subscription(user, dict(self.position), window=window, token=token)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    async def _check_tokens(self) -> None:
        """Every TOKEN_CHECK_SECONDS, each distinct token of the open streams once (api.users.authenticate, the one
        test of a token's validity), on one connection: the load grows with the users streaming, not their
        streams. A revoked (or expired) token's streams are closed. A database that does not answer closes nothing:
        the streams keep going and the check is tried again."""
        while True:
            await asyncio.sleep(TOKEN_CHECK_SECONDS)
            tokens = {s.token for s in self._subscribers if s.token and not s.closed}
            if not tokens:
                continue
            try:
                async with self.pool.acquire() as conn:
                    gone = {token for token in tokens if await authenticate(conn, token) is None}
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("could not check the live streams' tokens (%s); retrying", exc)
                continue
            for subscription in [s for s in self._subscribers if s.token in gone]:
                log.info("token of %s no longer valid: its live stream ends", subscription.user.name)
                subscription.close()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap, **self.settings.kafka_security.aiokafka_options(),
            group_id=None, isolation_level="read_committed",
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
            hit = await self.pool.fetchrow(
                "SELECT camera_id, observed_at FROM hits WHERE hit_id = $1", uuid.UUID(body["hit_id"])
            )
        except (KeyError, ValueError):
            return
        if hit is None:
            return
        now = datetime.now(UTC)
        for subscription in self._subscribers:
            if subscription.may_see(hit["camera_id"], hit["observed_at"], now):
                subscription.offer("outcome", body)

    async def replay(
        self, since: Mapping[int, int], upto: Mapping[int, int], published_from: datetime | None = None
    ) -> AsyncGenerator[Event, None]:
        """Every hit at or after `since` and before `upto`: from the ring where it reaches, else from Kafka, where
        records published before `published_from` are skipped (the caller still checks each hit's time)."""
        assert self.ring is not None
        wanted = {p: (since.get(p, high), high) for p, high in upto.items() if since.get(p, high) < high}
        ring = self.ring
        from_ring = [e for p, (low, high) in wanted.items() if ring.covers(p, low) for e in ring.between(p, low, high)]
        rest = {p: span for p, span in wanted.items() if not ring.covers(p, span[0])}
        for event in from_ring:
            yield event
        if rest:
            async for event in self._read_back(rest, published_from):
                yield event

    async def _read_back(
        self, wanted: Mapping[int, tuple[int, int]], published_from: datetime | None
    ) -> AsyncIterator[Event]:
        topic = self.settings.topics.hits
        consumer = self._consumer()
        await consumer.start()
        try:
            spans = dict(wanted)
            if published_from is not None:
                at_ms = int(published_from.timestamp() * 1000)
                found = await consumer.offsets_for_times({TopicPartition(topic, p): at_ms for p in spans})
                for tp, first in found.items():
                    low, high = spans[tp.partition]
                    spans[tp.partition] = (max(low, first.offset) if first is not None else high, high)
                spans = {p: (low, high) for p, (low, high) in spans.items() if low < high}
            partitions = [TopicPartition(topic, p) for p in sorted(spans)]
            if not partitions:
                return
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
with the last hits of the past hours. Comments (`: keepalive`) every 15 s otherwise. A resume never reaches
past the window the stream was granted (the last hours, within retention) nor outside the caller's cameras. The
stream ends when the caller's token is revoked (within seconds), or when a console falls too far behind (it resumes
from its last id); else never. One audit row per connection, with the number of hits replayed on a resume."""


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
    extra: dict[str, Any] | None = {"resume": resume_text} if resume_text else None
    grant = await call.grant(since=since, data_class=DataClass.HITS, extra=extra)
    assert grant.since is not None  # a data window is always bounded by the retention horizon
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
    # Before the queries: nothing between them and the feed is lost.
    subscription = hub.subscribe(call.user, _bearer(call), window=call.now - grant.since)
    try:
        backlog = [] if resume_from is not None else await _backlog(hub, call.user, grant.since, cameras)
        outcomes = await _outcomes(hub, grant.since, cameras)
        replayed = None
        if resume_from is not None:
            # Read before the audit row, which records how many hits it gives (no audit row, no data).
            try:
                replayed = await _replay(hub, subscription, resume_from, grant.since)
            except (TimeoutError, KafkaError) as exc:
                reason = f"could not read the hits back from Kafka ({exc}); retry"
                raise await call.deny(Denied(503, reason), extra) from None
            extra = {**(extra or {}), "replayed": replayed.count, "replay_truncated": replayed.truncated}
        await call.answered(grant, replayed.count if replayed is not None else len(backlog), extra)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    return StreamingResponse(
        _events(hub, subscription, backlog, outcomes, replayed),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(hub.unsubscribe, subscription),
    )


def _bearer(call: CallDep) -> str:
    """The token the caller authenticated with (the Caller dependency has checked it)."""
    header = call.request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def _shown(hub: LiveHub, user: User, event: Event) -> bytes:
    """The event's payload for this caller: a covert hit completed from PostgreSQL for cleared callers (the worker
    stores a hit before it publishes it)."""
    if not (event.covert and user.sees_covert):
        return event.data
    row = await hub.pool.fetchrow(
        f"SELECT {HIT_COLUMNS} FROM hits h {LATEST_OUTCOME} WHERE h.hit_id = $1",  # noqa: S608 -- constants
        uuid.UUID(event.hit_id),
    )
    return event.data if row is None else orjson.dumps(hit_view(row, user))


@dataclass
class Replayed:
    """A resume's hits as SSE events with their ids, where the stream stands after them, and whether it stopped at
    MAX_REPLAY (then the stream ends after them and the console resumes from the last)."""

    events: list[bytes]
    position: Position
    count: int
    truncated: bool


async def _replay(hub: LiveHub, subscription: Subscription, resume_from: Position, since: datetime) -> Replayed:
    position = {**subscription.handover, **resume_from}
    events: list[bytes] = []
    now = datetime.now(UTC)
    replay = hub.replay(resume_from, subscription.handover, since - READ_BACK_SLACK)
    async with contextlib.aclosing(replay):  # its Kafka consumer stops when the cap ends the loop early
        async for event in replay:
            if len(events) >= MAX_REPLAY:
                return Replayed(events, position, len(events), True)
            position[event.partition] = event.offset + 1
            if subscription.may_see(event.camera_id, event.observed_at, now):
                events.append(sse("hit", await _shown(hub, subscription.user, event), format_position(position)))
    for partition, offset in subscription.handover.items():
        position[partition] = max(position.get(partition, 0), offset)
    return Replayed(events, position, len(events), False)


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
    replayed: Replayed | None,
) -> AsyncIterator[bytes]:
    position = dict(subscription.handover)
    try:
        for data in backlog:
            yield sse("hit", data)
        for data in outcomes:
            yield sse("outcome", data)
        if replayed is not None:
            for chunk in replayed.events:
                if subscription.closed:
                    return
                yield chunk
            if replayed.truncated:
                return  # the console resumes from the last id it got
            position = dict(replayed.position)
        told = format_position(position)
        yield sse("ready", orjson.dumps({"resumed": replayed is not None}), told)
        while not subscription.closed:
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
            if kind == "closed":
                return
            if kind == "outcome":
                yield sse("outcome", orjson.dumps(item))
            elif item.offset >= position.get(item.partition, 0):  # the console may be ahead (another process)
                position[item.partition] = item.offset + 1
                if subscription.may_see(item.camera_id, item.observed_at, datetime.now(UTC)):
                    data = await _shown(hub, subscription.user, item)
                    if subscription.closed:
                        return
                    told = format_position(position)
                    yield sse("hit", data, told)
            if subscription.overflowed and subscription.queue.empty():
                return
    finally:
        hub.unsubscribe(subscription)
