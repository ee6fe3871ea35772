"""An immutable block of watchlist entries stored column-wise, with hash tables for exact, OCR and fuzzy lookup.

Millions of entries must fit in a few hundred bytes each, so nothing here holds one Python object per entry
except one record string: every other field is a column (`array`, `bytes`), and lookups go through 64-bit keys.

Fuzzy matching at distance 1 uses symmetric deletion: two strings are within Levenshtein distance 1 only if one
equals the other, or one equals the other with one character deleted, or both are equal after deleting one
character each. Each entry's confusion form is stored under its own hash and under the hash of each of its
single-character deletions; a read queries its form and its deletions, and every candidate is verified exactly.
Keys are Python hashes of tuples of characters (`itertools.combinations` builds all deletions in one C call).
Python salts str hashes per process, so an index lives in one process and is never persisted or shipped.

When the native core is loaded at construction, the segment builds its native twin of that lookup (FormTable,
native/src/segment.rs: the same symmetric deletion, with the verification done natively) instead of the Python
variant table, which is then built only if the segment is queried by the Python path (`_table`: under the reference,
above distance 1, or for plates the native table does not handle). Both tables at once would cost a third more memory
(each is about 100 bytes an entry), and the Python table's build is a third of a segment's build time. The pattern
regexes and the id table are small or needed by both paths and always built.
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate, combinations

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from anpr_stream.core import accel
from anpr_stream.core.entry import WatchlistEntry
from anpr_stream.core.plates import confusion_form

# The entry's normalised plate must have at least this many characters for a fuzzy hit: shorter plates would
# sit within distance 1 of far too much ordinary traffic.
MIN_FUZZY_LENGTH = 5

# A table item is one 64-bit integer: the top 35 bits of the key's hash, a flag (key is a deletion variant)
# and the entry's slot in the segment. Table buckets are selected by the top bits of the hash too.
SLOT_BITS = 28
MAX_SEGMENT = 1 << SLOT_BITS
SLOT_MASK = MAX_SEGMENT - 1
DELETION = 1 << SLOT_BITS
TAG_MASK = ((1 << 64) - 1) ^ ((1 << (SLOT_BITS + 1)) - 1)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
OPEN_START = -(1 << 63)
OPEN_END = (1 << 63) - 1
FIELD_SEP = "\x1f"


def to_microseconds(moment: datetime) -> int:
    """Microseconds since the epoch: exact integers, so validity edges compare without rounding."""
    return (moment - EPOCH) // ONE_MICROSECOND


def _from_microseconds(value: int, offset_seconds: int) -> datetime:
    return (EPOCH + timedelta(microseconds=value)).astimezone(timezone(timedelta(seconds=offset_seconds)))


def _offset_seconds(moment: datetime) -> int:
    return int((moment.utcoffset() or timedelta(0)).total_seconds())


class HashTable:
    """64-bit items grouped in buckets by the top bits of their hash: one directory read, then a short scan."""

    __slots__ = ("_items", "_shift", "_starts")

    def __init__(self, items: array[int]) -> None:
        bits = max(1, len(items).bit_length())
        shift = 64 - bits
        counts = array("I", bytes(4 * ((1 << bits) + 1)))
        for item in items:
            counts[item >> shift] += 1
        starts = array("I", accumulate(counts, initial=0))
        del starts[-1]
        fill = array("I", starts)
        placed = array("Q", bytes(8 * len(items)))
        for item in items:
            bucket = item >> shift
            position = fill[bucket]
            placed[position] = item
            fill[bucket] = position + 1
        self._items = placed
        self._shift = shift
        self._starts = starts

    def probe(self, key_hashes: Iterable[int], deletions_too: bool) -> list[int]:
        """Slots stored under these key hashes (only full forms unless `deletions_too`); may repeat a slot."""
        starts = self._starts
        items = self._items
        shift = self._shift
        found = []
        for key_hash in key_hashes:
            tag = key_hash & TAG_MASK
            bucket = tag >> shift
            position = starts[bucket]
            end = starts[bucket + 1]
            while position < end:
                item = items[position]
                if item & TAG_MASK == tag and (deletions_too or not item & DELETION):
                    found.append(item & SLOT_MASK)
                position += 1
        return found

    def nbytes(self) -> int:
        return sys.getsizeof(self._items) + sys.getsizeof(self._starts)


def _add_variants(items: array[int], form: str, slot: int) -> None:
    """A non-pattern entry's items: its form, and its single-character deletions when long enough to match fuzzily."""
    items.append((hash(tuple(form)) & TAG_MASK) | slot)
    if len(form) >= MIN_FUZZY_LENGTH:
        flagged = DELETION | slot
        items.extend([(h & TAG_MASK) | flagged for h in set(map(hash, combinations(form, len(form) - 1)))])


def _pattern_prefix(form: str) -> str:
    """The first (up to two) literal characters of a pattern: its bucket, so a read tries few regexes."""
    literal = re.match(r"[^?*]{0,2}", form)
    return literal.group() if literal else ""


class Segment:
    """Entries in slots 0..n-1; never changes after construction (the index marks replaced slots dead).

    Per slot: one record string `normalised US entry_id US plate US reference` (US = unit separator, which
    validation keeps out of every field), codes of list, action and country into `symbols`, priority and covert
    bytes, validity bounds in microseconds (open bounds as the int64 extremes) and their UTC offsets.
    """

    __slots__ = (
        "_fuzzy_forms",
        "_ids",
        "_native",
        "_patterns_fixed",
        "_patterns_open",
        "_variants",
        "codes",
        "covert",
        "offsets",
        "priority",
        "records",
        "symbols",
        "valid_from",
        "valid_until",
    )

    def __init__(self, entries: Iterable[WatchlistEntry]) -> None:
        records: list[str] = []
        symbol_codes: dict[str, int] = {}
        triples: dict[tuple[str, str, str], tuple[int, int, int]] = {}
        codes = array("I")
        priority = bytearray()
        covert = bytearray()
        valid_from = array("q")
        valid_until = array("q")
        offsets = array("i")
        variant_items = array("Q")
        id_items = array("Q")
        fixed: dict[int, dict[str, list[tuple[int, re.Pattern[str]]]]] = {}
        open_: dict[str, list[tuple[int, int, re.Pattern[str]]]] = {}
        sep = FIELD_SEP
        fast = accel.native
        for slot, entry in enumerate(entries):
            if slot >= MAX_SEGMENT:
                raise ValueError(f"a segment holds at most {MAX_SEGMENT} entries")
            plate = entry.plate
            normalised = entry.normalised
            records.append(sep.join((normalised, entry.entry_id, plate, entry.reference)))
            symbols = (entry.list, entry.action, entry.country or "")
            triple = triples.get(symbols)
            if triple is None:
                list_code, action_code, country_code = (
                    symbol_codes.setdefault(symbol, len(symbol_codes)) for symbol in symbols
                )
                triple = triples[symbols] = (list_code, action_code, country_code)
            codes.extend(triple)
            priority.append(entry.priority)
            covert.append(entry.covert)
            start, end = entry.valid_from, entry.valid_until
            if start is None:
                valid_from.append(OPEN_START)
                offsets.append(0)
            else:
                valid_from.append(to_microseconds(start))
                offsets.append(_offset_seconds(start))
            if end is None:
                valid_until.append(OPEN_END)
                offsets.append(0)
            else:
                valid_until.append(to_microseconds(end))
                offsets.append(_offset_seconds(end))
            id_items.append((hash(entry.entry_id) & TAG_MASK) | slot)
            if "?" in normalised or "*" in normalised:  # confusion_form keeps both and makes neither
                form = confusion_form(normalised)
                regex = re.compile(form.replace("?", ".").replace("*", ".*"))
                prefix = _pattern_prefix(form)
                if "*" in form:
                    open_.setdefault(prefix, []).append((len(form) - form.count("*"), slot, regex))
                else:
                    fixed.setdefault(len(form), {}).setdefault(prefix, []).append((slot, regex))
                continue
            if fast is None:
                _add_variants(variant_items, confusion_form(normalised), slot)
        self.records = records
        self.symbols = tuple(symbol_codes)
        self.codes = codes
        self.priority = bytes(priority)
        self.covert = bytes(covert)
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.offsets = offsets
        self._native = None if fast is None else fast.form_table(records)
        # Under the native core the Python table waits for `_table` (also when form_table declined the segment).
        self._variants: HashTable | None = HashTable(variant_items) if fast is None else None
        del variant_items
        self._ids = HashTable(id_items)
        self._patterns_fixed = {n: {k: tuple(p) for k, p in by.items()} for n, by in fixed.items()}
        self._patterns_open = {key: tuple(p) for key, p in open_.items()}
        self._fuzzy_forms: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.records)

    def entry(self, slot: int) -> WatchlistEntry:
        """Rebuild the entry stored in a slot."""
        _, entry_id, plate, reference = self.records[slot].split(FIELD_SEP)
        symbols = self.symbols
        codes = self.codes
        start = self.valid_from[slot]
        end = self.valid_until[slot]
        return WatchlistEntry(
            entry_id=entry_id,
            list=symbols[codes[3 * slot]],
            plate=plate,
            country=symbols[codes[3 * slot + 2]] or None,
            priority=self.priority[slot],
            action=symbols[codes[3 * slot + 1]],
            valid_from=None if start == OPEN_START else _from_microseconds(start, self.offsets[2 * slot]),
            valid_until=None if end == OPEN_END else _from_microseconds(end, self.offsets[2 * slot + 1]),
            reference=reference,
            covert=bool(self.covert[slot]),
        )

    def entry_id(self, slot: int) -> str:
        return self.records[slot].split(FIELD_SEP, 2)[1]

    def list_name(self, slot: int) -> str:
        return self.symbols[self.codes[3 * slot]]

    def slots_of(self, entry_id: str) -> list[int]:
        """Slots holding an entry id (more than one only if the id was repeated in the input)."""
        found = self._ids.probe((hash(entry_id),), False)
        return sorted(slot for slot in set(found) if self.entry_id(slot) == entry_id)

    def _table(self) -> HashTable:
        """The Python variant table, built on first use when the native one was built instead (see the module)."""
        table = self._variants
        if table is None:
            # A race only builds it twice.
            items = array("Q")
            for slot, record in enumerate(self.records):
                normalised = record.partition(FIELD_SEP)[0]
                if "?" not in normalised and "*" not in normalised:
                    _add_variants(items, confusion_form(normalised), slot)
            table = self._variants = HashTable(items)
        return table

    def native_hits(self, normalised: str, form: str, fuzzy: bool) -> list[tuple[int, int, int]] | None:
        """(slot, kind code, distance) from the native table (FormTable.probe); None: no table, or Python decides."""
        table = self._native
        return None if table is None else table.probe(normalised, form, fuzzy)

    def candidates(self, key_hashes: list[int]) -> list[int]:
        """Slots sharing the confusion form (one key hash) or maybe within distance 1 (form and deletions)."""
        return self._table().probe(key_hashes, len(key_hashes) > 1)

    def candidates_far(self, form: str, max_distance: int) -> list[int]:
        """Slow path for distances above 1: shared form by hash, fuzzy by a full scan (C loop in rapidfuzz)."""
        found = self._table().probe((hash(tuple(form)),), False)
        if self._fuzzy_forms is None:
            # Built on first use and cached: only distance-2+ policies pay for it. A race only computes it twice.
            forms: list[str | None] = []
            for record in self.records:
                normalised = record.partition(FIELD_SEP)[0]
                usable = len(normalised) >= MIN_FUZZY_LENGTH and "?" not in normalised and "*" not in normalised
                forms.append(confusion_form(normalised) if usable else None)
            self._fuzzy_forms = forms
        for _, _, slot in process.extract(
            form, self._fuzzy_forms, scorer=Levenshtein.distance, score_cutoff=max_distance, limit=None
        ):
            found.append(slot)
        return found

    def pattern_hits(self, form: str) -> list[int]:
        """Slots of pattern entries whose pattern matches the whole confusion form."""
        found = []
        prefixes = ("", form[:1], form[:2]) if len(form) >= 2 else ("", form)
        by_prefix = self._patterns_fixed.get(len(form))
        if by_prefix:
            for prefix in prefixes:
                for slot, regex in by_prefix.get(prefix, ()):
                    if regex.fullmatch(form) is not None:
                        found.append(slot)
        if self._patterns_open:
            length = len(form)
            for prefix in prefixes:
                for min_length, slot, regex in self._patterns_open.get(prefix, ()):
                    if min_length <= length and regex.fullmatch(form) is not None:
                        found.append(slot)
        return found

    def nbytes(self) -> int:
        """Bytes held by this segment (containers and the objects only it holds), for memory reports."""
        size = sys.getsizeof(self.records) + sum(sys.getsizeof(r) for r in self.records)
        for column in (self.codes, self.priority, self.covert, self.valid_from, self.valid_until, self.offsets):
            size += sys.getsizeof(column)
        if self._variants is not None:
            size += self._variants.nbytes()
        if self._native is not None:
            size += self._native.nbytes()
        return size + self._ids.nbytes()
