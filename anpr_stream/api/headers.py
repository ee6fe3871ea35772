"""Response headers every answer of the API carries, and whether the interactive docs are served.

API answers (`/v1/...`) hold camera data or who asked for it: never stored by a browser or a proxy
(`Cache-Control: no-store`, whatever a route set). Every response also gets `nosniff`, no referrer and no framing; a
route's own value of those (the console's, with its Content-Security-Policy) is kept. The interactive docs (`/docs`,
`/redoc`) load Swagger UI and ReDoc from a CDN, so they are off unless `ANPR_API_DOCS=1` (development);
`/openapi.json` is always served. Over HTTPS (the API's own TLS, or a trusted proxy's `X-Forwarded-Proto: https`)
every answer also carries `Strict-Transport-Security`: a browser that saw it once never falls back to plain HTTP for
this host. It is not sent over plain HTTP, where a browser ignores it anyway and it would only mislead a reader."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_ENV = "ANPR_API_DOCS"
API_PREFIX = "/v1/"
DEFAULTS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# One year, the host only: other services under the same domain may still serve plain HTTP (no includeSubDomains).
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def docs_enabled(environ: Mapping[str, str]) -> bool:
    return environ.get(DOCS_ENV, "").strip().lower() in ("1", "true", "yes")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class SecurityHeaders:
    """Plain ASGI middleware: it only edits the response's start message, so the live stream and its background
    task run exactly as without it (BaseHTTPMiddleware would relay every body chunk through its own task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith(API_PREFIX)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULTS.items():
                    headers.setdefault(name, value)
                if https:
                    headers[HSTS[0]] = HSTS[1]
                if api or _is_json(headers.get("content-type", "")):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
