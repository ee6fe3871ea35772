"""The live stream's pure parts: event ids as Kafka positions, the SSE wire format, the in-memory ring."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from anpr_stream.api import live
from anpr_stream.api.access import Role, User
from anpr_stream.api.live import Event, Ring, Subscription, event_of, format_position, parse_position, sse


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("0:17", {0: 17}),
        ("0:17,1:4,2:9", {0: 17, 1: 4, 2: 9}),
        (" 2:9 , 0:0 ", {2: 9, 0: 0}),
        ("0:1,", {0: 1}),
    ],
)
def test_event_ids_are_positions(text: str, position: dict[int, int]) -> None:
    assert parse_position(text) == position
    assert parse_position(format_position(position)) == position


def test_positions_are_written_in_partition_order() -> None:
    assert format_position({2: 9, 0: 17, 1: 4}) == "0:17,1:4,2:9"


@pytest.mark.parametrize("text", ["", ",", "zero", "0", "0:", ":5", "a:1", "0:-1", "0:1;1:2", "0:1.5"])
def test_malformed_event_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="event id"):
        parse_position(text)


def test_sse_wire_format() -> None:
    assert sse("hit", b'{"a":1}', "0:5") == b'event: hit\nid: 0:5\ndata: {"a":1}\n\n'
    assert sse("outcome", b"{}") == b"event: outcome\ndata: {}\n\n"


def test_event_of_a_hit_payload_keeps_id_camera_and_one_line_json() -> None:
    value = b'{\n "hit_id": "h-1",\n "camera": {"camera_id": "CAM-1"}, "read": {"plate": "1-ABC-123"}\n}'
    event = event_of(0, 7, value)
    assert event is not None
    assert (event.partition, event.offset, event.hit_id, event.camera_id) == (0, 7, "h-1", "CAM-1")
    assert b"\n" not in event.data and orjson.loads(event.data)["read"]["plate"] == "1-ABC-123"


@pytest.mark.parametrize("value", [None, b"", b"not json", b"[1, 2]", b'{"camera": {}}'])
def test_event_of_anything_else_is_none(value: bytes | None) -> None:
    assert event_of(0, 1, value) is None


def _event(partition: int, offset: int) -> Event:
    return Event(partition, offset, f"h-{partition}-{offset}", "CAM", b"{}")


def test_ring_covers_from_its_start_until_it_evicts() -> None:
    ring = Ring({0: 10, 1: 0}, capacity=3)
    assert ring.covers(0, 10) and ring.covers(0, 12) and not ring.covers(0, 9)
    assert not ring.covers(2, 0), "a partition the ring never had"
    for offset in (10, 12, 13):  # 11: a transaction marker, never a record
        ring.append(_event(0, offset))
    assert [e.offset for e in ring.between(0, 10, 14)] == [10, 12, 13]
    assert [e.offset for e in ring.between(0, 11, 13)] == [12]
    ring.append(_event(1, 0))  # evicts offset 10 of partition 0
    assert not ring.covers(0, 10) and ring.covers(0, 11)
    assert [e.offset for e in ring.between(0, 11, 99)] == [12, 13]
    assert ring.covers(1, 0) and [e.hit_id for e in ring.between(1, 0, 1)] == ["h-1-0"]


class _Hub:
    def __init__(self) -> None:
        self.left: list[Subscription] = []

    def unsubscribe(self, subscription: Subscription) -> None:
        self.left.append(subscription)


async def test_a_scoped_stream_shows_its_cameras_and_still_moves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.05)
    hub = _Hub()
    subscription = Subscription(User("u", Role.DISPATCHER, frozenset({"A"})), {0: 5, 1: 2})
    stream = live._events(hub, subscription, [b'{"hit_id":"old"}'], [b'{"hit_id":"old","outcome":"other"}'], None)

    async def next_event() -> bytes:
        return await asyncio.wait_for(anext(stream), 2)

    assert await next_event() == b'event: hit\ndata: {"hit_id":"old"}\n\n'
    assert (await next_event()).startswith(b"event: outcome\ndata: ")
    assert await next_event() == b'event: ready\nid: 0:5,1:2\ndata: {"resumed":false}\n\n'
    subscription.offer("hit", Event(0, 5, "x", "B", b"{}"))  # another camera: not shown
    subscription.offer("hit", Event(1, 2, "y", "A", b'{"hit_id":"y"}'))
    assert await next_event() == b'event: hit\nid: 0:6,1:3\ndata: {"hit_id":"y"}\n\n'
    subscription.offer("hit", Event(1, 4, "z", "B", b"{}"))
    subscription.offer("hit", Event(1, 3, "y", "A", b"{}"))  # behind the stream's position: already passed
    assert await next_event() == b"event: position\nid: 0:6,1:5\ndata: {}\n\n"
    assert await next_event() == b": keepalive\n\n"
    subscription.offer("outcome", {"hit_id": "y", "outcome": "intercepted"})
    assert await next_event() == b'event: outcome\ndata: {"hit_id":"y","outcome":"intercepted"}\n\n'
    await stream.aclose()
    assert hub.left == [subscription]


async def test_a_stream_that_falls_too_far_behind_ends_after_what_it_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "QUEUE_CAPACITY", 2)
    subscription = Subscription(User("u", Role.DISPATCHER), {0: 0})
    for offset in range(3):
        subscription.offer("hit", Event(0, offset, f"h{offset}", "A", b"{}"))
    assert subscription.overflowed and subscription.queue.qsize() == 2
    got = [chunk async for chunk in live._events(_Hub(), subscription, [], [], None)]
    assert [c.split(b"\n")[1] for c in got] == [b"id: 0:0", b"id: 0:1", b"id: 0:2"]
