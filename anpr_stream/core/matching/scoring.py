"""Hit scores: how likely a hit is the listed vehicle, for ordering alerts (never for dropping them)."""

from __future__ import annotations

from anpr_stream.core.matching.index import Match

# An exact read is as good as it gets. An OCR-equivalent or fuzzy hit on a read that fits no known plate format
# is most likely a misread of the listed plate; the same hit on a read that is itself a well-formed plate may
# just be another car, so it scores lower. Patterns come from witnesses and are the weakest.
_BASE = {"exact": 1.0, "ocr": 0.9, "fuzzy": 0.7, "pattern": 0.5}
_WELL_FORMED_PENALTY = 0.6
_PER_EXTRA_DISTANCE = 0.15
# A hit on an OCR candidate: the engine itself found another reading likelier, the more so the lower the rank.
_PER_CANDIDATE_RANK = 0.8


def score_match(match: Match, read_format: str | None) -> float:
    """A score in (0, 1]: the kind of hit, discounted when the read is itself a valid plate of a known format and
    when an OCR candidate matched (by its rank)."""
    score = _BASE[match.kind]
    if match.kind == "fuzzy":
        score -= _PER_EXTRA_DISTANCE * (match.distance - 1)
    if match.kind in ("ocr", "fuzzy") and read_format is not None:
        score *= _WELL_FORMED_PENALTY
    if match.candidate_rank:
        score *= _PER_CANDIDATE_RANK**match.candidate_rank
    return round(max(score, 0.05), 3)
