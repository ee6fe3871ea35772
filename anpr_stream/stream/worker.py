"""`anpr-stream worker`: the process that hosts the watchlist feed, the read pipeline and the scheduled purge.

An asyncio process of its own rather than a faust worker: faust's app joins a consumer group of its own (`<id>-app`)
whose 60 s session a restarted worker waited out before its pipeline could start, and its producer and topics would
be clients to secure that the service does not use. Here, startup waits for the broker and the database (they may
come up after the worker), and shutdown is bounded: SIGTERM or SIGINT finishes and commits what it can for
ANPR_SHUTDOWN_SECONDS, then stops whatever it still waits for; a second signal, or a shutdown that still hangs five
seconds later (a client stuck on an unreachable server), ends the process at once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from prometheus_client import start_http_server

from anpr_stream import metrics
from anpr_stream.cameras import CameraRegistry
from anpr_stream.config import Settings
from anpr_stream.evidence import EvidenceStore
from anpr_stream.retention.purge import run_purge
from anpr_stream.sinks.errors import db_retriable
from anpr_stream.sinks.migrate import Migration, migrate
from anpr_stream.sinks.postgres import index_closed_days
from anpr_stream.stream.clients import worker_id
from anpr_stream.stream.pipeline import ReadPipeline
from anpr_stream.stream.topics import TopicAccessError, ensure_topics
from anpr_stream.stream.watchlist_feed import WatchlistFeed

log = logging.getLogger(__name__)
T = TypeVar("T")
HARD_EXIT_AFTER_SECONDS = 5.0  # past the shutdown budget
EXIT_FORCED = 70


class Stopped(Exception):
    """A stop was requested while the worker was still starting."""


class StartRefused(Exception):
    """A server refused the worker in a way waiting cannot cure (credentials, ACLs, topics it may not create): the
    start ends with one clear line and EXIT_CONFIG instead of a retry loop without end or a traceback."""


EXIT_CONFIG = 78  # sysexits EX_CONFIG: systemd shows the unit failed, and restarts it only if told to
# Kafka's answers that mean "not you" or "not allowed": credentials or ACLs have to change before a retry can help.
_REFUSALS: tuple[type[BaseException], ...] = (
    TopicAccessError, SaslAuthenticationFailed, AuthenticationFailedError, UnsupportedSaslMechanismError,
    ClusterAuthorizationFailedError, GroupAuthorizationFailedError, TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed, asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InsufficientPrivilegeError,
)  # fmt: skip


class Worker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.feed = WatchlistFeed(settings.kafka_bootstrap, settings.topics.watchlist, settings.kafka_security)
        self.pool: asyncpg.Pool | None = None
        self.pipeline: ReadPipeline | None = None
        self.stop_requested = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def request_stop(self, signum: int) -> None:
        if self.stop_requested.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(EXIT_FORCED)
        log.info("%s: stopping (at most %.0f s)", signal.Signals(signum).name, self.settings.shutdown_seconds)
        self.stop_requested.set()
        _exit_later(self.settings.shutdown_seconds + HARD_EXIT_AFTER_SECONDS)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        try:
            await self._start()
        except Stopped:
            await self._stop()
            return 0
        except StartRefused as exc:
            log.error("cannot start: %s", exc)
            await self._stop()
            return EXIT_CONFIG
        assert self.pipeline is not None
        self._tasks = [
            asyncio.create_task(self.pipeline.run(), name="pipeline"),
            asyncio.create_task(self._follow_watchlist(), name="watchlist"),
            asyncio.create_task(self._purge_on_schedule(), name="purge"),
        ]
        stop = asyncio.ensure_future(self.stop_requested.wait())
        done, _ = await asyncio.wait({stop, self._tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
        if self._tasks[0] in done:
            log.error("the pipeline ended without a stop request: stopping the worker")
        stop.cancel()
        await self._stop()
        return 0 if self.stop_requested.is_set() else 1

    # -- start ------------------------------------------------------------------------------------------------

    async def _start(self) -> None:
        """Topics, pool and schema, cameras, the whole watchlist, then the pipeline; each waits for its server."""
        s = self.settings
        await self._until_ready("creating topics", lambda: ensure_topics(s))
        self.pool = await self._until_ready(
            "connecting to PostgreSQL",
            lambda: asyncpg.create_pool(
                s.database_url, min_size=1, max_size=4, server_settings={"client_min_messages": "warning"}
            ),
        )
        applied = await self._until_ready("checking the schema", self._migrate)
        if applied:
            log.info("applied migrations: %s", ", ".join(f"{m.version}_{m.name}" for m in applied))
        cameras = CameraRegistry.configured(s.cameras_file)
        await self._until_ready("loading the watchlist", self.feed.start)
        self.pipeline = ReadPipeline(s, self.feed, self.pool, cameras, metrics.PrometheusSensor())
        if s.metrics_port:
            try:
                start_http_server(s.metrics_port, addr=s.metrics_addr, registry=metrics.REGISTRY)
            except OSError as exc:
                # Losing the metrics endpoint must not stop hits from flowing: say so loudly and carry on.
                where = f"{s.metrics_addr}:{s.metrics_port}"
                log.error("metrics endpoint %s unavailable (%s); running without it", where, exc)
        # Everything made so far (modules, the watchlist index, clients) lives as long as the worker: out of the
        # collector's reach, so that a full collection scans only what the batches made. Measured at 5,000 reads/s:
        # full collections of ~30 ms each, in the hit latency's p99, before this.
        gc.collect()
        gc.freeze()
        log.info("worker %s ready: reading %s as %s", worker_id(), s.topics.reads, s.consumer_group)

    async def _migrate(self) -> list[Migration]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            return list(await migrate(conn))

    async def _until_ready(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` until the server it needs answers (a worker may start before Kafka or PostgreSQL)."""
        delay = 0.2
        while True:
            if self.stop_requested.is_set():
                raise Stopped
            try:
                return await step()
            except _REFUSALS as exc:
                raise StartRefused(f"{what}: {type(exc).__name__}: {exc}") from exc
            except (KafkaError, OSError, TimeoutError) as exc:
                reason = exc
            except Exception as exc:
                if not db_retriable(exc):
                    raise
                reason = exc
            log.warning("%s: %s: %s; retrying in %.1f s", what, type(reason).__name__, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), delay)
            delay = min(delay * 2, 2.0)

    # -- services ---------------------------------------------------------------------------------------------

    async def _follow_watchlist(self) -> None:
        while True:
            try:
                await self.feed.follow()
                return
            except Exception:
                log.exception("following the watchlist failed; again in 1 s (the index in force stays)")
                await asyncio.sleep(1.0)

    async def _purge_on_schedule(self) -> None:
        """Retention enforced at purge time too: whole day partitions past the horizon, every purge interval (the
        first run a minute after start at most), after the trigram indexes of the days that ended are built (the
        partition being written has none: migration 0014). A failed run is logged and tried again at the next
        interval."""
        interval = self.settings.purge_interval.total_seconds()
        if interval <= 0 or self.pool is None:
            return
        await asyncio.sleep(min(60.0, interval))
        while True:
            try:
                made = await index_closed_days(self.pool, datetime.now(UTC))
                if made:
                    log.info("built %d trigram indexes on day partitions whose day has ended", made)
            except Exception:
                log.exception("indexing the day partitions that ended failed; next try in %.0f s", interval)
            try:
                report = await run_purge(
                    self.pool,
                    self.settings.retention,
                    datetime.now(UTC),
                    actor=f"worker:{worker_id()}",
                    evidence=EvidenceStore(self.settings.evidence_dir),
                )
                if report is not None and report.removed_anything:
                    log.info("retention purge: %s", "; ".join(report.lines()))
            except Exception:
                log.exception("retention purge failed; next try in %.0f s", interval)
            await asyncio.sleep(interval)

    # -- stop -------------------------------------------------------------------------------------------------

    async def _stop(self) -> None:
        """The pipeline finishes and commits what it has matched (within the budget), then the connections close."""
        budget = self.settings.shutdown_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        if self.pipeline is not None and self._tasks:
            self.pipeline.stopping.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.pipeline.finished.wait()), budget)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=max(0.5, deadline - loop.time()))
        # aiokafka's stop() can re-raise the cancellation of its own fetch task (broker gone): not ours, suppressed.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(self.feed.stop(), max(0.5, deadline - loop.time()))
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), max(0.5, deadline - loop.time()))
            except (Exception, asyncio.CancelledError):
                self.pool.terminate()
        log.info("worker stopped")


def _exit_later(seconds: float) -> None:
    """The last resort of a bounded shutdown: a thread that ends the process if the loop has not by then."""

    def hard_exit() -> None:
        print(f"anpr-stream worker: shutdown took longer than {seconds:.0f} s; exiting", file=sys.stderr, flush=True)
        os._exit(EXIT_FORCED)

    timer = threading.Timer(seconds, hard_exit)
    timer.daemon = True
    timer.start()


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    logging.basicConfig(
        level=getattr(logging, loglevel.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(Worker(settings).run())
