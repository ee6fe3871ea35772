"""What the worker publishes (core/outgoing.py): hits as dispatch receives them, dead letters that say why, where
and which stage, every record within what Kafka accepts."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
import pytest

from anpr_stream.core.batch import STORE, Rejection, classify
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.outgoing import (
    COVERT_INSTRUCTION,
    MAX_RECORD_BYTES,
    covert_masked,
    dead_letter,
    hit_payload,
    hit_value,
    is_covert,
    record_size,
    shrink_hit,
)
from anpr_stream.core.record import InRecord
from anpr_stream.watchlists import entry_from_mapping
from tests.unit.fixtures import CAMERAS, NOW, POLICY, dispatch_of, hits_of, read, record, run


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


# A covert entry whose every detail is distinctive: none of them may appear anywhere in what is published.
COVERT = {"entry_id": "OMCG-0042", "list": "biker_club_limburg", "plate": "M-JKR-66", "country": "NL",
          "priority": "2", "action": "shadow_team", "valid_from": "", "valid_until": "",
          "reference": "dossier OMCG-7", "covert": "true"}  # fmt: skip
SECRETS = ("OMCG", "biker_club_limburg", "M-JKR-66", "MJKR66", "shadow_team", '"NL"')


def _covert_hit(plate: str = "M-JKR-G6", read_id: str = "r-covert") -> Any:
    index = WatchlistIndex.build([entry_from_mapping(COVERT)])
    result = classify([record(read(read_id, plate), 0)], index, POLICY, CAMERAS, NOW - timedelta(days=365), NOW)
    [hit] = hits_of(result.passages, dispatch_of)
    return hit


def test_a_covert_hit_is_opaque_on_the_hits_topic() -> None:
    hit = _covert_hit()
    payload = hit_payload(hit, CAMERAS, NOW)
    assert hit.match.kind == "ocr"  # the read (6 read as G) differs from the listed plate
    named = (payload["entry_id"], payload["list"], payload["priority"], payload["action"])
    assert named == (None, None, None, "inform")
    assert payload["entry"] == {
        "entry_id": None, "covert": True, "list": None, "plate": None, "country": None, "reference": None,
        "priority": None, "action": "inform", "instruction": COVERT_INSTRUCTION,
    }  # fmt: skip
    # Where other hits name their entry, the hit's own id: nothing derived from the entry alone.
    assert payload["entry_ref"] == hit.hit_id
    published = hit_value(hit, CAMERAS, NOW).decode()
    assert [s for s in SECRETS if s in published] == []
    assert orjson.loads(published)["read"]["plate"] == "M-JKR-G6"  # what the camera read stays


def test_two_covert_hits_of_one_entry_share_no_reference() -> None:
    one = hit_payload(_covert_hit(read_id="r-1"), CAMERAS, NOW)
    two = hit_payload(_covert_hit(read_id="r-2"), CAMERAS, NOW)
    assert one["entry_ref"] != two["entry_ref"]
    assert one["entry_ref"] == one["hit_id"] and two["entry_ref"] == two["hit_id"]


def test_an_overt_hit_names_its_entry() -> None:
    found = hits_of(run(read("r2", "1-HGT-904")).passages, dispatch_of)
    payload = hit_payload(found[0], CAMERAS, NOW)
    assert (payload["entry_id"], payload["entry_ref"], payload["priority"]) == ("SV-1", "SV-1", 1)
    assert not is_covert(payload)


def test_masking_again_an_old_covert_payload_removes_what_it_carried() -> None:
    """Payloads published before covert hits were opaque carried entry_id and priority; the API masks them again."""
    old = {
        "hit_id": "h-1", "entry_id": "OMCG-0042", "list": None, "priority": 2, "action": "inform",
        "read": {"plate": "M-JKR-G6"},
        "entry": {"entry_id": "OMCG-0042", "covert": True, "list": None, "plate": None, "priority": 2,
                  "reference": None, "action": "inform", "instruction": COVERT_INSTRUCTION, "extra": "x"},
    }  # fmt: skip
    assert is_covert(old)
    masked = covert_masked(old)
    assert "OMCG" not in orjson.dumps(masked).decode() and masked["priority"] is None
    assert masked["entry"]["priority"] is None and "extra" not in masked["entry"]
    assert masked["read"] == {"plate": "M-JKR-G6"} and masked["entry_ref"] == "h-1"
    assert covert_masked(masked) == masked


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
