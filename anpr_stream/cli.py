"""The `anpr-stream` entry point: parses the command line and hands over to one subcommand module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from anpr_stream import __version__

# Each module registers its own subcommands; a module listed here and missing is a bug, not a runtime choice.
COMMAND_MODULES: tuple[str, ...] = (
    "anpr_stream.commands.infra",
    "anpr_stream.commands.match",
    "anpr_stream.commands.watchlist",
    "anpr_stream.commands.worker",
    "anpr_stream.commands.traffic",
    "anpr_stream.commands.replay",
    "anpr_stream.commands.demo",
    "anpr_stream.commands.audit",
    "anpr_stream.commands.retention",
    "anpr_stream.commands.users",
    "anpr_stream.commands.authorisations",
    "anpr_stream.commands.api",
    "anpr_stream.commands.dpo",
    "anpr_stream.commands.db",
)

EXIT_OK = 0
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anpr-stream",
        description=(
            "ANPR hit processing: camera reads from Kafka are matched against watchlists, hits are dispatched "
            "and passages logged to PostgreSQL under GDPR retention rules."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
