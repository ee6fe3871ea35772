"""`anpr-stream watchlist stats`: entries per list, validity, and the false-hit cost of a match policy."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from anpr_stream.commands import arguments
from anpr_stream.commands.match import (
    EXIT_OK,
    EXIT_SKIPPED,
    EXIT_USAGE,
    add_policy_options,
    policy_from_args,
    report_to,
)
from anpr_stream.commands.watchlist_load import add_load_command
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.watchlists import load_watchlists
from anpr_stream.watchlists.stats import estimate_false_hits, list_stats

# The zone's mean daily reads (DOMAIN.md: 1e5-3e5 a day).
DEFAULT_READS_PER_DAY = 200_000


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser("watchlist", help="publish and inspect watchlists")
    commands = parser.add_subparsers(dest="watchlist_command", metavar="SUBCOMMAND", required=True)
    add_load_command(commands)
    stats = commands.add_parser(
        "stats",
        help="entries per list and the false-hit cost of a match policy",
        description=(
            "Entries per list, pattern and covert entries, expired and not-yet-valid entries at --at, and an "
            "estimate of the share of ordinary traffic (synthetic plates in the zone's formats) that would raise "
            "an ocr, fuzzy or pattern hit on each list under the given policy, and, for lists whose policy matches "
            "OCR candidates (candidates:N), the share that would raise a hit only through its candidates "
            "(synthetic candidates: lookalike characters, falling confidences)."
        ),
    )
    stats.add_argument("files", nargs="+", metavar="FILE", help="watchlist CSV files")
    add_policy_options(stats)
    stats.add_argument(
        "--at", type=arguments.timestamp, default=None, help="judge validity at this RFC 3339 time (now)"
    )
    stats.add_argument("--samples", type=arguments.positive_int, default=20_000, help="synthetic plates (20000)")
    stats.add_argument("--seed", type=int, default=1, help="random seed of the synthetic traffic (1)")
    stats.add_argument(
        "--reads-per-day",
        type=arguments.positive_int,
        default=DEFAULT_READS_PER_DAY,
        help="to express shares as hits a day",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    stats.set_defaults(handler=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    report = report_to(sys.stderr)
    policy = policy_from_args(args)
    at: datetime = args.at or datetime.now(UTC)
    try:
        entries, skipped = load_watchlists(args.files, report)
    except OSError as exc:
        sys.stderr.write(f"anpr-stream watchlist stats: cannot read watchlist: {exc}\n")
        return EXIT_USAGE
    stats = list_stats(entries, at)
    index = WatchlistIndex.build(entries)
    estimate_false_hits(index, stats, policy, at, args.samples, args.seed)
    rows: list[dict[str, Any]] = []
    for name, s in stats.items():
        shares = {kind: s.traffic_hits[kind] / args.samples for kind in ("ocr", "fuzzy", "pattern")}
        by_candidates = {kind: s.candidate_hits[kind] / args.samples for kind in ("any", "exact", "ocr", "pattern")}
        rows.append(
            {
                "list": name,
                "entries": s.entries,
                "active": s.active,
                "patterns": s.patterns,
                "covert": s.covert,
                "expired": s.expired,
                "not_yet_valid": s.not_yet_valid,
                "policy": policy.for_list(name).to_string(),
                "traffic_share": shares,
                "false_hits_per_day": {k: round(v * args.reads_per_day, 1) for k, v in shares.items()},
                # Beyond the best plate's: reads that raise hits on the list only through their OCR candidates.
                "candidate_traffic_share": by_candidates,
                "candidate_false_hits_per_day": {k: round(v * args.reads_per_day, 1) for k, v in by_candidates.items()},
            }
        )
    if args.json:
        summary = {
            "at": at.isoformat(),
            "samples": args.samples,
            "reads_per_day": args.reads_per_day,
            "skipped_rows": skipped,
            "lists": rows,
        }
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(f"validity at {at.isoformat()}; {args.samples} synthetic plates, {args.reads_per_day} reads/day")
        header = f"{'list':<20} {'entries':>8} {'active':>7} {'pattern':>7} {'covert':>6} {'expired':>7} {'future':>6}"
        print(
            header + f"  {'policy':<34} {'ocr hits/day':>12} {'fuzzy hits/day':>14} {'pattern hits/day':>16} "
            f"{'candidate hits/day':>18}"
        )
        for r in rows:
            per_day = r["false_hits_per_day"]
            print(
                f"{r['list']:<20} {r['entries']:>8} {r['active']:>7} {r['patterns']:>7} {r['covert']:>6} "
                f"{r['expired']:>7} {r['not_yet_valid']:>6}  {r['policy']!s:<34} {per_day['ocr']:>12} "
                f"{per_day['fuzzy']:>14} {per_day['pattern']:>16} {r['candidate_false_hits_per_day']['any']:>18}"
            )
    return EXIT_SKIPPED if skipped else EXIT_OK
