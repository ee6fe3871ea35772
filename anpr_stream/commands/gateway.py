"""`anpr-stream gateway`: serve the camera gateway (HTTP(S) and MQTT), and manage its sources (add, rotate, list)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anpr_stream import config
from anpr_stream.commands.api import is_loopback, plain_http_refusal, server_tls_context, tls_files
from anpr_stream.config import ConfigError

EXIT_OK = 0
EXIT_USAGE = 2
MQTT_URL_ENV = "ANPR_GATEWAY_MQTT_URL"

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    gateway = subparsers.add_parser(
        "gateway",
        help="the camera gateway: vendor LPR payloads in, reads to Kafka (docs/gateway.md)",
        description="Accept reads as LPR systems send them (OpenALPR/Rekor, Plate Recognizer, Genetec, Survision, "
        "AXIS, Verkada, Frigate over MQTT, our own JSON) and produce them to the reads topic; nothing acknowledged "
        "is lost while Kafka is away (the spool). See docs/gateway.md.",
    )
    commands = gateway.add_subparsers(dest="gateway_command", required=True)
    serve = commands.add_parser("serve", help="serve the gateway")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8090, help="listen port (default 8090)")
    serve.add_argument("--tls-cert", metavar="PEM", help="server certificate (env ANPR_GATEWAY_TLS_CERT)")
    serve.add_argument("--tls-key", metavar="PEM", help="its private key (env ANPR_GATEWAY_TLS_KEY)")
    serve.add_argument("--tls-key-password-file", metavar="FILE", help="file holding the key's password")
    serve.add_argument("--insecure-http", action="store_true", help="serve plain HTTP on a non-loopback address")
    serve.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(handler=_serve)

    source = commands.add_parser("source", help="add, rotate or list the gateway's sources")
    source_commands = source.add_subparsers(dest="source_command", required=True)
    add = source_commands.add_parser("add", help="add a source and print its token (shown once)")
    add.add_argument("source_id", help="the source's id (letters, digits, . _ -), part of its URL")
    add.add_argument("--format", required=True, help="the payload format (`anpr-stream gateway formats`) or auto")
    add.add_argument("--camera", action="append", default=[], metavar="VENDOR=CAMERA_ID",
                     help="map a vendor camera name, id or serial to our camera id (repeatable)")  # fmt: skip
    add.add_argument("--default-camera", metavar="CAMERA_ID", help="camera id of payloads that name no camera")
    add.add_argument("--timezone", default="Europe/Brussels", help="IANA zone of times without an offset")
    add.add_argument("--unknown-cameras", choices=["refuse", "mark"], default="refuse",
                     help="refuse (400) a read of an unmapped camera, or accept it marked unknown")  # fmt: skip
    add.add_argument("--mqtt-topic", action="append", default=[], help="MQTT topic filter of this source")
    add.add_argument("--token-days", type=int, default=365, help="the token's lifetime in days (default 365)")
    add.add_argument("--sources", type=Path, help="the sources file (default ANPR_GATEWAY_SOURCES)")
    add.set_defaults(handler=_add)
    rotate = source_commands.add_parser("rotate", help="issue a new token for a source and print it")
    rotate.add_argument("source_id")
    rotate.add_argument("--token-days", type=int, default=365)
    rotate.add_argument("--keep-old", action="store_true", help="the previous tokens stay valid until they expire")
    rotate.add_argument("--sources", type=Path)
    rotate.set_defaults(handler=_rotate)
    listing = source_commands.add_parser("list", help="list the sources (never their tokens)")
    listing.add_argument("--sources", type=Path)
    listing.set_defaults(handler=_list)
    formats = commands.add_parser("formats", help="list the payload formats the gateway reads")
    formats.set_defaults(handler=_formats)


def _sources_path(given: Path | None) -> Path:
    if given is not None:
        return given
    return Path(config.require("ANPR_GATEWAY_SOURCES"))


def _fail(message: str) -> int:
    print(f"anpr-stream gateway: {message}", file=sys.stderr)
    return EXIT_USAGE


def _add(args: argparse.Namespace) -> int:
    from anpr_stream.gateway.adapters.registry import formats
    from anpr_stream.gateway.sources import (
        Source,
        SourceError,
        load_sources,
        save_sources,
        source_from_mapping,
        source_to_mapping,
        with_new_token,
    )

    try:
        path = _sources_path(args.sources)
        sources = load_sources(path, formats())
        if args.source_id in sources:
            return _fail(f"source {args.source_id!r} exists: `gateway source rotate` issues a new token")
        cameras = {}
        for item in args.camera:
            vendor, sep, ours = item.partition("=")
            if not sep or not vendor or not ours:
                return _fail(f"--camera {item!r}: expected VENDOR=CAMERA_ID")
            cameras[vendor] = ours
        draft = {"id": args.source_id, "format": args.format, "cameras": cameras, "camera": args.default_camera,
                 "timezone": args.timezone, "unknown_cameras": args.unknown_cameras,
                 "mqtt_topics": args.mqtt_topic}  # fmt: skip
        source: Source = source_from_mapping(draft, formats())
        if not 1 <= args.token_days <= 3650:
            return _fail("--token-days must be 1..3650")
        source, token = with_new_token(source, datetime.now(UTC), args.token_days, keep_old=False)
        sources[source.source_id] = source
        save_sources(path, sources)
    except (SourceError, ConfigError, OSError) as exc:
        return _fail(str(exc))
    expires = source.tokens[-1].expires.isoformat()
    print(f"source {source.source_id} added ({source_to_mapping(source)['format']}); token (shown once, expires "
          f"{expires}):\n{token}")  # fmt: skip
    return EXIT_OK


def _rotate(args: argparse.Namespace) -> int:
    from anpr_stream.gateway.adapters.registry import formats
    from anpr_stream.gateway.sources import SourceError, load_sources, save_sources, with_new_token

    try:
        path = _sources_path(args.sources)
        sources = load_sources(path, formats())
        if args.source_id not in sources:
            return _fail(f"no source {args.source_id!r} in {path}")
        source, token = with_new_token(sources[args.source_id], datetime.now(UTC), args.token_days,
                                       keep_old=args.keep_old)  # fmt: skip
        sources[source.source_id] = source
        save_sources(path, sources)
    except (SourceError, ConfigError, OSError) as exc:
        return _fail(str(exc))
    print(f"new token for {source.source_id} (expires {source.tokens[-1].expires.isoformat()}):\n{token}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from anpr_stream.gateway.adapters.registry import formats
    from anpr_stream.gateway.sources import SourceError, load_sources

    try:
        sources = load_sources(_sources_path(args.sources), formats())
    except (SourceError, ConfigError, OSError) as exc:
        return _fail(str(exc))
    now = datetime.now(UTC)
    for s in sources.values():
        valid = sum(t.expires > now for t in s.tokens)
        topics = ",".join(s.mqtt_topics) or "-"
        print(f"{s.source_id}\t{s.format}\tcameras={len(s.cameras)}\tdefault={s.camera or '-'}\ttz={s.timezone}\t"
              f"unknown={s.unknown_cameras}\ttokens valid={valid}/{len(s.tokens)}\tmqtt={topics}")  # fmt: skip
    return EXIT_OK


def _formats(args: argparse.Namespace) -> int:
    from anpr_stream.gateway.adapters.registry import formats

    for name in formats():
        print(name)
    return EXIT_OK


def producer_factory(env: dict[str, str] | None = None) -> Any:
    from aiokafka import AIOKafkaProducer

    bootstrap = config.require("ANPR_KAFKA_BOOTSTRAP", env)
    security = config.kafka_security(env)
    timeout_ms = int(float(config.value("ANPR_GATEWAY_SEND_TIMEOUT_SECONDS", env)) * 1000)

    def make() -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **security.aiokafka_options(),
            client_id=f"anpr-gateway-{socket.gethostname()}",
            # A read is acknowledged to the camera only when every in-sync replica has it, and a retried send is
            # written once (the idempotent producer).
            acks="all",
            enable_idempotence=True,
            linger_ms=1,
            request_timeout_ms=max(timeout_ms, 1000),
            retry_backoff_ms=50,
        )

    return make


def build_gateway(env: dict[str, str] | None = None) -> Any:
    from anpr_stream.evidence import EvidenceStore
    from anpr_stream.gateway.delivery import Delivery
    from anpr_stream.gateway.server import Gateway
    from anpr_stream.gateway.spool import Spool

    spool = Spool(Path(config.require("ANPR_GATEWAY_SPOOL_DIR", env)),
                  int(config.value("ANPR_GATEWAY_SPOOL_MAX_BYTES", env)))  # fmt: skip
    topic = config.value("ANPR_TOPIC_READS", env)
    delivery = Delivery(producer_factory(env), topic, spool,
                        send_timeout=float(config.value("ANPR_GATEWAY_SEND_TIMEOUT_SECONDS", env)))  # fmt: skip
    return Gateway(Path(config.require("ANPR_GATEWAY_SOURCES", env)), delivery, EvidenceStore.from_settings(env))


async def _mqtt(gateway: Any, url: str, stop: asyncio.Event) -> None:
    from anpr_stream.gateway import mqtt
    from anpr_stream.gateway.model import Payload, PayloadError

    subscriptions = [
        mqtt.Subscription(topic, s.source_id) for s in gateway.sources().values() for topic in s.mqtt_topics
    ]
    if not subscriptions:
        return

    async def handle(source_id: str, payload: Payload) -> None:
        source = gateway.sources().get(source_id)
        if source is None:
            raise PayloadError(f"source {source_id!r} is no longer in the sources file")
        outcome = await gateway.handle(source, payload)
        if outcome.status == 400:
            raise PayloadError(str(outcome.body.get("detail")))
        if outcome.status >= 500:
            raise RuntimeError(f"not delivered: {outcome.body.get('detail')}")  # not acked: redelivered later

    await mqtt.run(url, subscriptions, handle, client_id=f"anpr-gateway-{socket.gethostname()}", stop=stop,
                   ca_file=config.value("ANPR_GATEWAY_MQTT_CA_FILE"))  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from anpr_stream.gateway.server import build_app
    from anpr_stream.gateway.sources import SourceError

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for option, env in (("tls_cert", "ANPR_GATEWAY_TLS_CERT"), ("tls_key", "ANPR_GATEWAY_TLS_KEY")):
        if getattr(args, option) is None:
            setattr(args, option, config.value(env))
    try:
        files = tls_files(args, {})
    except ValueError as exc:
        return _fail(str(exc))
    refusal = plain_http_refusal(args.host, tls=files is not None, insecure_http=args.insecure_http)
    if refusal is not None:
        return _fail(refusal.replace("ANPR_API_", "ANPR_GATEWAY_"))
    tls: dict[str, Any] = {}
    if files is not None:
        try:
            context = server_tls_context(files)
        except Exception as exc:
            return _fail(f"cannot load the TLS certificate {files.cert} and key {files.key}: {exc}")
        tls = {"ssl_certfile": files.cert, "ssl_keyfile": files.key, "ssl_context_factory": lambda *_: context}
    elif not is_loopback(args.host):
        print(f"anpr-stream gateway: WARNING: --insecure-http: serving PLAIN HTTP on {args.host}:{args.port}",
              file=sys.stderr)  # fmt: skip
    try:
        gateway = build_gateway()
    except (ConfigError, SourceError, OSError) as exc:
        return _fail(str(exc))
    server = uvicorn.Server(uvicorn.Config(build_app(gateway), host=args.host, port=args.port,
                                           log_level=args.loglevel, access_log=False, **tls))  # fmt: skip

    async def main() -> None:
        stop = asyncio.Event()
        url = config.value(MQTT_URL_ENV)
        tasks: list[asyncio.Task[None]] = []
        if url:
            tasks.append(asyncio.create_task(_mqtt(gateway, url, stop)))
        try:
            await server.serve()
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 10)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return EXIT_OK


__all__: Sequence[str] = ["register"]
