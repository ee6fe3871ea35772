"""The SQL confusion class of api/passage_queries.py is plates/confusion.py's: a search by plate through the class
index (Key.PLATE) finds every passage of the plate only if both map every plate character alike."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from anpr_stream.api.passage_queries import Key, class_sql
from anpr_stream.core.plates import confusion_form

PLATE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def sql_translate(text: str, sql: str) -> str:
    """PostgreSQL's translate(text, from, to) as the fragment spells it: each character of `from` becomes the one at
    its position in `to` (none here is dropped: both are as long)."""
    found = re.fullmatch(r"translate\(x, '([A-Z0-9]*)', '([A-Z0-9]*)'\)", sql)
    assert found is not None, sql
    source, target = found.groups()
    assert len(source) == len(target) and len(set(source)) == len(source)
    return text.translate(str.maketrans(source, target))


@given(st.text(PLATE_CHARS, min_size=1, max_size=16))
def test_sql_class_is_the_confusion_form(plate: str) -> None:
    assert sql_translate(plate, class_sql("x")) == confusion_form(plate)


def test_plate_keys_go_through_the_class_index_and_recheck_the_plate() -> None:
    assert Key.PLATE.value.startswith(f"plate_class = {class_sql('$1')}") and "plate_norm = $1" in Key.PLATE.value
    assert "plate_norm = ANY($1::text[])" in Key.PLATES.value and class_sql("p") in Key.PLATES.value
