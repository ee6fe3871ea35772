"""Pure matching core: the immutable watchlist index, the matcher (with OCR candidates) and hit scoring."""

from anpr_stream.core.matching.candidates import match_normalised_read, match_read
from anpr_stream.core.matching.index import KIND_ORDER, Match, WatchlistIndex
from anpr_stream.core.matching.scoring import score_match
from anpr_stream.core.matching.segment import MIN_FUZZY_LENGTH

__all__ = [
    "KIND_ORDER",
    "MIN_FUZZY_LENGTH",
    "Match",
    "WatchlistIndex",
    "match_normalised_read",
    "match_read",
    "score_match",
]
