"""The read-decoding core's two implementations: the Python reference (message.decode, readings, plates, identity),
always there, and its native twin `anpr_native` (the separate distribution in native/, Rust), used when installed.

As aiokafka's C extensions with their pure-Python fallback: the native code is a fast path that may only accept. For
anything it is not certain about it returns None and the reference decides (and gives the refusal reason); what it
returns is exactly what the reference would (tests/unit/test_native_core.py checks it differentially).

The environment variable ANPR_CORE=python makes a process use the reference although the native module is installed;
anpr_native reads it at import (the core reads no environment) and says so in its ENABLED flag."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

NATIVE, PYTHON = "native", "python"

# parse_read's result: read_id, camera_id, observed_at, plate, country, confidence, extra, plate_norm, plate_class
# (confusion_form of plate_norm), passage_key.
R = TypeVar("R")
ParsedRead = tuple[str, str, datetime, str, str | None, float, dict[str, Any], str, str, str]


class NativeFormTable(Protocol):
    """A matching segment's lookup (native/src/segment.rs), built by NativeCore.form_table."""

    # (slot, kind as index.KIND_ORDER numbers it, distance) of every entry the read matches, each slot once; fuzzy hits
    # (distance 1) only when `fuzzy`, for every list (the caller applies per-list policy). None: Python decides.
    def probe(self, normalised: str, form: str, fuzzy: bool, /) -> list[tuple[int, int, int]] | None: ...
    def nbytes(self) -> int: ...


class NativeCore(Protocol):
    """What anpr_native offers (native/src/lib.rs); typed here so that mypy passes whether it is installed or not."""

    ENABLED: bool
    LIMITS: dict[str, int]

    READING_ATTRS: tuple[str, ...]  # the fields of readings.Reading, as decode_read sets them

    def normalise(self, raw: str, /) -> str | None: ...  # None: not ASCII
    def confusion_form(self, normalised: str, /) -> str | None: ...  # None: not ASCII
    def passage_key(self, read_id: str, camera_id: str, epoch_micros: int, plate_norm: str, /) -> str: ...
    def parse_read(self, value: object, /) -> ParsedRead | None: ...  # None: the reference decides
    # parse_read with the reading built as reading_type (readings.Reading): (reading, plate_class, passage_key)
    def decode_read(self, value: object, reading_type: type[R], /) -> tuple[R, str, str] | None: ...
    # The lookup of a Segment from its records (segment.py); None when some plate is not ASCII (Python's tables serve).
    def form_table(self, records: list[str], /) -> NativeFormTable | None: ...


def _load() -> NativeCore | None:
    try:
        module = importlib.import_module("anpr_native")
    except ImportError:  # not installed: the reference alone
        return None
    return cast(NativeCore, module)


_LOADED = _load()
# Read by the core at every call (not bound at import), so that `use` switches every caller at once.
native: NativeCore | None = _LOADED if _LOADED is not None and _LOADED.ENABLED else None
IMPLEMENTATION = NATIVE if native is not None else PYTHON


def available() -> tuple[str, ...]:
    """The implementations this process can use: the reference always, the native one when it is installed."""
    return (NATIVE, PYTHON) if _LOADED is not None else (PYTHON,)


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Run the block with this implementation (tests: the same case under both); ValueError when it cannot load."""
    global native, IMPLEMENTATION
    if name not in available():
        raise ValueError(f"core implementation {name!r} is not available here (available: {', '.join(available())})")
    saved = native, IMPLEMENTATION
    native, IMPLEMENTATION = (_LOADED if name == NATIVE else None), name
    try:
        yield
    finally:
        native, IMPLEMENTATION = saved
