"""`anpr-stream dpo report`: the DPO's report (JSON or CSV) from the database, audited like an API request."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from anpr_stream import config
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.commands.users import _operator
from anpr_stream.core.rfc3339 import parse_rfc3339
from anpr_stream.dpo.export import SECTIONS, to_csv
from anpr_stream.dpo.report import DpoReport, build_report
from anpr_stream.retention.check import kafka_settings

DEFAULT_WINDOW = timedelta(days=30)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    dpo = subparsers.add_parser("dpo", help="the data protection officer's report")
    commands = dpo.add_subparsers(dest="dpo_command", metavar="COMMAND", required=True)
    report = commands.add_parser(
        "report",
        help="data held against the retention policy, purges, requests, denials, audit chain, authorisations",
        description="Build the DPO report (the same as GET /v1/dpo/report): per data class the rows held, the "
        "oldest record against the policy (violations named), day partitions; purge history; requests per user, "
        "purpose and endpoint; denied requests; the audit chain's state; the retention check; requests into a "
        "restricted tier with their authorisation, requests under authorisations revoked after them, authorisations "
        "never used. The run is recorded in the audit log "
        "(actor cli:<operator>). Exit 0, or 1 when a retention violation or a broken audit chain was found (the report "
        "is written either way). The policy comes from ANPR_RETENTION and its overrides.",
    )
    report.add_argument("--format", choices=["json", "csv"], default="json")
    report.add_argument("--section", choices=SECTIONS, help="csv only: one section alone, with its own columns")
    report.add_argument("--since", metavar="RFC3339", help="requests and purges from (default: 30 days before --until)")
    report.add_argument("--until", metavar="RFC3339", help="requests and purges until (default: now)")
    report.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        policy = config.retention_policy()
        until = parse_rfc3339(args.until) if args.until else now
        since = parse_rfc3339(args.since) if args.since else until - DEFAULT_WINDOW
        if until <= since:
            raise ValueError(f"--until ({until.isoformat()}) is not after --since ({since.isoformat()})")
        if args.section and args.format != "csv":
            raise ValueError("--section selects a CSV section: use it with --format csv")
    except ValueError as exc:
        print(f"anpr-stream dpo report: {exc}", file=sys.stderr)
        return 2
    url = database_url()
    if url is None:
        return 2
    parameters = {"since": since.isoformat(), "until": until.isoformat(), "format": args.format,
                  "section": args.section, "output": args.output}  # fmt: skip

    async def work(conn: asyncpg.Connection) -> DpoReport:
        built = await build_report(conn, policy, now, since, until, kafka=kafka_settings())
        record = AuditRecord(actor=f"cli:{_operator()}", role="cli", endpoint="dpo.report", allowed=True,
                             parameters=parameters, result_count=built.row_count)  # fmt: skip
        await append_audit(conn, record)
        return built

    built = on_connection(url, work)
    text = to_csv(built, args.section) if args.format == "csv" else built.model_dump_json(indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"dpo report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for violation in built.violations:
        print(f"violation: {violation}", file=sys.stderr)
    if not built.audit_chain.intact:
        print(f"audit log BROKEN: {built.audit_chain.broken}", file=sys.stderr)
    return 1 if built.violations or not built.audit_chain.intact else 0
