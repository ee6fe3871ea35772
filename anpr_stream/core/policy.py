"""Per-list match policy: how far fuzzy matching may reach, and whether hits are dispatched or only logged.

Compact form for the environment (ANPR_MATCH_POLICY), clauses separated by `;`:

    default=fuzzy:1;biker_club=fuzzy:0,log-only;stolen_vehicle=fuzzy:2

Each clause is `NAME=OPTION[,OPTION...]`, NAME being `default` or a list name (lower_snake_case). Options:
`fuzzy:N` (maximum Levenshtein distance, 0 = off; `exact` is the same as `fuzzy:0`), `dispatch` or `log-only`,
`candidates:N` (also match the read's first N OCR candidates, 0-10, 0 = off) and `candidate-confidence:X` (only
candidates of confidence X or more, 0-1; a candidate without a confidence passes only at 0).
A list clause inherits every option it does not set from the default clause; the default clause itself starts
from fuzzy:0,dispatch,candidates:0,candidate-confidence:0. Whitespace around tokens is ignored; an empty string is the
all-default policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

MAX_FUZZY_DISTANCE = 3
MAX_CANDIDATES = 10  # as many as a reading may carry (core/readings.py)

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ListPolicy:
    fuzzy: bool = False
    max_distance: int = 0
    dispatch: bool = True
    # How many of the read's OCR candidates (top-N alternatives, rank order) to match too; 0: the best plate only.
    candidates: int = 0
    min_candidate_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.fuzzy and not 1 <= self.max_distance <= MAX_FUZZY_DISTANCE:
            raise ValueError(f"fuzzy matching needs a max_distance from 1 to {MAX_FUZZY_DISTANCE}")
        if not self.fuzzy and self.max_distance != 0:
            raise ValueError("max_distance must be 0 when fuzzy matching is off")
        if not 0 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(f"candidates must be from 0 to {MAX_CANDIDATES}")
        if not 0 <= self.min_candidate_confidence <= 1:  # NaN fails too
            raise ValueError("min_candidate_confidence must be from 0 to 1")

    @classmethod
    def with_distance(cls, max_distance: int, dispatch: bool = True) -> ListPolicy:
        return cls(fuzzy=max_distance > 0, max_distance=max_distance, dispatch=dispatch)

    def takes_candidate(self, rank: int, confidence: float | None) -> bool:
        """Whether a candidate of this rank (1-based) and confidence is matched on this list."""
        if rank > self.candidates:
            return False
        if confidence is None:
            return self.min_candidate_confidence == 0
        return confidence >= self.min_candidate_confidence

    def to_string(self, candidates: bool = False) -> str:
        """The options of this list; the candidate options when set, or always with `candidates` (a list clause
        that does not set them inherits the default clause's)."""
        text = f"fuzzy:{self.max_distance}," + ("dispatch" if self.dispatch else "log-only")
        if self.candidates or candidates:
            text += f",candidates:{self.candidates}"
        if self.min_candidate_confidence or candidates:
            spelled = repr(self.min_candidate_confidence)  # round-trips; the parser takes no exponent
            if "e" in spelled:
                spelled = f"{self.min_candidate_confidence:.20f}"
            text += f",candidate-confidence:{spelled}"
        return text


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    default: ListPolicy = field(default_factory=ListPolicy)
    per_list: Mapping[str, ListPolicy] = field(default_factory=lambda: MappingProxyType({}))
    max_distance: int = field(init=False, compare=False)
    max_candidates: int = field(init=False, compare=False)  # 0: no list matches candidates (nothing more to do)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_list", MappingProxyType(dict(self.per_list)))
        policies = [self.default, *self.per_list.values()]
        object.__setattr__(self, "max_distance", max(p.max_distance for p in policies))
        object.__setattr__(self, "max_candidates", max(p.candidates for p in policies))

    def for_list(self, name: str) -> ListPolicy:
        return self.per_list.get(name, self.default)

    @classmethod
    def uniform(cls, max_distance: int) -> MatchPolicy:
        """The CLI's `--max-distance N`: the same fuzzy distance for every list, all hits dispatched."""
        return cls(default=ListPolicy.with_distance(max_distance))

    @classmethod
    def parse(cls, text: str) -> MatchPolicy:
        """Parse the compact form (see the module docstring); ValueError with the offending clause otherwise."""
        clauses: dict[str, list[str]] = {}
        for raw_clause in text.split(";"):
            clause = raw_clause.strip()
            if not clause:
                continue
            name, sep, options = clause.partition("=")
            name = name.strip()
            if not sep or _NAME.fullmatch(name) is None:
                raise ValueError(f"match policy clause {clause!r}: expected NAME=OPTION[,OPTION...]")
            if name in clauses:
                raise ValueError(f"match policy: {name!r} is given twice")
            clauses[name] = [o.strip() for o in options.split(",")]
        default = _apply(ListPolicy(), clauses.pop("default", []), "default")
        return cls(default=default, per_list={n: _apply(default, o, n) for n, o in clauses.items()})

    def to_string(self) -> str:
        full = any(p.candidates or p.min_candidate_confidence for p in (self.default, *self.per_list.values()))
        parts = [f"default={self.default.to_string(full)}"]
        parts += [f"{name}={p.to_string(full)}" for name, p in sorted(self.per_list.items())]
        return ";".join(parts)


def _apply(base: ListPolicy, options: list[str], name: str) -> ListPolicy:
    distance = base.max_distance
    dispatch = base.dispatch
    candidates = base.candidates
    min_confidence = base.min_candidate_confidence
    seen: set[str] = set()
    for option in options:
        key, _, value = option.partition(":")
        key = key.strip()
        if key in ("fuzzy", "exact"):
            kind = "distance"
            if key == "exact" and value:
                raise ValueError(f"match policy {name}: 'exact' takes no value")
            value = value.strip() if key == "fuzzy" else "0"
            if not value.isdigit() or not value.isascii() or int(value) > MAX_FUZZY_DISTANCE:
                raise ValueError(f"match policy {name}: {option!r} needs a distance from 0 to {MAX_FUZZY_DISTANCE}")
            distance = int(value)
        elif key in ("dispatch", "log-only") and not value:
            kind = "dispatch"
            dispatch = key == "dispatch"
        elif key == "candidates":
            kind = "candidates"
            value = value.strip()
            if not value.isdigit() or not value.isascii() or int(value) > MAX_CANDIDATES:
                raise ValueError(f"match policy {name}: {option!r} needs a count from 0 to {MAX_CANDIDATES}")
            candidates = int(value)
        elif key == "candidate-confidence":
            kind = "candidate-confidence"
            min_confidence = _confidence(value.strip(), option, name)
        else:
            raise ValueError(
                f"match policy {name}: unknown option {option!r} (expected fuzzy:N, exact, dispatch, log-only, "
                "candidates:N or candidate-confidence:X)"
            )
        if kind in seen:
            raise ValueError(f"match policy {name}: {kind} is set twice")
        seen.add(kind)
    return ListPolicy(distance > 0, distance, dispatch, candidates, min_confidence)


def _confidence(text: str, option: str, name: str) -> float:
    # Digits and one point only: float() would also take "nan", "inf", "1e-1" and "٠.٥".
    if not text.isascii() or re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text) is None or not 0 <= float(text) <= 1:
        raise ValueError(f"match policy {name}: {option!r} needs a confidence from 0 to 1")
    return float(text)
