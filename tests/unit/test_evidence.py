"""The evidence store on a real directory: refs (pure), refusals of anything that is not a ref, durable puts,
concurrent puts of one ref, interrupted writes' temporary files ignored, purge by day."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from anpr_stream.evidence import TEMP_PREFIX, EvidenceStore, media_type_of, parse_ref, ref_for

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\xff\xd9"
DIGEST = hashlib.sha256(JPEG).hexdigest()
AT = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("observed_at", "media_type", "expected"),
    [
        (AT, "image/jpeg", f"2026-12-03/{DIGEST}.jpg"),
        (AT, "image/png", f"2026-12-03/{DIGEST}.png"),
        (AT, "image/gif", f"2026-12-03/{DIGEST}.gif"),
        (AT, "image/webp", f"2026-12-03/{DIGEST}.webp"),
        (AT, "IMAGE/JPEG; charset=binary", f"2026-12-03/{DIGEST}.jpg"),
        # The UTC day of the read, not the camera's local day: 01:30 in Brussels is the day before in UTC.
        (datetime(2026, 12, 3, 0, 30, tzinfo=timezone(timedelta(hours=1))), "image/jpeg", f"2026-12-02/{DIGEST}.jpg"),
        (datetime(2026, 12, 2, 23, 30, tzinfo=timezone(timedelta(hours=-2))), "image/jpeg", f"2026-12-03/{DIGEST}.jpg"),
    ],
)
def test_ref_is_the_utc_day_and_the_content_digest(observed_at: datetime, media_type: str, expected: str) -> None:
    assert ref_for(observed_at, JPEG, media_type) == expected
    assert ref_for(observed_at, JPEG, media_type) == ref_for(observed_at, bytes(JPEG), media_type), "a resend"
    day, name = parse_ref(expected)
    assert (day.isoformat(), name) == tuple(expected.split("/"))


def test_ref_refuses_other_types_and_naive_times() -> None:
    for media_type in ("image/svg+xml", "text/html", "application/octet-stream", ""):
        with pytest.raises(ValueError, match="not an evidence image type"):
            ref_for(AT, JPEG, media_type)
    with pytest.raises(ValueError, match="aware"):
        ref_for(AT.replace(tzinfo=None), JPEG, "image/jpeg")


@pytest.mark.parametrize(
    "ref",
    [
        "",
        f"../2026-12-03/{DIGEST}.jpg",
        f"2026-12-03/../{DIGEST}.jpg",
        f"/2026-12-03/{DIGEST}.jpg",
        f"/etc/{DIGEST}.jpg",
        f"2026-12-03/{DIGEST}.jpg/",
        f"2026-12-03//{DIGEST}.jpg",
        f"2026-12-03/x/{DIGEST}.jpg",
        f"2026-12-03\\{DIGEST}.jpg",
        f"2026-12-03/{DIGEST.upper()}.jpg",
        f"2026-12-03/{DIGEST[:-1]}.jpg",
        f"2026-12-03/{DIGEST}0.jpg",
        f"2026-12-03/{DIGEST}.svg",
        f"2026-12-03/{DIGEST}.JPG",
        f"2026-12-03/{DIGEST}.jpg\n",
        f"2026-12-03/{DIGEST}.jpg\x00",
        f"2026-12-03/{TEMP_PREFIX}abc",
        f"2026-13-03/{DIGEST}.jpg",
        f"20261203/{DIGEST}.jpg",
        f"2026-W49/{DIGEST}.jpg",
        f"２０２６-12-03/{DIGEST}.jpg",  # fullwidth digits: not ASCII, not a day
        "ams://LM-EISDEN/2026-11-26/r1.jpg",  # the traffic generator's image_ref: not one of ours
        f"{DIGEST}.jpg",
    ],
)
def test_anything_but_a_ref_is_refused(ref: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="evidence ref"):
        parse_ref(ref)
    store = EvidenceStore(tmp_path)
    for use in (store.get, store.path, media_type_of, lambda r: store.put(r, JPEG)):
        with pytest.raises(ValueError, match="evidence ref"):
            use(ref)
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_refs_that_are_not_strings_are_refused() -> None:
    for ref in (None, 7, ["2026-12-03", DIGEST]):
        with pytest.raises(ValueError, match="string"):
            parse_ref(ref)  # type: ignore[arg-type]


def test_put_then_get_and_a_resend(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence")
    ref = ref_for(AT, JPEG, "image/jpeg")
    assert store.get(ref) is None and store.days() == []
    store.put(ref, JPEG)
    assert store.get(ref) == JPEG
    assert (tmp_path / "evidence" / ref).read_bytes() == JPEG
    assert media_type_of(ref) == "image/jpeg"
    before = (tmp_path / "evidence" / ref).stat().st_mtime_ns
    store.put(ref, JPEG)  # content-addressed: the file stored is not written again
    assert (tmp_path / "evidence" / ref).stat().st_mtime_ns == before
    assert store.days() == [date(2026, 12, 3)]
    assert sorted(p.name for p in (tmp_path / "evidence" / "2026-12-03").iterdir()) == [f"{DIGEST}.jpg"]


def test_concurrent_puts_of_one_ref_leave_one_whole_file(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    data = os.urandom(256 * 1024)
    ref = ref_for(AT, data, "image/jpeg")
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def put() -> None:
        try:
            start.wait()
            EvidenceStore(tmp_path).put(ref, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.get(ref) == data
    assert [p.name for p in (tmp_path / "2026-12-03").iterdir()] == [ref.split("/")[1]], "no temporary file left"


def test_an_interrupted_write_is_ignored_and_purged_with_its_day(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    ref = ref_for(AT, JPEG, "image/jpeg")
    day = tmp_path / "2026-12-03"
    day.mkdir()
    # A writer killed between its temporary file and the rename: half the bytes, under a name no ref can have.
    (day / f"{TEMP_PREFIX}k3j2l1").write_bytes(JPEG[:10])
    assert store.get(ref) is None, "not a ref, not served"
    assert store.files_before(date(2026, 12, 4)) == (1, 0), "not counted as an image"
    store.put(ref, JPEG)
    assert store.get(ref) == JPEG
    assert store.purge_before(date(2026, 12, 4)) == (1, 1)
    assert not day.exists()


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EvidenceStore(tmp_path)
    ref = ref_for(AT, JPEG, "image/jpeg")
    (tmp_path / "2026-12-03").mkdir()  # the day exists: the failure is the image's own fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.put(ref, JPEG)
    monkeypatch.undo()
    assert store.get(ref) is None
    assert [p.name for p in (tmp_path / "2026-12-03").iterdir()] == []


def test_purge_removes_whole_days_before_the_cutoff_only(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    refs = {}
    for offset in range(-3, 2):
        at = AT + timedelta(days=offset)
        refs[offset] = [ref_for(at, JPEG + bytes([i]), "image/png") for i in range(offset + 4)]
        for ref in refs[offset]:
            store.put(ref, JPEG)
    (tmp_path / "not-a-day").mkdir()  # what is not the store's is left alone
    (tmp_path / "2026-11-01.txt").write_text("x")
    assert store.days() == [date(2026, 11, 30) + timedelta(days=i) for i in range(5)]
    assert store.files_before(date(2026, 12, 2)) == (2, 1 + 2)
    assert store.purge_before(date(2026, 12, 2)) == (2, 3)
    assert store.days() == [date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 4)]
    assert all(store.get(ref) is None for offset in (-3, -2) for ref in refs[offset])
    assert all(store.get(ref) == JPEG for offset in (-1, 0, 1) for ref in refs[offset])
    assert (tmp_path / "not-a-day").is_dir() and (tmp_path / "2026-11-01.txt").exists()
    assert store.purge_before(date(2026, 12, 2)) == (0, 0), "idempotent"
    assert EvidenceStore(tmp_path / "absent").purge_before(date(2026, 12, 2)) == (0, 0)


def test_from_settings(tmp_path: Path) -> None:
    assert EvidenceStore.from_settings({"ANPR_EVIDENCE_DIR": str(tmp_path)}).root == tmp_path
    assert EvidenceStore.from_settings({}).root == Path("/var/lib/anpr-stream/evidence")
