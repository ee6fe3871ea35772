"""`plate_format` (one alternation per country order) against `plate_formats` (a loop over every format's own
regex): the first format that fits, for any text and country hint."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from anpr_stream.core.plates import plate_format, plate_formats
from anpr_stream.core.plates.formats import COUNTRIES

PLATE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
countries = st.sampled_from([None, "", "GB", "be", *COUNTRIES])


@given(st.text(PLATE_CHARS, max_size=12), countries)
def test_first_fitting_format(normalised: str, country: str | None) -> None:
    fits = plate_formats(normalised, country)
    assert plate_format(normalised, country) == (fits[0] if fits else None)


@given(
    st.sampled_from(COUNTRIES),
    st.from_regex(r"[1-9][A-Z]{3}[0-9]{3}|[A-Z]{2}[0-9]{4}|[A-Z]{2,3}[1-9][0-9]{0,3}[EH]?|[0-9]{1,4}[A-Z]{2}97[1-6]",
                  fullmatch=True),
)  # fmt: skip
def test_plates_of_the_zone(country: str, normalised: str) -> None:
    fits = plate_formats(normalised, country)
    assert fits, normalised  # each generated plate fits some format: the comparison below is not vacuous
    assert plate_format(normalised, country) == fits[0]
