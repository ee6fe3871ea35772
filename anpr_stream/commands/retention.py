"""`anpr-stream retention purge`: remove what is past the retention horizons and report it."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg

from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.core.rfc3339 import parse_rfc3339
from anpr_stream.retention.policy import policy_from_env
from anpr_stream.retention.purge import PurgeReport, may_purge, purge


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    retention = subparsers.add_parser("retention", help="GDPR retention of passages and hits")
    commands = retention.add_subparsers(dest="retention_command", metavar="COMMAND", required=True)
    purge_parser = commands.add_parser(
        "purge",
        help="drop day partitions, delete hits and outcomes past the retention horizons (safe to run twice)",
        description="Drop whole day partitions of passages whose day is entirely past the passages horizon, delete "
        "hits past the hits horizon and hit outcomes past theirs (or of purged hits), record the run in purge_log "
        "and report what was removed. Runs as the schema owner (not the service login). The policy comes from "
        "ANPR_RETENTION and the ANPR_RETENTION_*_DAYS overrides.",
    )
    purge_parser.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    purge_parser.add_argument("--now", metavar="RFC3339", help="compute the horizons as of this instant (default: now)")
    purge_parser.set_defaults(handler=_purge)


def _purge(args: argparse.Namespace) -> int:
    try:
        policy = policy_from_env(os.environ)
        now = parse_rfc3339(args.now) if args.now else datetime.now(UTC)
    except ValueError as exc:
        print(f"anpr-stream: {exc}", file=sys.stderr)
        return 2
    url = database_url()
    if url is None:
        return 2

    async def work(conn: asyncpg.Connection) -> PurgeReport | None:
        if not args.dry_run and not await may_purge(conn):
            return None
        return await purge(conn, policy, now, dry_run=args.dry_run)

    report = on_connection(url, work)
    if report is None:
        print("anpr-stream retention purge: the connected role does not own passages; the purge runs as the "
              "schema owner (or a role that is a member of it), not as the service login", file=sys.stderr)  # fmt: skip
        return 1
    print("\n".join(report.lines()))
    return 0
