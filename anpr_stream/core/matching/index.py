"""The watchlist index: an immutable snapshot the matcher queries, replaced whole or updated by copy.

Updates never touch a published index. `with_entries` and `without` return a new index that shares every
existing segment: added entries go to a new small segment, replaced or removed ones are marked dead. Segments of
similar size are merged (as in a log-structured merge tree), so a long run of single updates costs a logarithmic
number of rebuilds per entry and queries see only a handful of segments.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from rapidfuzz.distance import Levenshtein

from anpr_stream.core import accel
from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.core.matching.segment import FIELD_SEP, MIN_FUZZY_LENGTH, Segment, to_microseconds
from anpr_stream.core.plates import confusion_form, normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.core.readings import Candidate

KIND_ORDER = {"exact": 0, "ocr": 1, "fuzzy": 2, "pattern": 3}
KINDS = tuple(KIND_ORDER)  # by code: what Segment.native_hits returns
FUZZY = KIND_ORDER["fuzzy"]
# Merge the newest segment into the one before it while that one is at most this many times larger.
MERGE_RATIO = 4
# Rebuild a segment when more than this share of its slots is dead.
MAX_DEAD_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Match:
    entry: WatchlistEntry
    kind: str  # exact | ocr | fuzzy | pattern
    distance: int
    # The OCR candidate that matched and its rank (1-based); None and 0 when the read's best plate matched.
    candidate: Candidate | None = None
    candidate_rank: int = 0

    @property
    def matched_plate(self) -> str | None:
        """The candidate's text when a candidate matched; None: the read's best plate."""
        return None if self.candidate is None else self.candidate.plate


def _sort_key(match: Match) -> tuple[int, int, int, str]:
    return (match.entry.priority, KIND_ORDER[match.kind], match.distance, match.entry.entry_id)


class WatchlistIndex:
    """Immutable; build with `WatchlistIndex.build(entries)`. Later duplicates of an entry_id replace earlier."""

    __slots__ = ("_dead", "_segments", "_size")

    def __init__(self, segments: tuple[Segment, ...] = (), dead: tuple[frozenset[int], ...] = ()) -> None:
        self._segments = segments
        self._dead = dead
        self._size = sum(len(s) - len(d) for s, d in zip(segments, dead, strict=True))

    @classmethod
    def build(cls, entries: Iterable[WatchlistEntry]) -> WatchlistIndex:
        seen: dict[str, int] = {}
        dead: set[int] = set()

        def track(items: Iterable[WatchlistEntry]) -> Iterator[WatchlistEntry]:
            for slot, entry in enumerate(items):
                earlier = seen.get(entry.entry_id)
                if earlier is not None:
                    dead.add(earlier)
                seen[entry.entry_id] = slot
                yield entry

        segment = Segment(track(entries))
        seen.clear()
        if not len(segment):
            return cls()
        return cls((segment,), (frozenset(dead),))

    def __len__(self) -> int:
        return self._size

    def __contains__(self, entry_id: object) -> bool:
        return isinstance(entry_id, str) and self._locate(entry_id) is not None

    def __iter__(self) -> Iterator[WatchlistEntry]:
        """Live entries, oldest segment first."""
        for segment, dead in zip(self._segments, self._dead, strict=True):
            for slot in range(len(segment)):
                if slot not in dead:
                    yield segment.entry(slot)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def nbytes(self) -> int:
        """Approximate bytes held by the index (segments and dead-slot sets)."""
        return sum(s.nbytes() for s in self._segments) + sum(sys.getsizeof(d) for d in self._dead)

    def _locate(self, entry_id: str) -> tuple[int, int] | None:
        for position in range(len(self._segments) - 1, -1, -1):
            dead = self._dead[position]
            for slot in self._segments[position].slots_of(entry_id):
                if slot not in dead:
                    return position, slot
        return None

    def get(self, entry_id: str) -> WatchlistEntry | None:
        found = self._locate(entry_id)
        return None if found is None else self._segments[found[0]].entry(found[1])

    def with_entries(self, entries: Iterable[WatchlistEntry]) -> WatchlistIndex:
        """A new index with these entries added, replacing live entries with the same entry_id."""
        batch = {entry.entry_id: entry for entry in entries}
        if not batch:
            return self
        dead = self._killed(batch)
        segments = (*self._segments, Segment(batch.values()))
        return _compacted(segments, (*dead, frozenset()))

    def without(self, entry_ids: Iterable[str]) -> WatchlistIndex:
        """A new index without these entries (unknown ids are ignored)."""
        dead = self._killed(set(entry_ids))
        if dead == list(self._dead):
            return self
        return _compacted(self._segments, tuple(dead))

    def _killed(self, entry_ids: Iterable[str]) -> list[frozenset[int]]:
        extra: list[set[int]] = [set() for _ in self._segments]
        for entry_id in entry_ids:
            found = self._locate(entry_id)
            if found is not None:
                extra[found[0]].add(found[1])
        return [d | e if e else d for d, e in zip(self._dead, extra, strict=True)]

    def match(self, plate: str, observed_at: datetime, policy: MatchPolicy) -> list[Match]:
        """Every entry that applies at `observed_at` and matches the plate (raw or normalised), best first."""
        normalised = normalise(plate)
        if not normalised:
            return []
        return self.match_normalised(normalised, confusion_form(normalised), observed_at, policy)

    def match_normalised(self, normalised: str, form: str, observed_at: datetime, policy: MatchPolicy) -> list[Match]:
        """`match` of a plate normalised already, with its confusion form (the worker computes both once a read)."""
        if not normalised:
            return []
        max_distance = policy.max_distance
        # Up to distance 1 a segment's native table (when it has one) finds and verifies the hits (see Segment).
        native = accel.native is not None and max_distance <= 1
        hashes: list[int] | None = None
        matches: list[Match] = []
        for segment, dead in zip(self._segments, self._dead, strict=True):
            found = segment.native_hits(normalised, form, max_distance == 1) if native else None
            if found is not None:
                if not found:
                    continue
                # Fuzzy hits came for every list: each list's own distance decides (0: no fuzzy matching).
                hits = [
                    (slot, KINDS[code], distance)
                    for slot, code, distance in found
                    if code != FUZZY or policy.for_list(segment.list_name(slot)).max_distance >= distance
                ]
            else:
                if hashes is None and max_distance <= 1:
                    hashes = _key_hashes(form, max_distance)  # once a read, for every segment that needs them
                hits = _python_hits(segment, normalised, form, policy, hashes)
            if not hits:
                continue
            moment = to_microseconds(observed_at)
            valid_from = segment.valid_from
            valid_until = segment.valid_until
            for slot, kind, distance in hits:
                if slot not in dead and valid_from[slot] <= moment < valid_until[slot]:
                    matches.append(Match(segment.entry(slot), kind, distance))
        if len(matches) > 1:
            matches.sort(key=_sort_key)
        return matches


def _key_hashes(form: str, max_distance: int) -> list[int]:
    """The read's keys in the Python variant table: its form, and at distance 1 its single-character deletions."""
    if max_distance == 1:
        # As tuples: combinations() builds them in one C call.
        return [hash(tuple(form)), *map(hash, combinations(form, len(form) - 1))]
    return [hash(tuple(form))]


def _python_hits(
    segment: Segment, normalised: str, form: str, policy: MatchPolicy, hashes: list[int] | None
) -> list[tuple[int, str, int]]:
    """The reference's (slot, kind, distance) hits in one segment, before dead slots and validity. `hashes`: the
    read's key hashes up to distance 1; None above, where the slow scan finds the candidates (see Segment)."""
    slots = segment.candidates(hashes) if hashes is not None else segment.candidates_far(form, policy.max_distance)
    hits = [(slot, "pattern", 0) for slot in segment.pattern_hits(form)]
    records = segment.records
    for slot in set(slots) if len(slots) > 1 else slots:
        entry_plate = records[slot].partition(FIELD_SEP)[0]
        if entry_plate == normalised:
            hits.append((slot, "exact", 0))
            continue
        entry_form = confusion_form(entry_plate)
        if entry_form == form:
            hits.append((slot, "ocr", 0))
        elif len(entry_plate) >= MIN_FUZZY_LENGTH:
            allowed = policy.for_list(segment.list_name(slot)).max_distance
            if allowed:
                distance = Levenshtein.distance(entry_form, form, score_cutoff=allowed)
                if distance <= allowed:
                    hits.append((slot, "fuzzy", distance))
    return hits


def _compacted(segments: tuple[Segment, ...], dead: tuple[frozenset[int], ...]) -> WatchlistIndex:
    """Merge small newest segments into older ones and rebuild mostly-dead ones."""
    segs = list(segments)
    deads = list(dead)

    def live(i: int) -> int:
        return len(segs[i]) - len(deads[i])

    def entries(i: int) -> Iterator[WatchlistEntry]:
        return (segs[i].entry(slot) for slot in range(len(segs[i])) if slot not in deads[i])

    i = 0
    while i < len(segs):
        if live(i) == 0:
            del segs[i], deads[i]
        elif deads[i] and len(deads[i]) > MAX_DEAD_SHARE * len(segs[i]):
            segs[i], deads[i] = Segment(entries(i)), frozenset()
        else:
            i += 1
    while len(segs) >= 2 and live(-2) <= MERGE_RATIO * live(-1):
        merged = Segment([*entries(-2), *entries(-1)])
        segs[-2:] = [merged]
        deads[-2:] = [frozenset()]
    return WatchlistIndex(tuple(segs), tuple(deads))
