"""Hits: list and filter, one hit, its evidence images, and acknowledgement with an outcome. Covert list details (and
covert hits' images) only for cleared users."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from anpr_stream.api.access import Denied, User, default_since
from anpr_stream.api.context import CallDep, ErrorDetail, audit, error_responses, justification_headers
from anpr_stream.core.outgoing import covert_masked
from anpr_stream.core.plates.normalisation import normalise
from anpr_stream.evidence import EXTENSIONS, media_type_of, parse_ref
from anpr_stream.retention.policy import DataClass

router = APIRouter(
    prefix="/v1/hits",
    tags=["hits"],
    dependencies=[Depends(justification_headers)],
    responses=error_responses(400, 401, 403, 404),
)


class Outcome(StrEnum):
    INTERCEPTED = "intercepted"
    NOT_FOUND = "not_found"
    FALSE_READ = "false_read"
    OTHER = "other"


class Acknowledgement(BaseModel):
    # The rule below, in the OpenAPI document too (clients and schemathesis see it): `other` needs a note.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"outcome": {"const": "other"}}, "required": ["outcome"]},
            "then": {"required": ["note"], "properties": {"note": {"type": "string", "pattern": "\\S"}}},
        }
    )

    outcome: Outcome
    # PostgreSQL text cannot hold NUL: refused as invalid input (422), not failed on in the INSERT (500).
    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")

    @model_validator(mode="after")
    def _other_needs_note(self) -> Acknowledgement:
        if self.outcome is Outcome.OTHER and not (self.note or "").strip():
            raise ValueError("outcome 'other' needs a note")
        return self


HIT_COLUMNS = """h.hit_id, h.read_id, h.entry_id, h.list, h.camera_id, h.observed_at, h.entry_plate, h.covert,
    h.priority, h.action, h.dispatch, h.suppressed, h.payload::text AS payload_json, h.plate_raw, h.matched_plate,
    h.candidate_rank, h.candidate_confidence,
    o.outcome, o.note AS outcome_note, o.recorded_by AS outcome_by, o.recorded_at AS outcome_at"""

LATEST_OUTCOME = """LEFT JOIN LATERAL (
        SELECT outcome, note, recorded_by, recorded_at FROM hit_outcomes ho
        WHERE ho.hit_id = h.hit_id ORDER BY recorded_at DESC, outcome_id DESC LIMIT 1
    ) o ON true"""


# Times in responses are the handlers' own isoformat() text (…+00:00), passed through unchanged: a `datetime` field
# would re-serialise them as …Z, and clients comparing them with the live feed's would see two spellings.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class OutcomeView(BaseModel):
    outcome: Outcome
    note: str | None
    recorded_by: str
    recorded_at: Timestamp


class RecordedOutcome(OutcomeView):
    hit_id: str


class HitView(BaseModel):
    """A hit as `hit_view` returns it: the published payload (documented in README, Message contracts; its nested
    parts are open: a read keeps fields the cameras send), suppression, dispatch and the latest outcome."""

    model_config = ConfigDict(extra="allow")

    hit_id: str
    read_id: str
    entry_id: str | None = Field(description="null for covert entries unless the caller is cleared")
    entry_ref: str = Field(
        description="what to group a hit's repeats by: the entry id; for a covert entry (callers not cleared) the "
        "hit's own id, which tells nothing about the entry"
    )
    list: str | None = Field(description="null for covert lists unless the caller is cleared")
    priority: int | None = Field(description="1 (highest) to 5; null for covert entries unless the caller is cleared")
    action: str
    match: str
    distance: int
    matched_plate: str | None = Field(
        description="the plate that matched: the read's, or the OCR candidate's; null for covert entries unless the "
        "caller is cleared"
    )
    candidate_rank: int | None = Field(
        description="rank (1 = the engine's first alternative) of the OCR candidate that matched; null: the read's "
        "plate (and for covert entries unless the caller is cleared)"
    )
    candidate_confidence: float | None = Field(
        description="the engine's confidence (0..1) in the OCR candidate that matched; null: the read's plate or none"
    )
    suppressed: bool | None = Field(
        description="true: a repeat within the suppression window (not dispatched); null: the decision waits until "
        "every input partition is stored past the hit's time (seconds; longer while a worker is replaced)"
    )
    dispatched: bool
    read: dict[str, Any]
    camera: dict[str, Any]
    entry: dict[str, Any]
    outcome: OutcomeView | None


class HitPage(BaseModel):
    hits: list[HitView]
    next_before: str | None = Field(description="cursor for the next (older) page; null on the last page")
    since: Timestamp | None = Field(description="the window's start as granted (clamped to retention)")


def _matched(row: asyncpg.Record) -> dict[str, Any]:
    """What matched, from the hits table (migration 0011; NULL there: the read's best plate)."""
    if row["candidate_rank"] is None:
        return {"matched_plate": row["plate_raw"], "candidate_rank": None, "candidate_confidence": None}
    return {
        "matched_plate": row["matched_plate"],
        "candidate_rank": row["candidate_rank"],
        "candidate_confidence": row["candidate_confidence"],
    }


def hit_view(row: asyncpg.Record, user: User) -> dict[str, Any]:
    """The hit as published on anpr.hits (covert entries opaque there), with its suppression, its latest outcome and,
    for cleared users only, the covert entry's details from the hits table (the reference is not stored)."""
    view: dict[str, Any] = orjson.loads(row["payload_json"])
    if row["covert"]:
        # Masked again: a payload stored before covert hits were opaque still names the entry and its priority.
        view = covert_masked(view)
        if user.sees_covert:
            details = {"entry_id": row["entry_id"], "list": row["list"], "priority": row["priority"],
                       "action": row["action"]}  # fmt: skip
            view.update(details, entry_ref=row["entry_id"])
            view["entry"] = {**view["entry"], **details, "plate": row["entry_plate"]}
            view.update(_matched(row))
    else:
        view.setdefault("entry_ref", row["entry_id"])  # stored before payloads carried it
        if "matched_plate" not in view:  # stored before OCR candidates were matched
            view.update(_matched(row))
    view["suppressed"] = row["suppressed"]
    view["dispatched"] = row["dispatch"] and row["suppressed"] is False
    view["outcome"] = (
        None
        if row["outcome"] is None
        else {
            "outcome": row["outcome"],
            "note": row["outcome_note"],
            "recorded_by": row["outcome_by"],
            "recorded_at": row["outcome_at"].isoformat(),
        }
    )
    return view


@router.get("", name="hits.list", summary="Hits in a time window, newest first, filtered", response_model=HitPage)
async def list_hits(
    call: CallDep,
    since: Annotated[
        AwareDatetime | None, Query(description="oldest observed_at (default: the open-access period)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="newest observed_at (default: now)")] = None,
    list_name: Annotated[list[str] | None, Query(alias="list", description="only these watchlists")] = None,
    camera: Annotated[list[str] | None, Query(description="only these cameras")] = None,
    dispatched: Annotated[bool | None, Query(description="true: only hits dispatched (not suppressed)")] = None,
    acknowledged: Annotated[bool | None, Query(description="true: only with an outcome; false: only without")] = None,
    before: Annotated[str | None, Query(description="cursor from the previous page's next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    plate: Annotated[
        str | None,
        Query(max_length=32, description="only hits of this plate as read (normalised: separators and case ignored)"),
    ] = None,
) -> dict[str, Any]:
    policy = call.svc.settings.retention
    since = since or default_since(policy, call.now)
    plate_norm = normalise(plate) if plate is not None else None
    if plate_norm == "":
        await call.check_request()  # who may not ask learns nothing more than a 403
        raise await call.deny(Denied(400, f"plate {plate!r} has no letters or digits"))
    # A plate binds the request to it (within a plate-bound authorisation: context._PLATE_BOUND).
    grant = await call.grant(since=since, until=until, data_class=DataClass.HITS, cameras=camera)
    cameras = grant.cameras(camera)
    cursor_at, cursor_id = _parse_cursor(before) if before else (None, None)
    if before and cursor_at is None:
        raise await call.deny(Denied(400, f"cursor {before!r} is not one this API handed out"))
    # Covert lists are filtered by name only for cleared users: others may not even probe a covert list's name.
    rows = await call.svc.pool.fetch(
        f"""SELECT {HIT_COLUMNS} FROM hits h {LATEST_OUTCOME}
            WHERE h.observed_at >= $1 AND ($2::timestamptz IS NULL OR h.observed_at <= $2)
              AND ($3::text[] IS NULL OR (h.list = ANY($3) AND (NOT h.covert OR $9)))
              AND ($4::text[] IS NULL OR h.camera_id = ANY($4))
              AND ($5::boolean IS NULL OR (h.dispatch AND NOT h.suppressed) = $5)
              AND ($6::boolean IS NULL OR (o.outcome IS NOT NULL) = $6)
              AND ($7::timestamptz IS NULL OR (h.observed_at, h.hit_id) < ($7, $8::uuid))
              AND ($11::text IS NULL OR h.plate_norm = $11)
            ORDER BY h.observed_at DESC, h.hit_id DESC LIMIT $10""",  # noqa: S608 -- constant fragments only
        grant.since, grant.until, list_name, cameras, dispatched, acknowledged, cursor_at, cursor_id,
        call.user.sees_covert, limit, plate_norm,
    )  # fmt: skip
    hits = [hit_view(row, call.user) for row in rows]
    next_before = f"{rows[-1]['observed_at'].isoformat()}|{rows[-1]['hit_id']}" if len(rows) == limit else None
    await call.answered(grant, len(hits))
    return {"hits": hits, "next_before": next_before, "since": grant.since.isoformat() if grant.since else None}


def _parse_cursor(cursor: str) -> tuple[datetime | None, uuid.UUID | None]:
    at, _, hit_id = cursor.partition("|")
    try:
        parsed_at = datetime.fromisoformat(at)
        if parsed_at.tzinfo is None:
            return None, None
        return parsed_at, uuid.UUID(hit_id)
    except ValueError:
        return None, None


async def _one_hit(call: CallDep, hit_id: uuid.UUID, extra: dict[str, Any] | None = None) -> asyncpg.Record:
    """The hit, after role and justification; one at a camera outside the caller's scope answers exactly as a hit
    that does not exist (a 403 naming the camera would tell that a hit is there), its audit row says why."""
    await call.check_request(extra)
    row = await call.svc.pool.fetchrow(
        f"SELECT {HIT_COLUMNS} FROM hits h {LATEST_OUTCOME} WHERE h.hit_id = $1",  # noqa: S608 -- constants
        hit_id,
    )
    if row is None:
        raise await call.deny(Denied(404, f"no hit {hit_id}"), extra)
    if not call.user.sees_camera(row["camera_id"]):
        raise await _as_missing(call, hit_id, "outside the caller's camera scope", extra)
    return row


async def _as_missing(call: CallDep, hit_id: uuid.UUID, why: str, extra: dict[str, Any] | None) -> HTTPException:
    await audit(call.svc, call.request, call.user.name, call.user.role.value, False, call.justification,
                f"{why} (answered as no hit)", extra=extra, actor_id=call.user.user_id)  # fmt: skip
    return HTTPException(404, f"no hit {hit_id}")


@router.get("/{hit_id}", name="hits.get", summary="One hit with its latest outcome", response_model=HitView)
async def get_hit(call: CallDep, hit_id: uuid.UUID) -> dict[str, Any]:
    row = await _one_hit(call, hit_id)
    # One record: its own instant is the whole window, so a hit past retention (not purged yet) is refused, not
    # clamped into the horizon and granted.
    at = row["observed_at"]
    grant = await call.grant(since=at, until=at, data_class=DataClass.HITS, cameras=[row["camera_id"]])
    await call.answered(grant, 1)
    return hit_view(row, call.user)


@router.post(
    "/{hit_id}/ack", name="hits.ack", summary="Acknowledge a hit with its outcome", response_model=RecordedOutcome
)
async def acknowledge(call: CallDep, hit_id: uuid.UUID, ack: Annotated[Acknowledgement, Body()]) -> dict[str, Any]:
    extra = {"outcome": ack.outcome.value, "note": ack.note}
    row = await _one_hit(call, hit_id, extra)
    at = row["observed_at"]
    grant = await call.grant(since=at, until=at, data_class=DataClass.HITS, cameras=[row["camera_id"]],
                             extra=extra)  # fmt: skip
    async with call.svc.pool.acquire() as conn, conn.transaction():
        recorded = await conn.fetchrow(
            "INSERT INTO hit_outcomes (hit_id, outcome, note, recorded_by) VALUES ($1, $2, $3, $4) "
            "RETURNING outcome, note, recorded_by, recorded_at",
            hit_id, ack.outcome.value, ack.note, call.user.name,
        )  # fmt: skip
        outcome = {
            "hit_id": str(hit_id),
            "outcome": recorded["outcome"],
            "note": recorded["note"],
            "recorded_by": recorded["recorded_by"],
            "recorded_at": recorded["recorded_at"].isoformat(),
        }
        # Every API process LISTENs and pushes outcomes to its open consoles; the channel is per database, the
        # payload names the schema so that environments sharing a database do not see each other's.
        await conn.execute(
            "SELECT pg_notify('anpr_hit_outcomes', $1)",
            orjson.dumps({"schema": await conn.fetchval("SELECT current_schema()"), **outcome}).decode(),
        )
        await call.answered(grant, 1, extra, conn=conn)
    return outcome


class ImageKind(StrEnum):
    PLATE = "plate"  # the plate crop
    OVERVIEW = "overview"  # the scene
    VEHICLE = "vehicle"  # the vehicle crop, where a camera sends one


_IMAGE_MEDIA = {media: {"schema": {"type": "string", "format": "binary"}} for media in EXTENSIONS}


_IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": _IMAGE_MEDIA, "description": "the image as the camera sent it"},
    404: {"model": ErrorDetail, "description": "no such hit (or one the caller may not see), no such image of the "
          "hit, or the image is no longer stored (past retention)"},
}  # fmt: skip


@router.get(
    "/{hit_id}/images/{kind}", name="hits.image", summary="One evidence image of a hit's read (plate crop, overview)",
    response_class=Response, responses=_IMAGE_RESPONSES,
)  # fmt: skip
async def hit_image(call: CallDep, hit_id: uuid.UUID, kind: ImageKind) -> Response:
    """Found and refused as hits.get does (role, justification, camera scope, retention tier); a hit the caller may
    not see at all, a covert hit for a caller not cleared for covert lists or one outside the caller's cameras,
    answers exactly as a hit that does not exist (its audit row says why)."""
    extra = {"kind": kind.value}
    row = await _one_hit(call, hit_id, extra)
    if row["covert"] and not call.user.sees_covert:
        raise await _as_missing(call, hit_id, "a covert hit: its images are for cleared investigators only", extra)
    at = row["observed_at"]
    grant = await call.grant(since=at, until=at, data_class=DataClass.HITS, cameras=[row["camera_id"]], extra=extra)
    # The passage is the read as stored (hits keep no extra fields of their own): the refs the gateway gave it.
    passage = await call.svc.pool.fetchrow(
        "SELECT extra -> 'images' ->> $4 AS ref FROM passages WHERE read_id = $1 AND observed_at = $2 "
        "AND camera_id = $3 LIMIT 1",
        row["read_id"], at, row["camera_id"], kind.value,
    )  # fmt: skip
    if passage is None:
        raise await call.deny(Denied(404, f"hit {hit_id}: its read is no longer stored, nor its images"), extra)
    ref = passage["ref"]
    try:
        parse_ref(ref)
    except ValueError:
        raise await call.deny(Denied(404, f"hit {hit_id}: its read has no {kind.value} image"), extra) from None
    data = await asyncio.to_thread(call.svc.evidence.get, ref)
    if data is None:
        raise await call.deny(Denied(404, f"hit {hit_id}: its {kind.value} image is no longer stored"), extra)
    await call.answered(grant, 1, {**extra, "image": ref})
    # no-store: never kept by a browser or a proxy (SecurityHeaders sets it on every /v1/ answer too); nosniff: the
    # browser takes the type given, never one guessed from the bytes.
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Disposition": "inline"}
    return Response(data, media_type=media_type_of(ref), headers=headers)
