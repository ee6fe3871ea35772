"""The `anpr-stream` entry point: parses the command line and hands over to one subcommand module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from anpr_stream import __version__

# Each module registers its own subcommands; a module listed here and missing is a bug, not a runtime choice.
COMMAND_MODULES: tuple[str, ...] = (
    "anpr_stream.devinfra.infra_command",
    "anpr_stream.commands.match",
    "anpr_stream.commands.watchlist",
    "anpr_stream.commands.worker",
    "anpr_stream.traffic.command",
    "anpr_stream.commands.replay",
    "anpr_stream.devinfra.demo_command",
    "anpr_stream.commands.audit",
    "anpr_stream.commands.retention",
    "anpr_stream.commands.users",
    "anpr_stream.commands.authorisations",
    "anpr_stream.commands.api",
    "anpr_stream.commands.dpo",
    "anpr_stream.commands.db",
    "anpr_stream.commands.gateway",
)

# Development code (local infrastructure, traffic generator, demo): in a checkout, not in the installed wheel
# (pyproject.toml excludes these packages). Their commands are then listed, and say so when run.
DEVELOPMENT_PACKAGES: tuple[str, ...] = ("anpr_stream.devinfra", "anpr_stream.traffic")
DEVELOPMENT_COMMANDS: dict[str, tuple[str, str]] = {
    "anpr_stream.devinfra.infra_command": ("infra", "start/stop the local Kafka broker and PostgreSQL server"),
    "anpr_stream.traffic.command": ("traffic", "generate synthetic recorded traffic of the zone"),
    "anpr_stream.devinfra.demo_command": ("demo", "run the whole service on the bundled sample of the zone"),
}

EXIT_OK = 0
EXIT_USAGE = 2


def _is_development_code(module: str | None) -> bool:
    return module is not None and any(module == p or module.startswith(f"{p}.") for p in DEVELOPMENT_PACKAGES)


def _register_absent(subparsers: argparse._SubParsersAction[Any], name: str, summary: str) -> None:
    parser = subparsers.add_parser(name, help=f"{summary} (development only: not in this installation)")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def refuse(args: argparse.Namespace) -> int:
        print(
            f"anpr-stream {name}: a development command, not part of this installation (the package holds the "
            f"service only). Run it from a checkout of the repository: make venv, then .venv/bin/anpr-stream {name}.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    # argparse.REMAINDER does not take options that come first (`demo --speed 0`): main() hands this command
    # whatever it did not parse, so the refusal, not a usage error, answers.
    parser.set_defaults(handler=refuse, takes_unknown_arguments=True)


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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if name not in DEVELOPMENT_COMMANDS or not _is_development_code(exc.name):
                raise
            _register_absent(subparsers, *DEVELOPMENT_COMMANDS[name])
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "takes_unknown_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
