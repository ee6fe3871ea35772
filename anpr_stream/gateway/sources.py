"""The gateway's sources: who may post reads, in which format, with which token (stored as its SHA-256 only, with an
expiry), how vendor camera names map to the zone's camera ids, and the time zone of payloads without an offset."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from anpr_stream.gateway.model import PayloadError

SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UNKNOWN_CAMERA_POLICIES = ("refuse", "mark")
TOKEN_PREFIX = "gw_"
DEFAULT_TOKEN_DAYS = 365
DEFAULT_TIMEZONE = "Europe/Brussels"  # the zone's cameras, set to local time when a vendor sends no offset


class SourceError(ValueError):
    """A sources file or a source definition that cannot be used; the message names the source and the field."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SourceToken:
    sha256: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Source:
    source_id: str
    format: str  # an adapter's format name, or "auto" (anpr_stream.gateway.adapters.registry)
    tokens: tuple[SourceToken, ...] = ()
    # Vendor camera name, id or serial -> our camera id; `camera` is the id for payloads that name no camera (or a
    # source that is one camera).
    cameras: Mapping[str, str] = field(default_factory=dict)
    camera: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    unknown_cameras: str = "refuse"
    mqtt_topics: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def token_valid(self, token: str, now: datetime) -> bool | None:
        """True: a current token of this source; False: one of its tokens, expired; None: not its token. Every
        stored digest is compared in constant time."""
        digest = token_digest(token)
        found: bool | None = None
        for stored in self.tokens:
            if hmac.compare_digest(stored.sha256, digest):
                found = stored.expires > now
        return found

    def camera_id(self, vendor_camera: str | None) -> tuple[str, bool]:
        """Our camera id for the vendor's camera and whether it is mapped; PayloadError when refused."""
        if vendor_camera is not None:
            mapped = self.cameras.get(vendor_camera)
            if mapped is not None:
                return mapped, True
        if (vendor_camera is None or not self.cameras) and self.camera is not None:
            return self.camera, True
        if self.unknown_cameras == "mark":
            label = re.sub(r"[^A-Za-z0-9._-]+", "_", vendor_camera or "none")[:48]
            return f"unknown:{self.source_id}:{label}", False
        if vendor_camera is None:
            raise PayloadError(f"the payload names no camera and source {self.source_id!r} has no default camera")
        raise PayloadError(
            f"camera {vendor_camera[:64]!r} is not mapped for source {self.source_id!r} (unknown cameras are refused)"
        )


def _instant(text: object, where: str) -> datetime:
    if not isinstance(text, str):
        raise SourceError(f"{where}: expires must be an ISO 8601 instant")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SourceError(f"{where}: expires {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise SourceError(f"{where}: expires {text!r} has no UTC offset")
    return value


def source_from_mapping(d: Mapping[str, Any], formats: Iterable[str]) -> Source:
    where = f"source {d.get('id')!r}"
    source_id = d.get("id")
    if not isinstance(source_id, str) or not SOURCE_ID.fullmatch(source_id):
        raise SourceError(f"{where}: id must be 1-64 letters, digits, '.', '_' or '-'")
    fmt = d.get("format")
    known = sorted(formats)
    if fmt != "auto" and fmt not in known:
        raise SourceError(f"{where}: format {fmt!r} is not one of auto, {', '.join(known)}")
    tokens = []
    for entry in d.get("tokens", []):
        if not isinstance(entry, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", ""))):
            raise SourceError(f"{where}: a token needs a sha256 hex digest and an expiry")
        tokens.append(SourceToken(entry["sha256"], _instant(entry.get("expires"), where)))
    cameras = d.get("cameras", {})
    if not isinstance(cameras, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                for k, v in cameras.items()):  # fmt: skip
        raise SourceError(f"{where}: cameras must map vendor camera names to camera ids (strings)")
    camera = d.get("camera")
    if camera is not None and (not isinstance(camera, str) or not camera.strip()):
        raise SourceError(f"{where}: camera must be a camera id")
    timezone = d.get("timezone", DEFAULT_TIMEZONE)
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"{where}: timezone {timezone!r} is not an IANA time zone (e.g. Europe/Brussels)") from None
    unknown = d.get("unknown_cameras", "refuse")
    if unknown not in UNKNOWN_CAMERA_POLICIES:
        raise SourceError(f"{where}: unknown_cameras must be refuse or mark, got {unknown!r}")
    topics = d.get("mqtt_topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise SourceError(f"{where}: mqtt_topics must be a list of MQTT topic filters")
    return Source(source_id, str(fmt), tuple(tokens), dict(cameras), camera, str(timezone), unknown, tuple(topics))


def source_to_mapping(source: Source) -> dict[str, Any]:
    return {
        "id": source.source_id,
        "format": source.format,
        "tokens": [{"sha256": t.sha256, "expires": t.expires.isoformat()} for t in source.tokens],
        "cameras": dict(source.cameras),
        "camera": source.camera,
        "timezone": source.timezone,
        "unknown_cameras": source.unknown_cameras,
        "mqtt_topics": list(source.mqtt_topics),
    }


def load_sources(path: Path, formats: Iterable[str]) -> dict[str, Source]:
    """The sources file (JSON: {"sources": [...]}); a missing file is no sources. SourceError names what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{path}: not valid JSON: {exc}") from None
    entries = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SourceError(f'{path}: expected {{"sources": [...]}}')
    names = list(formats)
    sources: dict[str, Source] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise SourceError(f"{path}: every source is a JSON object")
        source = source_from_mapping(entry, names)
        if source.source_id in sources:
            raise SourceError(f"{path}: source {source.source_id!r} is defined twice")
        sources[source.source_id] = source
    return sources


def save_sources(path: Path, sources: Mapping[str, Source]) -> None:
    """Written whole to a temporary file beside it, then renamed: a reader never sees half a file. Mode 0600: the
    digests are not secrets, but the mapping is the zone's camera inventory."""
    body = orjson.dumps({"sources": [source_to_mapping(s) for s in sources.values()]}, option=orjson.OPT_INDENT_2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_new_token(source: Source, now: datetime, days: int, *, keep_old: bool) -> tuple[Source, str]:
    """The source with a fresh token (returned in clear once, stored as its digest); `keep_old`: the previous tokens
    stay valid until they expire (rotation without a gap), else they are revoked."""
    token = new_token()
    issued = SourceToken(token_digest(token), (now + timedelta(days=days)).astimezone(UTC))
    kept = tuple(t for t in source.tokens if t.expires > now) if keep_old else ()
    return replace(source, tokens=(*kept, issued)), token
