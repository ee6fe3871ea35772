"""`anpr-stream db create-service-login NAME`: a least-privilege login role for the worker and the API."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.sinks.roles import RoleError, create_service_login


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    db = subparsers.add_parser("db", help="database roles")
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    login = commands.add_parser(
        "create-service-login",
        help="create a login role for the worker and the API (member of anpr_service) and print its URL",
        description="Create a login role that is a member of anpr_service: it may read and append passages, hits, "
        "outcomes and the audit log and create day partitions (through ensure_passage_partition), nothing else. "
        "Prints ANPR_DATABASE_URL for it on stdout (the password is shown once). Run it as the schema owner, with "
        "CREATEROLE. The retention purge keeps running as the owner.",
    )
    login.add_argument("name", help="role name (lower-case letters, digits, _)")
    login.add_argument("--rotate", action="store_true", help="the role exists: give it a new password")
    login.set_defaults(handler=_create_service_login)


def with_credentials(url: str, user: str, password: str) -> str:
    """`url` (host, database, parameters such as search_path kept) for another user and password."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


def _create_service_login(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    try:
        password = on_connection(url, lambda conn: create_service_login(conn, args.name, args.rotate))
    except RoleError as exc:
        print(f"anpr-stream db create-service-login: {exc}", file=sys.stderr)
        return 1
    print(with_credentials(url, args.name, password))
    print(f"login role {args.name} (member of anpr_service): the URL above holds its password, shown once",
          file=sys.stderr)  # fmt: skip
    return 0
