"""`anpr-stream match`: match camera reads (JSON lines) against watchlist CSV files, one JSON line per hit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import orjson

from anpr_stream.core.matching import Match, WatchlistIndex, match_read, score_match
from anpr_stream.core.plates import plate_format
from anpr_stream.core.policy import MAX_FUZZY_DISTANCE, MatchPolicy
from anpr_stream.core.readings import InvalidReading, Reading, reading_from_mapping
from anpr_stream.watchlists import load_watchlists

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SKIPPED = 3


def distance_arg(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_FUZZY_DISTANCE:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_FUZZY_DISTANCE}")
    return int(text)


def policy_arg(text: str) -> MatchPolicy:
    try:
        return MatchPolicy.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--max-distance",
        type=distance_arg,
        default=None,
        metavar="N",
        help="fuzzy matching up to Levenshtein distance N for every list (default 0: exact and OCR only)",
    )
    group.add_argument(
        "--policy",
        type=policy_arg,
        default=None,
        metavar="POLICY",
        help='per-list policy, as in ANPR_MATCH_POLICY, e.g. "default=fuzzy:1;biker_club=fuzzy:0,log-only"',
    )


def policy_from_args(args: argparse.Namespace) -> MatchPolicy:
    if args.policy is not None:
        policy: MatchPolicy = args.policy
        return policy
    return MatchPolicy.uniform(args.max_distance or 0)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "match",
        help="match reads against watchlists",
        description=(
            "Match camera reads (one JSON object per line) against watchlist CSV files and write one JSON line "
            "per hit. Bad lines and rows are reported on stderr and skipped. Exit status 0 when all input was "
            "valid, 3 when some was skipped, 2 on usage errors."
        ),
    )
    parser.add_argument(
        "--watchlist", action="append", required=True, metavar="FILE", help="watchlist CSV (repeatable)"
    )
    add_policy_options(parser)
    parser.add_argument("readings", nargs="?", default="-", metavar="READINGS", help="JSON lines file, or - for stdin")
    parser.set_defaults(handler=run)


def report_to(stream: IO[str]) -> Any:
    def report(name: str, line: int, reason: str) -> None:
        stream.write(f"{name}:{line}: {reason}\n")

    return report


def hit_record(reading: Reading, match: Match, policy: MatchPolicy) -> dict[str, object]:
    entry = match.entry
    read_normalised = reading.normalised_plate
    read_format = plate_format(read_normalised, reading.country)
    entry_normalised = entry.normalised
    return {
        "read_id": reading.read_id,
        "camera_id": reading.camera_id,
        "observed_at": reading.observed_at.isoformat(),
        "entry_id": entry.entry_id,
        "list": entry.list,
        "match": match.kind,
        "distance": match.distance,
        "matched_plate": reading.plate if match.candidate is None else match.candidate.plate,
        "candidate_rank": match.candidate_rank or None,
        "candidate_confidence": None if match.candidate is None else match.candidate.confidence,
        "priority": entry.priority,
        "action": entry.action,
        "covert": entry.covert,
        "reference": entry.reference,
        "dispatch": policy.for_list(entry.list).dispatch,
        # A candidate's hit is scored on the candidate's own format: that is the plate it says the car has.
        "score": score_match(
            match, read_format if match.candidate is None else plate_format(match.candidate.normalised, reading.country)
        ),
        "read_plate": reading.plate,
        "read_plate_normalised": read_normalised,
        "read_country": reading.country,
        "read_format": read_format,
        "read_confidence": reading.confidence,
        "entry_plate": entry.plate,
        "entry_plate_normalised": entry_normalised,
        "entry_country": entry.country,
        "entry_format": None if entry.is_pattern else plate_format(entry_normalised, entry.country),
    }


def _lines(source: str) -> Iterator[tuple[int, bytes]]:
    if source == "-":
        yield from enumerate(sys.stdin.buffer, start=1)
        return
    with open(source, "rb") as handle:
        yield from enumerate(handle, start=1)


def run(args: argparse.Namespace) -> int:
    report = report_to(sys.stderr)
    policy = policy_from_args(args)
    try:
        entries, skipped = load_watchlists(args.watchlist, report)
    except OSError as exc:
        sys.stderr.write(f"anpr-stream match: cannot read watchlist: {exc}\n")
        return EXIT_USAGE
    index = WatchlistIndex.build(entries)
    del entries
    name = "<stdin>" if args.readings == "-" else args.readings
    out = sys.stdout.buffer
    try:
        for line_no, line in _lines(args.readings):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                report(name, line_no, f"not JSON: {exc}")
                skipped += 1
                continue
            if not isinstance(data, dict):
                report(name, line_no, "a reading must be a JSON object")
                skipped += 1
                continue
            try:
                reading = reading_from_mapping(data)
            except InvalidReading as exc:
                report(name, line_no, str(exc))
                skipped += 1
                continue
            for match in match_read(index, reading.plate, reading.candidates, reading.observed_at, policy):
                out.write(orjson.dumps(hit_record(reading, match, policy)))
                out.write(b"\n")
        out.flush()
    except BrokenPipeError:
        # Downstream stopped reading (e.g. `| head`): not an error; keep the interpreter's final flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        sys.stderr.write(f"anpr-stream match: cannot read readings: {exc}\n")
        return EXIT_USAGE
    return EXIT_SKIPPED if skipped else EXIT_OK
