"""The evidence store: plate crops and overview images of reads (and nothing else), one directory per UTC day of the
read under a root, named by content (SHA-256), written durably before the read that references them is produced,
served to those who may see the hit, removed with the passages of their day by the retention purge."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from anpr_stream import config

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
MEDIA_TYPES = {ext: media for media, ext in EXTENSIONS.items()}
KINDS = ("plate", "overview", "vehicle")  # what a read's `images` may name
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NAME = re.compile(r"[0-9a-f]{64}\.(?:jpg|png|gif|webp)")
# A writer's file before its rename: never a ref (refs are hex names), skipped by every reader, gone with its day.
TEMP_PREFIX = ".tmp-"


def ref_for(observed_at: datetime, data: bytes, media_type: str) -> str:
    """`YYYY-MM-DD/<sha256>.<ext>`: the read's UTC day and the content's digest (a resend gives the same ref)."""
    if observed_at.tzinfo is None:
        raise ValueError("observed_at must be an aware datetime")
    ext = EXTENSIONS.get(media_type.split(";", 1)[0].strip().lower())
    if ext is None:
        raise ValueError(f"media type {media_type!r} is not an evidence image type")
    day = observed_at.astimezone(UTC).date().isoformat()
    return f"{day}/{hashlib.sha256(data).hexdigest()}.{ext}"


def _day(text: str) -> date | None:
    """A day directory's date: exactly `YYYY-MM-DD` (date.fromisoformat alone also takes `20261203`, `2026-W49`)."""
    if _DAY.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_ref(ref: str) -> tuple[date, str]:
    """The day and file name of a ref; ValueError for anything else (no path can leave the store)."""
    if not isinstance(ref, str):
        raise ValueError("an evidence ref is a string")
    day_text, slash, name = ref.partition("/")
    day = _day(day_text) if slash else None
    if day is None or _NAME.fullmatch(name) is None:
        raise ValueError(f"not an evidence ref: {ref[:80]!r}")
    return day, name


def media_type_of(ref: str) -> str:
    _, name = parse_ref(ref)
    return MEDIA_TYPES[name.rsplit(".", 1)[1]]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EvidenceStore:
    """A directory store: `<root>/<day>/<sha256>.<ext>`. Synchronous (callers run it in a thread). Safe for
    concurrent writers, in threads or processes: each writes its own temporary file and renames it into place, and
    two puts of one ref hold the same bytes (content-addressed), so whichever rename wins, the file is whole."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"EvidenceStore({str(self.root)!r})"

    @classmethod
    def from_settings(cls, env: Mapping[str, str] | None = None) -> EvidenceStore:
        """ANPR_EVIDENCE_DIR (default /var/lib/anpr-stream/evidence; `make infra` exports .local/evidence)."""
        root: Path = config.value("ANPR_EVIDENCE_DIR", env)
        return cls(root)

    def path(self, ref: str) -> Path:
        day, name = parse_ref(ref)
        return self.root / day.isoformat() / name

    def put(self, ref: str, data: bytes) -> None:
        """Durable when it returns: a temporary file fsynced, renamed into place, the directory fsynced. A ref
        already stored is left as it is (its content is the same)."""
        target = self.path(ref)
        if target.exists():
            return
        day_dir = target.parent
        fresh_day = not day_dir.exists()
        day_dir.mkdir(parents=True, exist_ok=True)
        if fresh_day:
            _fsync_dir(self.root)  # the new day directory's entry itself must survive a crash
        fd, tmp = tempfile.mkstemp(dir=day_dir, prefix=TEMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(day_dir)

    def get(self, ref: str) -> bytes | None:
        """The image's bytes; None when it is not (or no longer) stored. ValueError for what is not a ref."""
        try:
            return self.path(ref).read_bytes()
        except FileNotFoundError:
            return None

    def days(self) -> list[date]:
        """The days held, oldest first (anything else under the root is not the store's and is left alone)."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        found = [day for entry in entries if entry.is_dir() and (day := _day(entry.name)) is not None]
        return sorted(found)

    def files_before(self, day: date) -> tuple[int, int]:
        """(days, files) held before `day`: what purge_before would remove (temporary files not counted)."""
        doomed = [old for old in self.days() if old < day]
        return len(doomed), sum(self._count(old) for old in doomed)

    def _count(self, day: date) -> int:
        try:
            return sum(1 for p in (self.root / day.isoformat()).iterdir() if _NAME.fullmatch(p.name))
        except FileNotFoundError:
            return 0

    def purge_before(self, day: date) -> tuple[int, int]:
        """Remove every day before `day` whole (temporary files of interrupted writes with it); returns (days, files)
        removed. A day another purge removed meanwhile is not counted twice."""
        days = files = 0
        for old in self.days():
            if old >= day:
                break
            count = self._count(old)
            directory = self.root / old.isoformat()
            try:
                shutil.rmtree(directory)
            except FileNotFoundError:
                continue
            days += 1
            files += count
        if days:
            with contextlib.suppress(FileNotFoundError):
                _fsync_dir(self.root)
        return days, files
