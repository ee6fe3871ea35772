"""`anpr-stream audit verify`: walk the audit log's hash chain and name the first altered, removed or inserted row."""

from __future__ import annotations

import argparse
from typing import Any

from anpr_stream.audit.log import verify_audit
from anpr_stream.commands.database import database_url, on_connection

EXIT_INTACT = 0
EXIT_BROKEN = 1


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    audit = subparsers.add_parser("audit", help="the append-only audit log")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check the audit log's hash chain (exit 0 intact, 1 broken)",
        description="Walk the audit log in id order, recompute every row's hash and its link to the row before, "
        "and report the first row that was altered, removed or inserted.",
    )
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    result = on_connection(url, verify_audit)
    if result.broken is not None:
        print(f"audit log BROKEN: {result.broken}")
        return EXIT_BROKEN
    print(f"audit log intact: {result.rows} rows" + (f", last id {result.last_id}" if result.last_id else ""))
    if result.note:
        print(f"note: {result.note}")
    return EXIT_INTACT
