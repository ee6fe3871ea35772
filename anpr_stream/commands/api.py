"""`anpr-stream api`: serve the query API (and the dispatch console) with uvicorn, over HTTPS when given a
certificate; plain HTTP only on loopback (behind a TLS-terminating proxy) unless `--insecure-http` says otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anpr_stream import config
from anpr_stream.config import ConfigError, Settings

TLS_CERT_ENV = "ANPR_API_TLS_CERT"
TLS_KEY_ENV = "ANPR_API_TLS_KEY"
TLS_KEY_PASSWORD_FILE_ENV = "ANPR_API_TLS_KEY_PASSWORD_FILE"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    api = subparsers.add_parser(
        "api",
        help="serve the query API (OpenAPI at /openapi.json, docs at /docs)",
        description="Serve the investigations, hits and DPO API, over HTTPS with --tls-cert and --tls-key. Plain "
        "HTTP is served on a loopback address only (for a TLS-terminating proxy on the same host) unless "
        "--insecure-http is given. Settings come from the environment (ANPR_DATABASE_URL, ANPR_KAFKA_BOOTSTRAP, "
        f"ANPR_RETENTION, {TLS_CERT_ENV}, {TLS_KEY_ENV}, {TLS_KEY_PASSWORD_FILE_ENV}, ...). See docs/tls.md.",
    )
    api.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    api.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    api.add_argument(
        "--tls-cert", metavar="PEM", help=f"server certificate (chain) to serve HTTPS with (env {TLS_CERT_ENV})"
    )
    api.add_argument("--tls-key", metavar="PEM", help=f"the certificate's private key (env {TLS_KEY_ENV})")
    api.add_argument(
        "--tls-key-password-file",
        metavar="FILE",
        help=f"file holding the private key's password, when it is encrypted (env {TLS_KEY_PASSWORD_FILE_ENV})",
    )
    api.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP on a non-loopback address (tokens and plates cross the network unencrypted)",
    )
    api.set_defaults(handler=_serve)


@dataclass(frozen=True)
class TlsFiles:
    cert: str
    key: str
    password_file: str | None = None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (also IPv4-mapped) and the name `localhost`; any other name may resolve anywhere."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def plain_http_refusal(host: str, tls: bool, insecure_http: bool) -> str | None:
    """Why serving on `host` is refused, or None: plain HTTP beyond loopback needs the explicit flag."""
    if tls or insecure_http or is_loopback(host):
        return None
    return (
        f"refusing to serve plain HTTP on {host!r}, which is not a loopback address: bearer tokens, plates and case "
        "references would cross the network unencrypted. Give --tls-cert and --tls-key (or "
        f"{TLS_CERT_ENV} and {TLS_KEY_ENV}), or bind 127.0.0.1 behind a TLS-terminating proxy, or pass "
        "--insecure-http to accept the risk. See docs/tls.md."
    )


def tls_files(args: argparse.Namespace, environ: Mapping[str, str]) -> TlsFiles | None:
    """The certificate and key from the options, else the environment; both or neither (ValueError)."""

    def pick(value: str | None, env: str) -> str | None:
        return value or config.value(env, environ)

    cert = pick(args.tls_cert, TLS_CERT_ENV)
    key = pick(args.tls_key, TLS_KEY_ENV)
    password_file = pick(args.tls_key_password_file, TLS_KEY_PASSWORD_FILE_ENV)
    if cert is None and key is None:
        if password_file is not None:
            raise ValueError("a key password file was given without --tls-cert and --tls-key")
        return None
    if cert is None or key is None:
        raise ValueError("HTTPS needs both a certificate (--tls-cert) and its key (--tls-key)")
    return TlsFiles(cert, key, password_file)


def server_tls_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2 or newer with Python's default (forward-secret, AEAD-first) ciphers. Loaded here, before uvicorn
    starts, so that a wrong path or password is a clear message; an encrypted key without a password fails instead
    of prompting on a terminal."""
    password = b""
    if files.password_file is not None:
        password = Path(files.password_file).read_bytes().rstrip(b"\r\n")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key, password=lambda: password)
    return context


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from anpr_stream.api.server import build_app

    try:
        files = tls_files(args, os.environ)
    except ValueError as exc:
        print(f"anpr-stream api: {exc}", file=sys.stderr)
        return 2
    refusal = plain_http_refusal(args.host, tls=files is not None, insecure_http=args.insecure_http)
    if refusal is not None:
        print(f"anpr-stream api: {refusal}", file=sys.stderr)
        return 2
    tls: dict[str, Any] = {}
    if files is not None:
        try:
            context = server_tls_context(files)
        except (OSError, ssl.SSLError) as exc:
            print(f"anpr-stream api: cannot load the TLS certificate {files.cert} and key {files.key}: {exc}",
                  file=sys.stderr)  # fmt: skip
            return 2
        factory: Callable[[uvicorn.Config, Callable[[], ssl.SSLContext]], ssl.SSLContext] = lambda *_: context  # noqa: E731
        # The files name the server as https in uvicorn's own log line; the context itself is the one loaded above.
        tls = {"ssl_certfile": files.cert, "ssl_keyfile": files.key, "ssl_context_factory": factory}
    elif not is_loopback(args.host):
        print(
            f"anpr-stream api: WARNING: --insecure-http: serving PLAIN HTTP on {args.host}:{args.port}. Anyone on "
            "the network path can read bearer tokens, plates and case references, and alter answers. Use "
            "--tls-cert/--tls-key or a TLS-terminating proxy in production.",
            file=sys.stderr,
        )
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"anpr-stream api: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level=args.loglevel, access_log=False, **tls)
    return 0
