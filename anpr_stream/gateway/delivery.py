"""Delivery of prepared reads: to Kafka (acks=all, idempotent producer) when it is up and nothing waits in the spool,
else to the spool (fsynced); a drain task sends the spool to Kafka in order, and the gateway goes back to direct
delivery once it is empty. Either way a read is acknowledged to the camera only when it is durable. A read sent to
Kafka and then spooled too (a timeout on an acknowledgement that was on its way) arrives twice: the worker stores a
read once by its identity (read_id, camera, instant, plate), so a copy costs nothing downstream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from anpr_stream.gateway.spool import Spool, SpoolFull

log = logging.getLogger(__name__)

DRAIN_BATCH = 500
KAFKA = "kafka"
SPOOLED = "spooled"


class Delivery:
    def __init__(
        self,
        producer_factory: Callable[[], AIOKafkaProducer],
        topic: str,
        spool: Spool,
        *,
        send_timeout: float = 5.0,
        retry_max: float = 5.0,
    ) -> None:
        self._factory = producer_factory
        self._topic = topic
        self.spool = spool
        self._send_timeout = send_timeout
        self._retry_max = retry_max
        self._producer: AIOKafkaProducer | None = None
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._direct = True  # no read waits in the spool and Kafka took the last send
        self.kafka_up = False
        self._stopping = False

    async def start(self) -> None:
        self._direct = self.spool.empty()
        self._task = asyncio.create_task(self._run(), name="gateway-delivery")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            # aiokafka's start() can swallow a cancellation while it bootstraps (seen with the broker unreachable):
            # the loop also checks the flag, and the wait is bounded.
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=5)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), 5)
        self.spool.close()

    async def deliver(self, records: Sequence[tuple[bytes, bytes]]) -> str:
        """KAFKA when every record was acknowledged by Kafka, SPOOLED when they were fsynced to the spool; raises
        SpoolFull when neither is possible now."""
        producer = self._producer
        if self._direct and producer is not None and self.kafka_up:
            try:
                await asyncio.wait_for(self._send_all(producer, records), self._send_timeout)
                return KAFKA
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("Kafka did not acknowledge %d read(s) (%r): spooling from now on", len(records), exc)
                self._fall_back()
        await asyncio.to_thread(self.spool.append, records)
        self._wake.set()
        return SPOOLED

    def _fall_back(self) -> None:
        self._direct = False
        self.kafka_up = False
        self._wake.set()

    async def _send_all(self, producer: AIOKafkaProducer, records: Sequence[tuple[bytes, bytes]]) -> None:
        futures = [await producer.send(self._topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*futures)

    async def _connect(self) -> AIOKafkaProducer:
        delay = 0.2
        while not self._stopping:
            producer = self._factory()
            try:
                await asyncio.wait_for(producer.start(), self._send_timeout * 2)
                return producer
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("Kafka unreachable (%r): reads go to the spool; retrying in %.1f s", exc, delay)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 2)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
        raise asyncio.CancelledError

    async def _run(self) -> None:
        self._producer = await self._connect()
        self.kafka_up = True
        delay = 0.2
        while not self._stopping:
            if self.spool.empty():
                self._direct = True
                self.kafka_up = True
                self._wake.clear()
                # A failed direct send wakes us; otherwise look again now and then.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            self._direct = False
            batch = await asyncio.to_thread(self.spool.read, DRAIN_BATCH)
            if not batch:
                await asyncio.sleep(0.05)
                continue
            try:
                await asyncio.wait_for(
                    self._send_all(self._producer, [(r.key, r.value) for r in batch]), self._send_timeout * 2
                )
            except (KafkaError, TimeoutError, OSError) as exc:
                self.kafka_up = False
                log.warning("spool drain: Kafka did not acknowledge (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            delay = 0.2
            self.kafka_up = True
            await asyncio.to_thread(self.spool.commit, batch[-1].end)


__all__ = ["KAFKA", "SPOOLED", "Delivery", "SpoolFull"]
