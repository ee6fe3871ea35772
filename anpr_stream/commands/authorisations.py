"""`anpr-stream authorisations register|revoke|list|show`: the registry of authorisations from the command line, run as
the schema owner; the rules are the API's (anpr_stream.api.registry) and every change is appended to the audit log in
its own transaction."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from anpr_stream import config
from anpr_stream.api.registry import (
    BY_ID,
    COLUMNS,
    Registration,
    RegistrationError,
    audit_parameters,
    authorisation_of,
    checked,
    insert,
    mark_revoked,
    view,
)
from anpr_stream.api.users import Operator, UserError
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.commands.arguments import positive_int, timestamp
from anpr_stream.commands.database import database_url, on_connection
from anpr_stream.commands.users import operator_of
from anpr_stream.retention.policy import Access
from anpr_stream.sinks.migrate import migrate

T = TypeVar("T")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
KINDS = (Access.JUDICIAL_WITH_PROSECUTOR_DECISION, Access.SENIOR_AUTHORISATION, Access.PROSECUTOR_EVERY_QUERY)
ENDPOINT = "admin.authorisations.{}"  # the audit rows' endpoint: admin.authorisations.register / .revoke

EXITS = (
    "Exit 0 done; 1 refused by the registry as it stands (unknown id, already revoked, the authority's reference "
    "already registered) or the database failed; 2 bad input (said why)."
)


class Refused(Exception):
    """The registry as it stands refuses the change or knows no such id: exit 1."""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    registry = subparsers.add_parser("authorisations", help="the registry of authorisations (prosecutor decisions)")
    commands = registry.add_subparsers(dest="authorisations_command", metavar="COMMAND", required=True)
    add = commands.add_parser(
        "register",
        help="register a written authorisation (the information manager's POST /v1/registry/authorisations)",
        description="Register the decision that opens the policy's restricted tier for one case: its kind must be "
        "the policy's (ANPR_RETENTION), it names plates and/or cameras (no blanket authorisation), a window of data "
        "and a validity. A registered authorisation is never changed: a correction is a revocation and a new "
        "registration under its own reference. The registration is audited (admin.authorisations.register). " + EXITS,
    )
    add.add_argument("--kind", required=True, choices=[k.value for k in KINDS])
    add.add_argument("--authority", required=True, help="the issuing authority, e.g. 'procureur des Konings, Limburg'")
    add.add_argument("--issued-by", required=True, help="the magistrate or senior officer who signed it")
    add.add_argument("--reference", required=True, help="the decision's own reference")
    add.add_argument("--case", required=True, help="the case it serves (requests citing it must state this case)")
    add.add_argument("--plates", help="comma-separated plates it covers (normalised)")
    add.add_argument("--cameras", help="comma-separated camera ids it covers")
    add.add_argument("--data-from", required=True, type=timestamp, metavar="RFC3339", help="oldest observation")
    add.add_argument("--data-until", required=True, type=timestamp, metavar="RFC3339", help="newest observation")
    add.add_argument("--valid-from", type=timestamp, metavar="RFC3339", help="usable from (default: now)")
    add.add_argument("--valid-until", required=True, type=timestamp, metavar="RFC3339", help="usable until")
    add.add_argument("--single-query", action="store_true", help="approves one query (always so for NL)")
    add.add_argument("--note", help="free text, at most 2,000 characters")
    _by_option(add)
    add.set_defaults(handler=_register)
    revoke = commands.add_parser(
        "revoke",
        help="revoke an authorisation (final: it opens nothing from now on)",
        description="Revoke the authorisation now, with the reason. A revocation stands: it is not undone or "
        "repeated. The revocation is audited (admin.authorisations.revoke). " + EXITS,
    )
    revoke.add_argument("authorisation_id", type=positive_int, metavar="ID")
    revoke.add_argument("--reason", required=True, help="why (at most 2,000 characters)")
    _by_option(revoke)
    revoke.set_defaults(handler=_revoke)
    listing = commands.add_parser(
        "list",
        help="registered authorisations, oldest first",
        description="One line per authorisation: id, kind, authority, reference, case, scope, data window, valid "
        "until, state (current, or why not).",
    )
    listing.add_argument("--case", help="only this case's")
    listing.add_argument("--current", action="store_true", help="only those usable now")
    listing.add_argument("--json", action="store_true", help="the records as the API returns them")
    listing.set_defaults(handler=_list)
    show = commands.add_parser("show", help="one authorisation, every field", description=EXITS)
    show.add_argument("authorisation_id", type=positive_int, metavar="ID")
    show.add_argument("--json", action="store_true", help="the record as the API returns it")
    show.set_defaults(handler=_show)


def _by_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", metavar="NAME", help="who makes the change, for the registry and the audit log "
                        "(default: cli:<login>)")  # fmt: skip


def _said(args: argparse.Namespace, exc: Exception | str, status: int) -> int:
    print(f"anpr-stream authorisations {args.authorisations_command}: {exc}", file=sys.stderr)
    return status


def _run(args: argparse.Namespace, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T | int:
    """`work` on one connection; an int is the exit status of a refusal, said on stderr."""
    url = database_url()
    if url is None:
        return EXIT_USAGE
    try:
        return on_connection(url, work)
    except Refused as exc:
        return _said(args, exc, EXIT_REFUSED)
    except (RegistrationError, asyncpg.CheckViolationError) as exc:
        return _said(args, exc, EXIT_USAGE)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return _said(args, f"the database failed: {exc}", EXIT_REFUSED)


def _record(by: Operator, action: str, row: asyncpg.Record) -> AuditRecord:
    """The audit row of a change: the whole record after it, tied to it by authorisation_id."""
    return AuditRecord(
        actor=by.name, role=by.role, endpoint=ENDPOINT.format(action), allowed=True,
        parameters=audit_parameters(row), case_reference=row["case_reference"],
        authorisation_reference=f"{row['issuing_authority']}: {row['reference']}",
        authorisation_id=row["authorisation_id"], result_count=1,
    )  # fmt: skip


def _listed(text: str | None) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip()) or None


def _register(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        by = operator_of(args)
        registration = checked(
            Registration(
                kind=Access(args.kind), issuing_authority=args.authority, issued_by=args.issued_by,
                reference=args.reference, case_reference=args.case, plates=_listed(args.plates),
                cameras=_listed(args.cameras), data_from=args.data_from, data_until=args.data_until,
                valid_from=args.valid_from or now, valid_until=args.valid_until, single_query=args.single_query,
                note=args.note,
            ),
            config.retention_policy(), now,
        )  # fmt: skip
    except (RegistrationError, UserError, ValueError) as exc:
        return _said(args, exc, EXIT_USAGE)

    async def work(conn: asyncpg.Connection) -> asyncpg.Record:
        await migrate(conn)
        async with conn.transaction():
            try:
                # The registered_by of a CLI registration is the operator's name (cli:<login> or --by), and
                # registered_by_id stays empty: the schema owner is no API user.
                row = await insert(conn, registration, by.name, None)
            except RegistrationError as exc:  # the authority's reference is taken
                raise Refused(str(exc)) from None
            await append_audit(conn, _record(by, "register", row))
        return row

    done = _run(args, work)
    if isinstance(done, int):
        return done
    print(f"authorisation {done['authorisation_id']} registered by {by.name}", file=sys.stderr)
    _print_record(done, datetime.now(UTC))
    return EXIT_OK


def _revoke(args: argparse.Namespace) -> int:
    try:
        by = operator_of(args)
    except UserError as exc:
        return _said(args, exc, EXIT_USAGE)
    wanted: int = args.authorisation_id

    async def work(conn: asyncpg.Connection) -> asyncpg.Record:
        await migrate(conn)
        async with conn.transaction():
            held = await conn.fetchrow(
                "SELECT revoked_at FROM authorisations WHERE authorisation_id = $1 FOR UPDATE", wanted
            )
            if held is None:
                raise Refused(f"no authorisation {wanted} is registered")
            if held["revoked_at"] is not None:
                raise Refused(f"authorisation {wanted} was revoked on {held['revoked_at'].isoformat()}")
            row = await mark_revoked(conn, wanted, by.name, None, args.reason)  # RegistrationError: the reason
            await append_audit(conn, _record(by, "revoke", row))
        return row

    done = _run(args, work)
    if isinstance(done, int):
        return done
    print(f"authorisation {wanted} revoked by {by.name}", file=sys.stderr)
    _print_record(done, datetime.now(UTC))
    return EXIT_OK


def _state(row: asyncpg.Record, now: datetime) -> str:
    """current, or why not: the access decision's own rule (Authorisation.unusable)."""
    why = authorisation_of(row).unusable(now)
    return "current" if why is None else why.removeprefix(f"authorisation {row['authorisation_id']} ")


def _list(args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        found: list[asyncpg.Record] = await conn.fetch(
            f"SELECT {COLUMNS} FROM authorisations WHERE ($1::text IS NULL OR case_reference = $1) "  # noqa: S608
            "ORDER BY authorisation_id",
            args.case,
        )
        return found

    done = _run(args, work)
    if isinstance(done, int):
        return done
    now = datetime.now(UTC)
    rows = [r for r in done if not args.current or authorisation_of(r).unusable(now) is None]
    if args.json:
        print(json.dumps([view(r) for r in rows], ensure_ascii=False, indent=2))
        return EXIT_OK
    for r in rows:
        scope = ", ".join(f"{len(r[k])} {k if len(r[k]) > 1 else k[:-1]}" for k in ("plates", "cameras") if r[k])
        print("\t".join(_text(v) for v in (
            r["authorisation_id"], r["kind"], r["issuing_authority"], r["reference"], r["case_reference"], scope,
            f"data {r['data_from'].isoformat()} to {r['data_until'].isoformat()}",
            f"valid until {r['valid_until'].isoformat()}", _state(r, now),
        )))  # fmt: skip
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    wanted: int = args.authorisation_id

    async def work(conn: asyncpg.Connection) -> asyncpg.Record:
        row: asyncpg.Record | None = await conn.fetchrow(BY_ID, wanted)
        if row is None:
            raise Refused(f"no authorisation {wanted} is registered")
        return row

    done = _run(args, work)
    if isinstance(done, int):
        return done
    if args.json:
        print(json.dumps(view(done), ensure_ascii=False, indent=2))
    else:
        _print_record(done, datetime.now(UTC))
    return EXIT_OK


def _text(value: Any) -> str:
    """A value for the terminal: lists joined with commas, text with control characters (a note's line breaks, an
    escape sequence) written as a JSON string."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)


def _print_record(row: asyncpg.Record, now: datetime) -> None:
    for name, value in view(row).items():
        print(f"{name}: {_text(value)}")
    print(f"state: {_state(row, now)}")
