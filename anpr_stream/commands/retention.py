"""`anpr-stream retention purge | check | expire-watchlist`: remove what is past the retention horizons from
PostgreSQL, check every topic and table against them, retract expired watchlist entries from Kafka."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError

from anpr_stream import config
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.commands.users import _by_option, operator_of
from anpr_stream.config import ConfigError, Settings
from anpr_stream.core.rfc3339 import parse_rfc3339
from anpr_stream.evidence import EvidenceStore
from anpr_stream.retention.assessment import RetentionCheck, check_lines
from anpr_stream.retention.purge import PurgeReport, may_purge, purge
from anpr_stream.sinks.postgres import index_closed_days

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE = 0, 1, 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    retention = subparsers.add_parser("retention", help="GDPR retention of passages and hits")
    commands = retention.add_subparsers(dest="retention_command", metavar="COMMAND", required=True)
    purge_parser = commands.add_parser(
        "purge",
        help="drop day partitions, delete hits and outcomes past the retention horizons (safe to run twice)",
        description="Drop whole day partitions of passages whose day is entirely past the passages horizon, delete "
        "hits past the hits horizon and hit outcomes past theirs (or of purged hits), remove the evidence store's "
        "images of the same days (ANPR_EVIDENCE_DIR), record the run in purge_log and report what was removed. "
        "Runs as the schema owner (not the service login), where the evidence store is mounted. The policy comes "
        "from ANPR_RETENTION and the ANPR_RETENTION_*_DAYS overrides.",
    )
    purge_parser.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    purge_parser.add_argument("--now", metavar="RFC3339", help="compute the horizons as of this instant (default: now)")
    _by_option(purge_parser)
    purge_parser.set_defaults(handler=_purge)
    check = commands.add_parser(
        "check",
        help="every topic and table holding data past its retention horizon (exit 1 when any)",
        description="Report every topic (cleanup policy, retention.ms, segment.ms, the first record's timestamp per "
        "partition; for the watchlist its compaction settings and entries whose validity ended) and every table "
        "(oldest passage, hit, hit outcome, audit row) against the policy, one line each: ok, VIOLATION or NOT "
        "CHECKED. Data past its horizon by less than a day is due for deletion, not a violation. Exit 0 when "
        "nothing is held past its horizon, 1 on any violation, 2 when a store could not be checked (or usage). "
        "Reads only: runs as the service login or the owner.",
    )
    check.add_argument("--now", metavar="RFC3339", help="judge as of this instant (default: now)")
    check.add_argument("--json", action="store_true", help="the result as one JSON object instead of lines")
    check.set_defaults(handler=_check)
    expire = commands.add_parser(
        "expire-watchlist",
        help="tombstone watchlist entries whose validity ended, so that compaction removes them",
        description="Read the compacted watchlist topic whole and publish a tombstone for every entry whose "
        "valid_until is more than ANPR_WATCHLIST_EXPIRY_GRACE_HOURS (24) in the past (late reads may still hit it "
        "until then), then a marker record that lets the topic's active segment roll (compaction never touches "
        "the active segment). Prints entry ids, lists (covert entries as 'covert') and validity, never plates. "
        "Run it on the same schedule as `retention purge`.",
    )
    expire.add_argument("--dry-run", action="store_true", help="say what would be retracted, publish nothing")
    expire.add_argument("--now", metavar="RFC3339", help="judge validity as of this instant (default: now)")
    expire.set_defaults(handler=_expire)


def _purge(args: argparse.Namespace) -> int:
    try:
        policy = config.retention_policy()
        now = parse_rfc3339(args.now) if args.now else datetime.now(UTC)
        by = operator_of(args)
        evidence = EvidenceStore.from_settings()
    except ValueError as exc:  # UserError (--by) is one
        print(f"anpr-stream: {exc}", file=sys.stderr)
        return 2
    url = database_url()
    if url is None:
        return 2

    async def work(conn: asyncpg.Connection) -> PurgeReport | None:
        if not args.dry_run and not await may_purge(conn):
            return None
        if not args.dry_run:
            # The days that ended get their trigram indexes (migration 0014), whether or not a worker runs its loop.
            await index_closed_days(conn, datetime.now(UTC))
        return await purge(conn, policy, now, dry_run=args.dry_run, actor=by.name, role=by.role, evidence=evidence)

    report = on_connection(url, work)
    if report is None:
        print("anpr-stream retention purge: the connected role does not own passages; the purge runs as the "
              "schema owner (or a role that is a member of it), not as the service login", file=sys.stderr)  # fmt: skip
        return 1
    print("\n".join(report.lines()))
    return 0


def _settings(command: str, now_text: str | None) -> tuple[Settings, datetime] | None:
    try:
        return Settings.from_env(), parse_rfc3339(now_text) if now_text else datetime.now(UTC)
    except (ConfigError, ValueError) as exc:
        print(f"anpr-stream retention {command}: {exc}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    from anpr_stream.retention.check import retention_check  # aiokafka: imported by the commands that use it

    loaded = _settings("check", args.now)
    if loaded is None:
        return EXIT_USAGE
    settings, now = loaded

    async def run() -> RetentionCheck:
        try:
            conn = await asyncpg.connect(settings.database_url)
        except (OSError, asyncpg.PostgresError) as exc:
            result = await retention_check(None, settings.retention, now, settings)
            return result.model_copy(update={"database_error": f"cannot connect: {type(exc).__name__}: {exc}"})
        try:
            return await retention_check(conn, settings.retention, now, settings)
        finally:
            await conn.close()

    result = asyncio.run(run())
    print(result.model_dump_json(indent=2) if args.json else "\n".join(check_lines(result)))
    return result.exit_code


def _expire(args: argparse.Namespace) -> int:
    from anpr_stream.stream.watchlist_expiry import expire_watchlist

    loaded = _settings("expire-watchlist", args.now)
    if loaded is None:
        return EXIT_USAGE
    settings, now = loaded
    try:
        run = asyncio.run(expire_watchlist(settings, now, dry_run=args.dry_run))
    except (KafkaError, OSError, RuntimeError) as exc:
        print(f"anpr-stream retention expire-watchlist: Kafka {settings.kafka_bootstrap}: {type(exc).__name__}: "
              f"{exc}", file=sys.stderr)  # fmt: skip
        return EXIT_VIOLATION
    print("\n".join(run.lines()))
    return EXIT_OK
