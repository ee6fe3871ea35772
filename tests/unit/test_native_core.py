"""The native core (native/, anpr_native) against the Python reference, differentially: it may only accept what the
reference accepts, and whatever it returns is exactly what the reference produces, value and type alike; and it does
accept ordinary camera reads, or it would speed nothing up."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anpr_stream.core import accel, readings
from anpr_stream.core.identity import epoch_micros, passage_key
from anpr_stream.core.message import MAX_MESSAGE_BYTES, decode, decode_reference
from anpr_stream.core.plates import confusion_form, normalise
from anpr_stream.core.readings import Reading
from anpr_stream.core.record import InRecord
from anpr_stream.traffic.generator import generate

ROOT = Path(__file__).resolve().parents[2]


def test_which_core_loaded() -> None:
    """Says which implementation this run uses; under `make test` (ANPR_EXPECT_NATIVE=1) it must be the native one,
    or the suite would pass without ever running it."""
    print(f"core implementation: {accel.IMPLEMENTATION} (available: {', '.join(accel.available())})")
    if os.environ.get("ANPR_EXPECT_NATIVE") == "1":
        assert accel.IMPLEMENTATION == accel.NATIVE, "anpr_native is not installed: pip install ./native"


@pytest.fixture(scope="module")
def native() -> accel.NativeCore:
    if accel.NATIVE not in accel.available():
        pytest.skip("anpr_native is not installed (pip install ./native)")
    with accel.use(accel.NATIVE):
        loaded = accel.native
    assert loaded is not None
    return loaded


def test_use_switches_every_caller_and_refuses_what_cannot_load() -> None:
    with accel.use(accel.PYTHON):
        assert accel.native is None and accel.IMPLEMENTATION == accel.PYTHON
    with pytest.raises(ValueError, match="not available"):
        accel.use("cython").__enter__()


def test_the_native_limits_are_the_reference_ones(native: accel.NativeCore) -> None:
    assert {
        "MAX_MESSAGE_BYTES": MAX_MESSAGE_BYTES,
        "MAX_ID": readings.MAX_ID,
        "MAX_RAW_PLATE": readings.MAX_RAW_PLATE,
        "MAX_NORMALISED_PLATE": readings.MAX_NORMALISED_PLATE,
        "MAX_EXTRA_FIELDS": readings.MAX_EXTRA_FIELDS,
        "MAX_EXTRA_KEY": readings.MAX_EXTRA_KEY,
        "MAX_EXTRA_STRING": readings.MAX_EXTRA_STRING,
        "MAX_SAFE_INTEGER": readings.MAX_SAFE_INTEGER,
        "EARLIEST_MICROS": epoch_micros(readings.EARLIEST),
    } == native.LIMITS
    # decode_read sets these attributes itself: a field added to Reading must be added there too.
    assert tuple(f.name for f in dataclasses.fields(Reading)) == native.READING_ATTRS


# --- exact comparison ----------------------------------------------------------------------------------------------


def typed(value: object) -> object:
    """A value with its type at every level, floats by their bits (-0.0 is not 0.0), datetimes with their tzinfo."""
    if isinstance(value, Reading):
        return ("Reading", *(typed(getattr(value, f.name)) for f in dataclasses.fields(Reading)))
    if isinstance(value, dict):
        return ("dict", tuple((typed(k), typed(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(typed(v) for v in value))
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), value.tzinfo, type(value.tzinfo))
    return (type(value).__name__, value)


def record(value: bytes) -> InRecord:
    return InRecord("anpr.reads", 0, 0, b"cam", value, 0)


def reference(value: bytes) -> Reading | str:
    with accel.use(accel.PYTHON):
        return decode_reference(record(value))


def check(native: accel.NativeCore, value: bytes) -> bool:
    """Whether the native core accepted the message; when it did, that it agrees with the reference exactly."""
    parsed = native.parse_read(value)
    built = native.decode_read(value, Reading)
    assert (parsed is None) == (built is None)
    if parsed is None or built is None:
        return False
    expected = reference(value)
    assert isinstance(expected, Reading), f"native accepted {value!r}, which the reference refuses: {expected}"
    with accel.use(accel.PYTHON):
        form = confusion_form(expected.plate_norm)
        key = passage_key(expected.read_id, expected.camera_id, expected.observed_at, expected.plate_norm)
    own = (expected.read_id, expected.camera_id, expected.observed_at, expected.plate, expected.country)
    assert typed(parsed) == typed((*own, expected.confidence, expected.extra, expected.plate_norm, form, key))
    reading, plate_class, reading_key = built
    assert typed(reading) == typed(expected) and reading == expected
    assert (plate_class, reading_key) == (form, key)
    with accel.use(accel.NATIVE):
        assert typed(decode(record(value))) == typed(expected)
    return True


# --- messages ------------------------------------------------------------------------------------------------------

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ANY_CHAR = st.characters(codec="utf-8")


def json_string(text: str, escape_all: bool = False) -> str:
    if escape_all:
        return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text) + '"'
    return orjson.dumps(text).decode()


@st.composite
def strings(draw: st.DrawFn, sizes: tuple[int, ...] = ()) -> str:
    """A JSON string: mostly printable ASCII, sometimes of a size at a limit, escaped, or with a control or a
    non-ASCII character."""
    size = draw(st.sampled_from(sizes) if sizes and draw(st.booleans()) else st.integers(0, 12))
    text = draw(st.text(PRINTABLE, min_size=size, max_size=size))
    flavour = draw(st.sampled_from(["plain"] * 6 + ["escaped", "control", "unicode", "raw-control"]))
    if flavour == "control" and text:
        text = text[:-1] + draw(st.sampled_from("\x00\x01\t\n\x1f\x7f"))
    elif flavour == "unicode":
        text += draw(ANY_CHAR)
    result = json_string(text, escape_all=flavour == "escaped")
    if flavour == "raw-control" and len(result) > 2:
        result = result[:-1] + draw(st.sampled_from(["\x01", "\x7f", "\\u0000", "\\n", "\\/", '\\"', "\\\\"])) + '"'
    return result


NUMBER_TEXTS = [
    "0", "1", "-0", "-0.0", "0.0", "1.0", "0.93", "1e0", "1E-1", "0.5e1", "1e308", "1e309", "1E400", "5e-324",
    "1e-400", "2.2250738585072011e-308", "0.1000000000000000055511151231257827", "9007199254740991",
    "9007199254740992", "-9007199254740991", "-9007199254740992", "9223372036854775807", "9223372036854775808",
    "18446744073709551616", "-9223372036854775809", "01", "1.", ".5", "+1", "1e", "NaN", "Infinity", "true",
    "false", "null", "1.5", "-1", "2", "0.9999999999999999999",
]  # fmt: skip


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_TEXTS),
        st.integers(-(2**64), 2**64).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.floats(0, 1).map(repr),
        st.tuples(st.integers(0, 10**20), st.integers(-330, 330)).map(lambda t: f"{t[0]}e{t[1]}"),
    )


def scalars() -> st.SearchStrategy[str]:
    return st.one_of(
        strings((32, 33, 512, 513, 1024, 1025)),
        numbers(),
        st.sampled_from(['{"type":"car"}', "[1]", "[]", "{}", '{"plate":"AB1"}', '[{"plate":"1ABC123"}]']),
    )


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    def part(low: int, high: int, width: int) -> str:
        return f"{draw(st.integers(low, high)):0{width}d}"

    year = draw(
        st.sampled_from(["1999", "2000", "2025", "2026", "0001", "9999"]) | st.builds(str, st.integers(2000, 2100))
    )
    text = f"{year}-{part(0, 13, 2)}-{part(0, 32, 2)}{draw(st.sampled_from('Tt x'))}"
    text += f"{part(0, 24, 2)}:{part(0, 60, 2)}:{part(0, 60, 2)}"
    if draw(st.booleans()):
        text += "." + draw(st.text(st.sampled_from("0123456789"), min_size=0, max_size=11))
    offset = draw(st.sampled_from(["Z", "z", "", "+", "-", "+00:00", "-00:00", "+14:00", "+23:59", "+24:00"]))
    if offset in "+-" and offset:
        offset += f"{part(0, 24, 2)}:{part(0, 60, 2)}"
    return text + offset


@st.composite
def valid_instant(draw: st.DrawFn) -> str:
    """An instant from 2000 on as cameras write it: any offset, a fraction of 0, 3 or 6 digits, Z for UTC."""
    offset = timezone(timedelta(minutes=draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))))
    at = draw(st.datetimes(datetime(2000, 1, 2), datetime(2099, 1, 1), timezones=st.just(offset)))
    timespec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    text = at.isoformat(draw(st.sampled_from("Tt ")), timespec)
    return text.replace("+00:00", draw(st.sampled_from(["+00:00", "Z", "z", "-00:00"])))


COUNTRIES = ['"BE"', '"nl"', '"Fr"', "null", '""', '"B"', '"BEL"', '"B1"', "1", '"\\u0042E"', '"\\u00e9E"']
EXTRA_KEYS = ["direction", "lane", "vehicle", "image_ref", "candidates", "position", "x", "speed_kmh", "", "k" * 64]


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A camera read's JSON text built by hand (number spellings, escapes, whitespace and duplicate keys are
    messages orjson.dumps never writes), valid or mutated."""

    def mostly(valid: st.SearchStrategy[str], adversarial: st.SearchStrategy[str]) -> str:
        # One field in eight adversarial: a message then keeps its other fields valid often enough to be accepted.
        return draw(adversarial if draw(st.integers(0, 7)) == 0 else valid)

    ident = st.text(PRINTABLE, min_size=1, max_size=20).filter(str.strip).map(json_string)
    plate = st.text(st.sampled_from("ABCDXYZabc0123456789- ."), min_size=1, max_size=20).filter(
        lambda p: len(normalise(p)) in range(1, 17)
    )
    fields: list[tuple[str, str]] = [
        ("read_id", mostly(ident, strings((0, 1, 128, 129)))),
        ("camera_id", mostly(ident, strings((0, 1, 128, 129)))),
        ("observed_at", json_string(mostly(valid_instant(), timestamps()))),
        ("plate", mostly(plate.map(json_string), st.text(PRINTABLE, max_size=34).map(json_string) | strings((32, 33)))),
        ("country", mostly(st.sampled_from(COUNTRIES[:5]), st.sampled_from(COUNTRIES))),
        ("confidence", mostly(st.floats(0, 1).map(repr), numbers() | st.sampled_from(['"0.9"', "true", "null"]))),
    ]
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(EXTRA_KEYS) | st.text(PRINTABLE, max_size=8))
        fields.append((json_string(key)[1:-1], mostly(st.sampled_from(['"in"', "1", "null", '"2"', "0.5"]), scalars())))
    if draw(st.integers(0, 9)) == 0:
        fields.extend((f"extra_{i}", "1") for i in range(draw(st.integers(25, 34))))
    mutation = draw(st.sampled_from(["none"] * 5 + ["drop", "duplicate", "truncate", "shuffle", "retype"]))
    if mutation == "drop":
        fields.pop(draw(st.integers(0, len(fields) - 1)))
    elif mutation == "duplicate":
        key, _ = fields[draw(st.integers(0, len(fields) - 1))]
        fields.append((key, draw(scalars())))
    elif mutation == "shuffle":
        fields = draw(st.permutations(fields))
    elif mutation == "retype":
        at = draw(st.integers(0, len(fields) - 1))
        fields[at] = (fields[at][0], draw(scalars() | st.sampled_from(["true", "false", "null", "[]"])))
    # JSON's own whitespace, and rarely what only looks like it (form feed, no-break space).
    space = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "] * 20 + ["\x0c", "\xa0"])
    body = ",".join(f'{draw(space)}"{k}"{draw(space)}:{draw(space)}{v}{draw(space)}' for k, v in fields)
    text = f"{draw(space)}{{{body}}}{draw(space)}".encode()
    if mutation == "truncate":
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif draw(st.integers(0, 19)) == 0:
        text += draw(st.sampled_from([b"x", b",", b"}", b"\x00", b"{}"]))
    return text


@settings(max_examples=1500, deadline=None)
@given(messages())
def test_native_accepts_only_what_the_reference_accepts_and_builds_the_same(
    native: accel.NativeCore, value: bytes
) -> None:
    check(native, value)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "read_id": st.text(PRINTABLE, min_size=1, max_size=128).filter(str.strip),
            "camera_id": st.text(PRINTABLE, min_size=1, max_size=128).filter(str.strip),
            "observed_at": valid_instant(),
            "plate": st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcz0123456789- "), min_size=1, max_size=16),
            "country": st.sampled_from([None, "", "BE", "nl", "Lu"]),
            "confidence": st.floats(0, 1) | st.sampled_from([0, 1]),
        },
        optional={
            "direction": st.sampled_from(["in", "out", None]),
            "lane": st.integers(-(2**53) + 1, 2**53 - 1) | st.text(PRINTABLE, max_size=8) | st.none(),
            "vehicle": st.text(PRINTABLE, max_size=32) | st.none(),
            "image_ref": st.text(PRINTABLE, max_size=512) | st.none(),
            "speed_kmh": st.floats(allow_nan=False, allow_infinity=False) | st.booleans() | st.none(),
            "note": st.text(PRINTABLE, max_size=1024),
        },
    ).filter(lambda d: any(c.isalnum() for c in d["plate"]))
)
def test_native_accepts_valid_reads_of_every_shape(native: accel.NativeCore, read: dict[str, Any]) -> None:
    assert check(native, orjson.dumps(read)), read


def benchmark_lines() -> Iterator[bytes]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_matching
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    yield from bench_matching.reading_lines(2000, 12, ["1ABC123", "GX482T"])


def test_native_accepts_every_ordinary_camera_read(native: accel.NativeCore) -> None:
    """The traffic generator's reads (direction, lane, vehicle, image_ref) and the benchmark's: the fast path must
    take them all, or the worker gains nothing."""
    start = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    generated = [orjson.dumps(read) for read in generate(7, start, timedelta(hours=2), 20_000)]
    lines = [*generated, *benchmark_lines()]
    assert len(generated) > 500
    refused = [line for line in lines if not check(native, line)]
    assert refused == []


@given(st.text())
def test_normalise_and_confusion_form_agree_on_any_text(native: accel.NativeCore, text: str) -> None:
    with accel.use(accel.PYTHON):
        expected = (normalise(text), confusion_form(text), confusion_form(normalise(text)))
    with accel.use(accel.NATIVE):
        assert (normalise(text), confusion_form(text), confusion_form(normalise(text))) == expected
    if text.isascii():
        assert native.normalise(text) == expected[0] and native.confusion_form(text) == expected[1]
    else:
        assert native.normalise(text) is None and native.confusion_form(text) is None


@given(st.text(), st.text(), st.datetimes(timezones=st.just(UTC)), st.text())
def test_passage_key_agrees_on_any_text(
    native: accel.NativeCore, read_id: str, camera_id: str, at: datetime, plate: str
) -> None:
    with accel.use(accel.PYTHON):
        expected = passage_key(read_id, camera_id, at, plate)
    assert native.passage_key(read_id, camera_id, epoch_micros(at), plate) == expected
    with accel.use(accel.NATIVE):
        assert passage_key(read_id, camera_id, at, plate) == expected


def test_the_comparison_sees_types_and_signs() -> None:
    """check() relies on typed(): 1 and 1.0, 0.0 and -0.0, and two offsets of one instant must differ there."""
    assert typed(1) != typed(1.0) and typed(0.0) != typed(-0.0) and typed(True) != typed(1)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    local = at.astimezone(timezone(timedelta(hours=1)))
    assert at == local and typed(at) != typed(local)
    assert typed({"a": 1, "b": 2}) != typed({"b": 2, "a": 1})
