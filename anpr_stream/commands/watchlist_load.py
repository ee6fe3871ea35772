"""`anpr-stream watchlist load FILE...`: publish watchlist files to the compacted topic every worker follows, with
the load (and, with --replace, the retraction) recorded in the audit log first: no audit log, no load."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

import asyncpg
import orjson

from anpr_stream.api.users import Operator, UserError
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.commands.users import operator_of
from anpr_stream.config import ConfigError, Settings
from anpr_stream.core.entry import is_workspace_id
from anpr_stream.sinks.migrate import migrate
from anpr_stream.watchlists import WatchlistEntry, load_watchlists

EXIT_OK, EXIT_USAGE, EXIT_SKIPPED, EXIT_BROKER = 0, 2, 3, 1
EXIT_UNAUDITED = 1


def add_load_command(commands: argparse._SubParsersAction[Any]) -> None:
    load = commands.add_parser(
        "load",
        help="publish watchlist files to the watchlist topic (workers apply them live)",
        description=(
            "Publish every valid row of the files to the compacted watchlist topic (key = entry_id). Bad rows are "
            "reported with file and line and skipped. With --replace, entries on the topic that are in none of the "
            "files are retracted (tombstones). The load and the retraction are recorded in the audit log before "
            "anything is published (who, which lists, how many entries; never plates or entry ids): without the "
            "database nothing is published. Needs ANPR_KAFKA_BOOTSTRAP and ANPR_DATABASE_URL."
        ),
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="watchlist CSV files")
    load.add_argument(
        "--replace",
        action="store_true",
        help="retract entries that are not in the files (not the WS- entries published from the workspace)",
    )
    load.add_argument("--by", metavar="NAME", help="who loads the lists, for the audit log (default: cli:<login>)")
    load.set_defaults(handler=_load)


class Unaudited(RuntimeError):
    """The audit log cannot take the record: the change is not made."""


@dataclasses.dataclass(frozen=True)
class _Listed:
    """What the audit log keeps of entries: how many per list, how many of them covert. No plate, no entry id."""

    lists: dict[str, dict[str, int]]
    total: int

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, bool]]) -> _Listed:
        entries: Counter[str] = Counter()
        covert: Counter[str] = Counter()
        for name, is_covert in pairs:
            entries[name] += 1
            covert[name] += is_covert
        lists = {name: {"entries": entries[name], "covert": covert[name]} for name in sorted(entries)}
        return cls(lists, sum(entries.values()))


def _record(by: Operator, action: str, listed: _Listed, topic: str, **extra: Any) -> AuditRecord:
    return AuditRecord(
        actor=by.name, role=by.role, endpoint=f"admin.watchlist.{action}", allowed=True,
        parameters={"topic": topic, "entries": listed.total, "lists": listed.lists, **extra},
        result_count=listed.total,
    )  # fmt: skip


async def _live_entries(settings: Settings) -> dict[str, tuple[str, bool]]:
    """The entries on the topic now: entry id -> (list, covert). A value that cannot be read counts as covert (its
    retraction is then recorded without anything that could name it)."""
    from anpr_stream.stream.compacted import open_from_beginning, records_to_end
    from anpr_stream.stream.topics import ensure_topics

    await ensure_topics(settings)
    consumer = await open_from_beginning(
        settings.kafka_bootstrap, settings.topics.watchlist, security=settings.kafka_security
    )
    live: dict[str, tuple[str, bool] | None] = {}
    try:
        async for record in records_to_end(consumer):
            if record.key is None:
                continue
            key = record.key.decode(errors="replace")
            if record.value is None:
                live[key] = None
                continue
            try:
                value = orjson.loads(record.value)
                live[key] = (str(value["list"]), value.get("covert") is not False)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                live[key] = ("(unreadable)", True)
    finally:
        await consumer.stop()
    return {key: found for key, found in live.items() if found is not None}


async def audited_publish(
    settings: Settings, entries: list[WatchlistEntry], replace: bool, by: Operator, skipped: int
) -> tuple[int, int]:
    """Record the load (and the retraction) in the audit log, then publish; returns (published, retracted)."""
    from anpr_stream.stream.watchlist_publish import publish

    topic = settings.topics.watchlist
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=10)
    except Exception as exc:
        raise Unaudited(f"the database (audit log) cannot be reached: {exc}") from None
    try:
        try:
            await migrate(conn)
        except Exception as exc:
            raise Unaudited(f"the audit log is not usable: {exc}") from None
        loaded = _Listed.of((e.list, e.covert) for e in entries)
        retract = _Listed.of([])
        if replace:
            kept = {e.entry_id for e in entries}
            live = (await _live_entries(settings)).items()
            retract = _Listed.of(v for k, v in live if k not in kept and not is_workspace_id(k))
        try:
            async with conn.transaction():
                await append_audit(conn, _record(by, "load", loaded, topic, replace=replace, skipped_rows=skipped))
                if retract.total:
                    await append_audit(conn, _record(by, "retract", retract, topic))
        except Exception as exc:
            raise Unaudited(f"the audit log refused the record: {exc}") from None
        try:
            published, retracted = await publish(settings, entries, replace=replace)
        except Exception as exc:
            reason = (f"publishing to {topic} failed after the load was recorded: {exc}; entries sent before the "
                      "failure stay on the topic")  # fmt: skip
            failed = _record(by, "load", loaded, topic, replace=replace)
            with contextlib.suppress(Exception):  # the publishing error is the one to report
                await append_audit(conn, dataclasses.replace(failed, allowed=False, reason=reason))
            raise
        if retracted != retract.total:
            # Someone published to the topic between the count above and the retraction itself.
            reason = f"retracted {retracted} entries, not the {retract.total} recorded before: the topic changed"
            counted = _record(by, "retract", _Listed({}, retracted), topic)
            await append_audit(conn, dataclasses.replace(counted, reason=reason))
        return published, retracted
    finally:
        await conn.close()


def _load(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        by = operator_of(args)
    except (ConfigError, UserError) as exc:
        print(f"anpr-stream: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def report(file: str, line: int, reason: str) -> None:
        print(f"{file}:{line}: skipped: {reason}", file=sys.stderr)

    try:
        entries, skipped = load_watchlists(args.files, report)
    except OSError as exc:
        print(f"anpr-stream: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        published, retracted = asyncio.run(audited_publish(settings, entries, args.replace, by, skipped))
    except Unaudited as exc:
        print(f"anpr-stream watchlist load: nothing published: {exc}", file=sys.stderr)
        return EXIT_UNAUDITED
    except Exception as exc:
        print(f"anpr-stream: publishing to {settings.topics.watchlist} failed: {exc}", file=sys.stderr)
        return EXIT_BROKER
    print(f"published {published} entries to {settings.topics.watchlist}, retracted {retracted}, skipped {skipped}")
    return EXIT_SKIPPED if skipped else EXIT_OK
