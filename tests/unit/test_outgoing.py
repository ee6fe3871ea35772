"""What the worker publishes (core/outgoing.py): hits as dispatch receives them, dead letters that say why, where
and which stage, every record within what Kafka accepts."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import orjson
import pytest

from anpr_stream.core.batch import STORE, Rejection
from anpr_stream.core.outgoing import (
    COVERT_INSTRUCTION,
    MAX_RECORD_BYTES,
    dead_letter,
    hit_payload,
    hit_value,
    record_size,
    shrink_hit,
)
from anpr_stream.core.record import InRecord
from tests.unit.fixtures import CAMERAS, NOW, dispatch_of, hits_of, read, run


def test_covert_entries_are_masked_in_the_payload() -> None:
    found = hits_of(run(read("r1", "M-JKR-66"), read("r2", "1-HGT-904")).passages, dispatch_of)
    payloads = {h.match.entry.entry_id: hit_payload(h, CAMERAS, NOW + timedelta(milliseconds=20)) for h in found}
    covert = payloads["BC-1"]
    assert covert["list"] is None and covert["entry"]["reference"] is None and covert["entry"]["plate"] is None
    assert covert["entry"]["instruction"] == COVERT_INSTRUCTION and covert["action"] == "inform"
    plain = payloads["SV-1"]
    assert (plain["list"], plain["entry"]["reference"], plain["entry"]["plate"]) == (
        "stolen_vehicle",
        "PV 1",
        "1-HGT-904",
    )
    assert plain["camera"]["road"] == "N2" and plain["read"]["lane"] == 1
    assert plain["latency_ms"]["since_kafka"] == pytest.approx(20, abs=1)
    orjson.dumps(plain)  # JSON-serialisable as published


def test_a_cameras_extra_fields_never_overwrite_what_the_service_says() -> None:
    forged = read("r1", "1-HGT-904", plate_normalised="EVIL", plate_format="NL-1", read_id_note="x")
    [hit] = hits_of(run(forged).passages, dispatch_of)
    read_part = hit_payload(hit, CAMERAS, NOW)["read"]
    assert (read_part["plate_normalised"], read_part["plate_format"]) == ("1HGT904", "BE-current")
    assert read_part["read_id_note"] == "x"


def test_a_hit_too_large_for_a_record_drops_the_extras_and_says_so() -> None:
    [hit] = hits_of(run(read("r1", "1-HGT-904", note="n" * 1000)).passages, dispatch_of)
    full = orjson.loads(hit_value(hit, CAMERAS, NOW))
    assert full["read"]["note"] == "n" * 1000 and "read_extra_dropped" not in full
    small = orjson.loads(hit_value(hit, CAMERAS, NOW, limit=1500))
    assert "note" not in small["read"] and small["read_extra_dropped"] is True
    assert small["read"]["plate"] == "1-HGT-904"
    shrunk = orjson.loads(shrink_hit(hit_value(hit, CAMERAS, NOW)))
    assert "note" not in shrunk["read"] and shrunk["read"]["read_id"] == "r1" and shrunk["hit_id"] == hit.hit_id


def bad(value: bytes, key: bytes | None = b"cam", headers: tuple[tuple[str, bytes], ...] = ()) -> Rejection:
    return Rejection(InRecord("anpr.reads", 4, 1234, key, value, 0, headers), "malformed JSON: line 1")


def test_a_dead_letter_is_the_record_as_it_came_with_reason_stage_and_source() -> None:
    letter = dead_letter(bad(b"{", headers=(("traceparent", b"00-ab"),)))
    assert (letter.key, letter.value) == (b"cam", b"{")
    headers = dict(letter.headers)
    assert headers["traceparent"] == b"00-ab"
    assert headers["anpr-dlq-reason"] == b"malformed JSON: line 1"
    assert headers["anpr-dlq-stage"] == b"validate"
    assert headers["anpr-dlq-source"] == b"anpr.reads/4/1234"
    stored = dead_letter(Rejection(bad(b"{}").record, "the database refused the read", STORE))
    assert dict(stored.headers)["anpr-dlq-stage"] == b"store"


def test_a_dead_letter_too_large_for_kafka_is_cut_and_says_what_was_cut() -> None:
    value = b"x" * 1_048_000  # what a broker with the default limit accepted on the reads topic
    letter = dead_letter(bad(value, key=b"k" * 5000, headers=tuple((f"h{i}", b"v" * 100) for i in range(1000))))
    assert record_size(letter.key, letter.value, letter.headers) <= MAX_RECORD_BYTES
    headers = dict(letter.headers)
    assert headers["anpr-dlq-truncated"] == str(len(value)).encode()
    assert headers["anpr-dlq-sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["anpr-dlq-key-truncated"] == b"5000" and letter.key == b"k" * 1024
    assert headers["anpr-dlq-headers-dropped"] == b"1000" and "h0" not in headers
    assert value.startswith(letter.value) and len(letter.value) > 900_000
    tiny = dead_letter(bad(value), limit=4096)
    assert record_size(tiny.key, tiny.value, tiny.headers) <= 4096


def test_a_long_reason_is_cut() -> None:
    letter = dead_letter(Rejection(bad(b"{").record, "why " * 1000))
    assert len(dict(letter.headers)["anpr-dlq-reason"].decode()) <= 1001
