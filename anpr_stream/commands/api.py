"""`anpr-stream api`: serve the query API (and the dispatch console) with uvicorn."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from anpr_stream.config import ConfigError, Settings


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    api = subparsers.add_parser(
        "api",
        help="serve the query API (OpenAPI at /openapi.json, docs at /docs)",
        description="Serve the investigations, hits and DPO API over HTTP. Settings come from the environment "
        "(ANPR_DATABASE_URL, ANPR_KAFKA_BOOTSTRAP, ANPR_RETENTION, ...).",
    )
    api.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    api.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    api.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from anpr_stream.api.server import build_app

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"anpr-stream api: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(build_app(settings), host=args.host, port=args.port, log_level=args.loglevel, access_log=False)
    return 0
