"""`anpr-stream users add|revoke|list`: API users and their bearer tokens (shown once, stored hashed)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

import asyncpg

from anpr_stream.api.access import Role
from anpr_stream.api.users import UserError, add_user, list_users, revoke_user
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.sinks.migrate import migrate


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    users = subparsers.add_parser("users", help="API users and their tokens")
    commands = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "add",
        help="create a user and print its token (shown once)",
        description="Create an API user. The token is printed once on stdout and stored only as its sha256.",
    )
    add.add_argument("name", help="login name (letters, digits, . _ @ -)")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--cameras", help="comma-separated camera ids the user may query (default: all)")
    add.add_argument("--covert", action="store_true", help="may see covert lists' details (investigators only)")
    add.set_defaults(handler=_add)
    revoke = commands.add_parser("revoke", help="revoke a user's token now")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_revoke)
    listing = commands.add_parser("list", help="users, roles, scopes (never tokens)")
    listing.set_defaults(handler=_list)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _add(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()] if args.cameras else None

    async def work(conn: asyncpg.Connection) -> str:
        await migrate(conn)
        return await add_user(conn, args.name, Role(args.role), f"cli:{_operator()}", cameras, args.covert)

    try:
        token = on_connection(url, work)
    except (UserError, asyncpg.CheckViolationError) as exc:
        print(f"anpr-stream users add: {exc}", file=sys.stderr)
        return 1
    print(token)
    print(f"user {args.name} ({args.role}) created; the token above is shown once only", file=sys.stderr)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    if on_connection(url, lambda conn: revoke_user(conn, args.name)):
        print(f"user {args.name}: token revoked")
        return 0
    print(f"anpr-stream users revoke: no active user {args.name!r}", file=sys.stderr)
    return 1


def _list(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    for user in on_connection(url, list_users):
        scope = ",".join(user.camera_scope) if user.camera_scope is not None else "all cameras"
        state = f"revoked {user.revoked_at:%Y-%m-%d %H:%M}" if user.revoked_at else "active"
        covert = " covert" if user.covert else ""
        print(f"{user.name}\t{user.role}{covert}\t{scope}\t{state}")
    return 0
