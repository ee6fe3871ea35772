"""`anpr-stream watchlist load FILE...`: publish watchlist files to the compacted topic every worker follows."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from anpr_stream.config import ConfigError, Settings
from anpr_stream.watchlists import load_watchlists

EXIT_OK, EXIT_USAGE, EXIT_SKIPPED, EXIT_BROKER = 0, 2, 3, 1


def add_load_command(commands: argparse._SubParsersAction[Any]) -> None:
    load = commands.add_parser(
        "load",
        help="publish watchlist files to the watchlist topic (workers apply them live)",
        description=(
            "Publish every valid row of the files to the compacted watchlist topic (key = entry_id). Bad rows are "
            "reported with file and line and skipped. With --replace, entries on the topic that are in none of the "
            "files are retracted (tombstones). Needs ANPR_KAFKA_BOOTSTRAP."
        ),
    )
    load.add_argument("files", nargs="+", metavar="FILE", help="watchlist CSV files")
    load.add_argument("--replace", action="store_true", help="retract entries that are not in the files")
    load.set_defaults(handler=_load)


def _load(args: argparse.Namespace) -> int:
    from anpr_stream.stream.watchlist_publish import publish

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
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
        published, retracted = asyncio.run(publish(settings, entries, replace=args.replace))
    except Exception as exc:
        print(f"anpr-stream: publishing to {settings.topics.watchlist} failed: {exc}", file=sys.stderr)
        return EXIT_BROKER
    print(f"published {published} entries to {settings.topics.watchlist}, retracted {retracted}, skipped {skipped}")
    return EXIT_SKIPPED if skipped else EXIT_OK
