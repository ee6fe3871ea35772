"""Matching a read with its OCR candidates: the best plate under the policy, then the candidates for opted-in lists.

A camera's engine reports its top-N alternative readings; when the best one is wrong the right one is often among
them. Candidates are matched exact, OCR-equivalent or by pattern, never fuzzily: the candidate list already is the
engine's spread of alternatives, and fuzzy reach on top of each would multiply the false hits (see
`anpr-stream watchlist stats`). One read gives at most one hit per entry (hit_id = uuid5(read, entry)): the best
plate's match wins over any candidate's, a higher-ranked candidate over a lower one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from anpr_stream.core.matching.index import Match, WatchlistIndex
from anpr_stream.core.plates import confusion_form, normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Candidate

# Candidates match without fuzzy reach, on every list (see above).
_CANDIDATE_POLICY = MatchPolicy()


def match_read(
    index: WatchlistIndex,
    plate: str,
    candidates: tuple[Candidate, ...],
    observed_at: datetime,
    policy: MatchPolicy,
) -> list[Match]:
    """The best plate's matches (as `index.match`), then those of the candidates each list's policy takes, in rank
    order; one match per entry."""
    normalised = normalise(plate)
    return match_normalised_read(index, normalised, confusion_form(normalised), candidates, observed_at, policy)


def match_normalised_read(
    index: WatchlistIndex,
    normalised: str,
    form: str,
    candidates: tuple[Candidate, ...],
    observed_at: datetime,
    policy: MatchPolicy,
) -> list[Match]:
    """`match_read` of a plate normalised already, with its confusion form: the worker computes both once a read."""
    matches = index.match_normalised(normalised, form, observed_at, policy)
    if not candidates or not policy.max_candidates:
        return matches
    best = normalised
    seen = {m.entry.entry_id for m in matches}
    found: dict[str, list[Match]] = {}  # per candidate text: an engine may repeat one at two ranks
    for rank, candidate in enumerate(candidates[: policy.max_candidates], start=1):
        text = candidate.normalised
        if text == best:  # the best plate's matches (under the full policy) already hold every one of these
            continue
        if text not in found:
            found[text] = index.match(text, observed_at, _CANDIDATE_POLICY)
        for match in found[text]:
            entry_id = match.entry.entry_id
            if entry_id in seen or not policy.for_list(match.entry.list).takes_candidate(rank, candidate.confidence):
                continue
            seen.add(entry_id)
            matches.append(replace(match, candidate=candidate, candidate_rank=rank))
    return matches
