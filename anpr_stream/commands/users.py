"""`anpr-stream users add|rotate|issue|set|revoke|list`: API users and their bearer tokens (shown once, stored hashed,
each with an expiry); every change is appended to the audit log with it."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg

from anpr_stream.api.access import Role
from anpr_stream.api.users import (
    IssuedToken,
    Operator,
    UserError,
    add_user,
    issue_token,
    list_users,
    revoke_user,
    rotate_token,
    set_user,
)
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.config import MAX_TOKEN_DAYS, ConfigError, token_lifetime
from anpr_stream.sinks.migrate import migrate

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    users = subparsers.add_parser("users", help="API users and their tokens")
    commands = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "add",
        help="create a user and print its token (shown once)",
        description="Create an API user. The token is printed once on stdout and stored only as its sha256. A name "
        "is never reused, not even a revoked user's.",
    )
    add.add_argument("name", help="login name (letters, digits, . _ @ -)")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--cameras", help="comma-separated camera ids the user may query (default: all)")
    add.add_argument("--covert", action="store_true", help="may see covert lists' details (investigators only)")
    _lifetime_option(add)
    _by_option(add)
    add.set_defaults(handler=_add)
    rotate = commands.add_parser(
        "rotate",
        help="give a user a new token (printed once); its other tokens stop working at once",
        description="Issue a new token to the user (same user, same id) and revoke every token it held before.",
    )
    rotate.add_argument("name")
    _lifetime_option(rotate)
    _by_option(rotate)
    rotate.set_defaults(handler=_rotate)
    issue = commands.add_parser(
        "issue",
        help="give a user one more token (printed once), e.g. for a second console; its others stay good",
        description="Issue another token to the user; logging out of one console then leaves the others working.",
    )
    issue.add_argument("name")
    _lifetime_option(issue)
    _by_option(issue)
    issue.set_defaults(handler=_issue)
    change = commands.add_parser(
        "set",
        help="change a user's camera scope or covert clearance",
        description="Change what a user may see; effective with its next request.",
    )
    change.add_argument("name")
    scope = change.add_mutually_exclusive_group()
    scope.add_argument("--cameras", help="comma-separated camera ids the user may query from now on")
    scope.add_argument("--all-cameras", action="store_true", help="lift the camera scope")
    clearance = change.add_mutually_exclusive_group()
    clearance.add_argument("--covert", dest="covert", action="store_true", default=None,
                           help="grant covert clearance (investigators only)")  # fmt: skip
    clearance.add_argument("--no-covert", dest="covert", action="store_false", help="withdraw covert clearance")
    _by_option(change)
    change.set_defaults(handler=_set)
    revoke = commands.add_parser(
        "revoke",
        help="revoke a user and all its tokens now (final: the name is not reused)",
        description="Revoke the user and every token it holds. The user is kept (audit rows keep pointing to it) "
        "and never comes back: a new user needs a new name.",
    )
    revoke.add_argument("name")
    _by_option(revoke)
    revoke.set_defaults(handler=_revoke)
    listing = commands.add_parser("list", help="users, roles, scopes and token expiry (never tokens)")
    listing.set_defaults(handler=_list)


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number of days from 1 to {MAX_TOKEN_DAYS}")
    return int(text)


def _lifetime_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires-in",
        type=_days,
        metavar="DAYS",
        help="the token's lifetime (default: the role's, ANPR_TOKEN_DAYS_<ROLE>: dispatcher and investigator 30, "
        "dpo 90, admin 7)",
    )


def _by_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="NAME", help="who makes the change, for the audit log (default: cli:<login>)")


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def operator_of(args: argparse.Namespace) -> Operator:
    """The audit actor of an administrative command: `--by NAME`, else cli:<os login>."""
    by = (getattr(args, "by", None) or "").strip()
    if by and (len(by) > 200 or not by.isprintable()):
        raise UserError("--by: at most 200 printable characters")
    return Operator(by or f"cli:{_operator()}")


def _run(args: argparse.Namespace, work: Callable[[asyncpg.Connection, Operator], Awaitable[T]]) -> T | int:
    """Run one change as the operator on a migrated schema; an int is the exit status of a refusal (said why)."""
    url = database_url()
    if url is None:
        return 2
    try:
        by = operator_of(args)

        async def migrated(conn: asyncpg.Connection) -> T:
            await migrate(conn)
            return await work(conn, by)

        return on_connection(url, migrated)
    except (UserError, ConfigError, asyncpg.CheckViolationError) as exc:
        print(f"anpr-stream users {args.users_command}: {exc}", file=sys.stderr)
        return 1


def _lifetime(args: argparse.Namespace, role: Role) -> timedelta:
    return timedelta(days=args.expires_in) if args.expires_in else token_lifetime(role.value)


def _cameras(text: str | None) -> list[str] | None:
    return [c.strip() for c in (text or "").split(",") if c.strip()] or None


def _print_token(issued: IssuedToken, what: str) -> None:
    print(issued.token)
    print(f"{what}; the token above is shown once only and expires {issued.expires_at:%Y-%m-%d %H:%M %Z}",
          file=sys.stderr)  # fmt: skip


def _add(args: argparse.Namespace) -> int:
    role = Role(args.role)

    async def work(conn: asyncpg.Connection, by: Operator) -> IssuedToken:
        return await add_user(conn, args.name, role, by, _lifetime(args, role), _cameras(args.cameras), args.covert)

    done = _run(args, work)
    if isinstance(done, int):
        return done
    _print_token(done, f"user {args.name} ({args.role}, id {done.user_id}) created")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    return _new_token(args, rotate_token, "new token, the ones before it are revoked")


def _issue(args: argparse.Namespace) -> int:
    return _new_token(args, issue_token, "one more token, the others stay good")


def _new_token(
    args: argparse.Namespace,
    make: Callable[[asyncpg.Connection, str, Operator, timedelta], Awaitable[IssuedToken]],
    what: str,
) -> int:
    async def work(conn: asyncpg.Connection, by: Operator) -> IssuedToken:
        role = await conn.fetchval("SELECT role FROM api_users WHERE name = $1", args.name)
        if role is None:
            raise UserError(f"no user {args.name!r}")
        return await make(conn, args.name, by, _lifetime(args, Role(role)))

    done = _run(args, work)
    if isinstance(done, int):
        return done
    _print_token(done, f"user {args.name} (id {done.user_id}): {what}")
    return 0


def _set(args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection, by: Operator) -> dict[str, Any]:
        return await set_user(conn, args.name, by, _cameras(args.cameras), args.all_cameras, args.covert)

    done = _run(args, work)
    if isinstance(done, int):
        return done
    for name, (before, after) in done.items():
        print(f"user {args.name}: {name} {_shown(before)} -> {_shown(after)}")
    return 0


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(value)
    return "all" if value is None else str(value).lower()


def _revoke(args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection, by: Operator) -> list[int]:
        return await revoke_user(conn, args.name, by)

    done = _run(args, work)
    if isinstance(done, int):
        return done
    print(f"user {args.name}: revoked, with {len(done)} token(s)")
    return 0


def _list(args: argparse.Namespace) -> int:
    url = database_url()
    if url is None:
        return 2
    for user in on_connection(url, list_users):
        scope = ",".join(user.camera_scope) if user.camera_scope is not None else "all cameras"
        covert = " covert" if user.covert else ""
        if user.revoked_at is not None:
            state = f"revoked {user.revoked_at:%Y-%m-%d %H:%M}"
        elif user.expires_at is None:
            state = "no valid token (users rotate)"
        else:
            state = f"{user.valid_tokens} token(s), valid until {user.expires_at:%Y-%m-%d %H:%M %Z}"
        print(f"{user.name}\t{user.user_id}\t{user.role}{covert}\t{scope}\t{state}")
    return 0
