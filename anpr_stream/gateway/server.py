"""The gateway's HTTP service (Starlette): `POST /v1/ingest/{source}` with the source's token, the payload as the
vendor sends it; 200 only once every read in it is durable (Kafka-acknowledged or fsynced to the spool), 400 with the
reason for a payload that cannot be read (nothing of it produced), 401 for a missing, wrong or expired token, 503 with
Retry-After when the spool is full. The same handling serves messages from MQTT (anpr_stream.gateway.mqtt)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# starlette's request.form() parses multipart bodies with python-multipart: imported here so that an installation
# without it fails at start, not at a camera's first multipart post.
import python_multipart  # noqa: F401
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anpr_stream.evidence import EvidenceStore
from anpr_stream.gateway.adapters.registry import adapter_for, formats
from anpr_stream.gateway.delivery import Delivery
from anpr_stream.gateway.model import Part, Payload, PayloadError
from anpr_stream.gateway.sources import Source, SourceError, load_sources
from anpr_stream.gateway.spool import SpoolFull
from anpr_stream.gateway.translate import prepare

log = logging.getLogger(__name__)

MAX_BODY = 32 * 1024 * 1024  # a multipart post with an overview image and a plate crop, with room
MAX_PARTS = 16
RETRY_AFTER_SECONDS = 30
RELOAD_SECONDS = 1.0


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.posts = Counter("anpr_gateway_messages_total", "messages received, by source and outcome",
                             ["source", "outcome"], registry=self.registry)  # fmt: skip
        self.reads = Counter("anpr_gateway_reads_total", "reads accepted, by source and where they were made durable",
                             ["source", "delivery"], registry=self.registry)  # fmt: skip
        self.spool_bytes = Gauge("anpr_gateway_spool_bytes", "bytes in the spool not yet delivered to Kafka",
                                 registry=self.registry)  # fmt: skip
        self.seconds = Histogram("anpr_gateway_message_seconds", "from the request to its reads being durable",
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=self.registry)  # fmt: skip


@dataclass
class Outcome:
    status: int
    body: dict[str, object]
    headers: dict[str, str] | None = None


class Gateway:
    """The handling common to HTTP and MQTT: adapt, prepare, store the images, deliver."""

    def __init__(
        self,
        sources_file: Path,
        delivery: Delivery,
        evidence: EvidenceStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sources_file = sources_file
        self.delivery = delivery
        self.evidence = evidence
        self.metrics = GatewayMetrics()
        self._clock = clock
        self._sources: dict[str, Source] = load_sources(sources_file, formats())
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> float:
        try:
            return self.sources_file.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def sources(self) -> dict[str, Source]:
        """The sources file as last read; re-read when it changed (a source added with the CLI needs no restart).
        A file that became invalid keeps the previous sources and says so in the log."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_SECONDS:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                try:
                    self._sources = load_sources(self.sources_file, formats())
                    self._mtime = mtime
                except SourceError as exc:
                    log.error("sources file not reloaded, the previous sources stay in force: %s", exc)
        return self._sources

    def authorise(self, source_id: str, token: str | None) -> Source | Outcome:
        source = self.sources().get(source_id)
        # An unknown source and a wrong token get the same answer: the sources are not enumerable.
        valid = source.token_valid(token, self._clock()) if source is not None and token else None
        if source is None or valid is None:
            self.metrics.posts.labels("unauthenticated", "refused").inc()
            return Outcome(401, {"detail": "missing or invalid source token"}, {"WWW-Authenticate": "Bearer"})
        if not valid:
            self.metrics.posts.labels(source.source_id, "refused").inc()
            return Outcome(401, {"detail": "the source token has expired: issue a new one (anpr-stream gateway "
                                 "source rotate)"}, {"WWW-Authenticate": "Bearer"})  # fmt: skip
        return source

    async def handle(self, source: Source, payload: Payload) -> Outcome:
        started = time.perf_counter()
        label = source.source_id
        try:
            format_name, adapt = adapter_for(source.format, payload)
            adapted = adapt(payload)
            if not adapted.reads:
                self.metrics.posts.labels(label, "ignored").inc()
                return Outcome(200, {"accepted": 0, "ignored": adapted.ignored or "no plate read in the message"})
            prepared = prepare(adapted, source, format_name, payload.body)
        except PayloadError as exc:
            self.metrics.posts.labels(label, "invalid").inc()
            return Outcome(400, {"detail": str(exc)})
        images = [image for p in prepared for image in p.images]
        if images:
            await asyncio.to_thread(self._store_images, images)
        try:
            delivered = await self.delivery.deliver([(p.key, p.value) for p in prepared])
        except SpoolFull as exc:
            self.metrics.posts.labels(label, "spool_full").inc()
            return Outcome(503, {"detail": f"Kafka is unavailable and the spool is full ({exc}); retry later"},
                           {"Retry-After": str(RETRY_AFTER_SECONDS)})  # fmt: skip
        finally:
            self.metrics.spool_bytes.set(self.delivery.spool.pending_bytes)
        self.metrics.posts.labels(label, "accepted").inc()
        self.metrics.reads.labels(label, delivered).inc(len(prepared))
        self.metrics.seconds.observe(time.perf_counter() - started)
        return Outcome(
            200, {"accepted": len(prepared), "delivery": delivered, "read_ids": [p.read_id for p in prepared]}
        )

    def _store_images(self, images: list[tuple[str, bytes]]) -> None:
        for ref, data in images:
            self.evidence.put(ref, data)


def _token(request: Request) -> str | None:
    """`Authorization: Bearer <token>` (or `Token <token>`, Plate Recognizer's webhook header), `X-Api-Key`, or a
    `token` query parameter for systems that can only be given a URL (use HTTPS: the URL then holds a secret)."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and credential.strip():
        return credential.strip()
    return request.headers.get("x-api-key") or request.query_params.get("token") or None


async def _payload(request: Request) -> Payload | Outcome:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        return Outcome(413, {"detail": f"the message is larger than {MAX_BODY // (1024 * 1024)} MB"})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return Outcome(413, {"detail": f"the message is larger than {MAX_BODY // (1024 * 1024)} MB"})
        chunks.append(chunk)
    body = b"".join(chunks)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in ("authorization", "x-api-key")}
    parts: dict[str, Part] = {}
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=MAX_PARTS, max_fields=MAX_PARTS, max_part_size=MAX_BODY)
        except Exception as exc:
            return Outcome(400, {"detail": f"the multipart body cannot be parsed: {exc}"[:300]})
        for name, value in form.multi_items():
            if name in parts:
                continue
            if isinstance(value, UploadFile):
                data = await value.read()
                parts[name] = Part(name, data, value.content_type or "application/octet-stream", value.filename)
            else:
                parts[name] = Part(name, value.encode(), "text/plain")
        await form.close()
    return Payload(body=body, content_type=content_type, headers=headers, parts=parts)


def _answer(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body, status_code=outcome.status, headers=outcome.headers)


def build_app(gateway: Gateway) -> Starlette:
    async def ingest(request: Request) -> Response:
        source = gateway.authorise(request.path_params["source"], _token(request))
        if isinstance(source, Outcome):
            return _answer(source)
        payload = await _payload(request)
        if isinstance(payload, Outcome):
            gateway.metrics.posts.labels(source.source_id, "invalid").inc()
            return _answer(payload)
        return _answer(await gateway.handle(source, payload))

    async def health(request: Request) -> Response:
        spool = gateway.delivery.spool
        status = {"kafka": "up" if gateway.delivery.kafka_up else "down", "spool_bytes": spool.pending_bytes,
                  "spool_max_bytes": spool.max_bytes}  # fmt: skip
        return JSONResponse(status)

    async def metrics(request: Request) -> Response:
        gateway.metrics.spool_bytes.set(gateway.delivery.spool.pending_bytes)
        return Response(generate_latest(gateway.metrics.registry), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.delivery.start()
        try:
            yield
        finally:
            await gateway.delivery.stop()

    return Starlette(
        routes=[
            Route("/v1/ingest/{source}", ingest, methods=["POST", "PUT"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
