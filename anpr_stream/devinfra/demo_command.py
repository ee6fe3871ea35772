"""`anpr-stream demo`: the service end to end on the bundled recorded sample (what `make demo` runs)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole service on the bundled six-hour sample of the zone's traffic",
        description=(
            "Start (or use) Kafka and PostgreSQL, load the sample watchlists, start a worker, replay "
            "deploy/demo/zone-sample.jsonl.gz shifted to now, print hits as they arrive and a summary checked "
            "against the sample's ground truth. Exit 0 when every read was stored and every planted hit found."
        ),
    )
    parser.add_argument("--keep-running", action="store_true", help="leave the worker running after the summary")
    parser.add_argument(
        "--speed",
        type=float,
        default=720.0,
        help="replay at this many times real time (default 720: six hours in 30 s; 0: as fast as possible)",
    )
    parser.set_defaults(handler=lambda args: _run(args.keep_running, args.speed))


def _run(keep_running: bool, speed: float) -> int:
    from anpr_stream.devinfra.demo import main

    return main(keep_running, speed)
