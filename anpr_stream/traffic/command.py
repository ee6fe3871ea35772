"""`anpr-stream traffic generate`: write synthetic recorded traffic of the zone, its watchlist and ground truth."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from anpr_stream.cameras import CameraRegistry
from anpr_stream.commands import arguments
from anpr_stream.traffic import GroundTruth, generate, plant_watchlist
from anpr_stream.traffic.output import truth_document, write_reads, write_truth, write_watchlist

EXIT_OK = 0
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "traffic",
        help="generate synthetic recorded traffic of the zone (reads, planted watchlist vehicles, ground truth)",
    )
    actions = parser.add_subparsers(dest="traffic_action", metavar="ACTION", required=True)
    gen = actions.add_parser(
        "generate",
        help="write reads (JSONL, .gz compressed), the matching watchlist CSV and the ground truth JSON",
        description=(
            "Deterministic by seed: the zone's cameras, a 24-hour profile per site, a BE/NL/DE/FR/LU plate mix, "
            "~3%% OCR misreads, repeated reads, commuters, and planted itinerant gangs, biker convoys and stolen "
            "vehicles with their watchlist entries."
        ),
    )
    gen.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    gen.add_argument(
        "--start", type=arguments.timestamp, required=True, help="RFC 3339 start, e.g. 2026-11-26T04:00:00+01:00"
    )
    gen.add_argument(
        "--hours", type=arguments.positive_float, required=True, help="duration in hours (fractions allowed)"
    )
    gen.add_argument(
        "--reads-per-day",
        type=arguments.positive_float,
        default=150_000,
        help="reads on a weekday over all cameras (default 150000)",
    )
    gen.add_argument("--out", type=Path, required=True, help="reads file, FILE.jsonl.gz (or .jsonl)")
    gen.add_argument("--watchlist-out", type=Path, required=True, help="watchlist CSV for the planted vehicles")
    gen.add_argument("--truth-out", type=Path, required=True, help="ground truth JSON")
    gen.add_argument(
        "--invalid-rate",
        type=arguments.fraction,
        default=0.0,
        help="fraction of extra invalid lines for DLQ demos (default 0)",
    )
    gen.add_argument(
        "--cameras", type=Path, default=None, help="camera registry CSV (default: the example shipped in the package)"
    )
    gen.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    try:
        cameras = list(CameraRegistry.load(args.cameras))
    except (OSError, ValueError) as exc:
        print(f"traffic: camera registry: {exc}", file=sys.stderr)
        return EXIT_USAGE
    duration = timedelta(hours=args.hours)
    began = time.perf_counter()
    planting = plant_watchlist(args.seed, args.start, duration, cameras)
    truth = GroundTruth()
    reads = generate(
        args.seed, args.start, duration, args.reads_per_day, cameras=cameras, planting=planting, truth=truth
    )
    try:
        stats = write_reads(args.out, reads, invalid_rate=args.invalid_rate, seed=args.seed)
        write_watchlist(args.watchlist_out, planting)
        generator = {
            "seed": args.seed,
            "start": args.start.isoformat(),
            "hours": args.hours,
            "reads_per_day": args.reads_per_day,
            "invalid_rate": args.invalid_rate,
        }
        write_truth(args.truth_out, truth_document(planting, truth, stats, generator))
    except OSError as exc:
        print(f"traffic: {exc}", file=sys.stderr)
        return EXIT_USAGE
    elapsed = time.perf_counter() - began
    listed = sum(1 for v in planting.vehicles if v.entry_id is not None)
    print(
        f"traffic: {stats.reads} reads ({truth.misreads} misread, {truth.duplicates} repeated), "
        f"{len(stats.invalid)} invalid lines, {len(truth.planted_reads)} planted reads of {len(planting.vehicles)} "
        f"vehicles ({listed} listed), {len(planting.entries)} watchlist entries; "
        f"{args.out} {args.out.stat().st_size:,} bytes in {elapsed:.1f}s",
        file=sys.stderr,
    )
    return EXIT_OK
