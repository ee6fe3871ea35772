"""`anpr-stream worker` and `anpr-stream migrate`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.config import ConfigError, Settings
from anpr_stream.sinks.migrate import migrate


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run the stream worker: reads -> match -> hits topic + PostgreSQL",
        description="Run the stream worker. Configuration comes from ANPR_* environment variables (see README).",
    )
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(handler=_worker)
    mig = subparsers.add_parser("migrate", help="create or upgrade the database schema (safe to run twice)")
    mig.set_defaults(handler=_migrate)


def _settings() -> Settings | None:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"anpr-stream: {exc}", file=sys.stderr)
        return None


def _worker(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    from anpr_stream.stream.worker import run_worker

    return run_worker(settings, loglevel=args.loglevel)


def _migrate(args: argparse.Namespace) -> int:
    url = database_url()  # migrate needs the database only, not Kafka
    if url is None:
        return 2
    applied = on_connection(url, migrate)
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    print(f"applied: {', '.join(names)}" if names else "schema is up to date")
    return 0
