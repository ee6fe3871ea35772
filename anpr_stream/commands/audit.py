"""`anpr-stream audit verify`: walk the audit log's hash chain and name the first altered, removed or inserted row."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import asyncpg

from anpr_stream.audit.log import Verification, verify_audit

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
    url = os.environ.get("ANPR_DATABASE_URL", "").strip()
    if not url:
        print('anpr-stream: ANPR_DATABASE_URL is not set (run `eval "$(make -s infra)"` for the local services)',
              file=sys.stderr)  # fmt: skip
        return 2

    async def run() -> Verification:
        conn = await asyncpg.connect(url)
        try:
            return await verify_audit(conn)
        finally:
            await conn.close()

    result = asyncio.run(run())
    if result.broken is not None:
        print(f"audit log BROKEN: {result.broken}")
        return EXIT_BROKEN
    print(f"audit log intact: {result.rows} rows" + (f", last id {result.last_id}" if result.last_id else ""))
    if result.note:
        print(f"note: {result.note}")
    return EXIT_INTACT
