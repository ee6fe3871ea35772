"""Publishing one watchlist entry from the investigator workspace (after its retroactive check): validated as in
watchlist files, audited, then produced to the compacted watchlist topic the workers' feed reads."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field

from anpr_stream.api.access import Denied, Grant
from anpr_stream.api.context import CallDep, ErrorDetail, audit, error_responses, justification_headers
from anpr_stream.api.investigate import RetroactiveEntry
from anpr_stream.core.entry import WORKSPACE_PREFIX, is_workspace_id
from anpr_stream.stream.watchlist_publish import publish
from anpr_stream.watchlists import InvalidEntry, entry_from_mapping

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/v1",
    tags=["investigations"],
    dependencies=[Depends(justification_headers)],
    responses=error_responses(400, 401, 403, 409, 503),
)

# Kafka down or unreachable: each produce request gives up after PRODUCE_TIMEOUT_MS, the whole publication (topics
# check, connection, send, flush) after PUBLISH_TIMEOUT_S; the caller gets a 503, never a hung request.
PRODUCE_TIMEOUT_MS = 10_000
PUBLISH_TIMEOUT_S = 15.0


NOT_PUBLISHED = (
    "producing to the watchlist topic failed (Kafka unreachable or refusing): the request was audited as allowed, "
    "then as failed; publish it again"
)


# Who published an entry id first (the audit log's allowed rows; index audit_log_watchlist_publish): only they may
# publish it again (correct or replace their own entry).
FIRST_PUBLISHER = """SELECT actor_id FROM audit_log
                      WHERE endpoint = 'watchlist.publish' AND allowed AND parameters ->> 'entry_id' = $1
                      ORDER BY id LIMIT 1"""


class PublishedEntry(BaseModel):
    entry_id: str
    list: str
    plate: str
    covert: bool


class Publication(BaseModel):
    entry: PublishedEntry
    topic: str = Field(description="the watchlist topic the entry was produced to")
    published: bool = Field(description="always true: a failure is a 503")


@router.post(
    "/watchlist/entries",
    name="watchlist.publish",
    summary="Publish one watchlist entry to the watchlist topic (the workers alert on it from then on)",
    description=(
        "The entry as in watchlist files (the same fields and validation as `POST /v1/watchlist/retroactive`), "
        "produced to the compacted watchlist topic keyed by its `entry_id`: an entry already live under that id is "
        "overwritten (replaced by this one) when the same user published it, refused (409) when another did. Entry "
        "ids start with `WS-` (reserved: watchlist files may not use them, and `watchlist load --replace` does not "
        "retract these entries). A covert entry only by an investigator cleared for covert lists. The allowed "
        "request is audited before the entry is produced (no audit row, no publication); when producing then "
        "fails (Kafka unreachable: bounded, about 15 s at most) a second, denied audit row says so and the answer "
        "is 503: the entry may or may not be on the topic, publish it again."
    ),
    status_code=201,
    response_model=Publication,
    responses={503: {"model": ErrorDetail, "description": NOT_PUBLISHED}},
)
async def publish_entry(call: CallDep, body: Annotated[RetroactiveEntry, Body()]) -> dict[str, Any]:
    settings = call.svc.settings
    topic = settings.topics.watchlist
    extra: dict[str, Any] = {
        "entry_id": body.entry_id, "list": body.list, "plate": body.plate, "covert": body.covert, "topic": topic,
    }  # fmt: skip
    # Role, purpose and case (refusals audited). Publishing reads no stored camera data: no window, no retention
    # tier, so no authorisation to cite (access.decide would bound a window by the horizon and ask for one).
    await call.check_request(extra)
    grant = Grant(call.user, "watchlist.publish", call.justification, since=None, until=None)
    try:
        entry = entry_from_mapping(body.model_dump())
    except InvalidEntry as exc:
        raise await call.deny(Denied(400, f"invalid watchlist entry: {exc}"), extra) from None
    if entry.covert and not call.user.sees_covert:
        reason = f"a covert entry is published only by investigators cleared for covert lists ({call.user.name} is not)"
        raise await call.deny(Denied(403, reason), extra)
    if not is_workspace_id(entry.entry_id):
        # The files' entries (the zone's lists, covert ones too) are never overwritten from here (core.entry).
        reason = f"entry ids published from the workspace start with {WORKSPACE_PREFIX!r}: {entry.entry_id!r} does not"
        raise await call.deny(Denied(400, reason), extra)
    async with call.svc.pool.acquire() as conn, conn.transaction():
        # The check and the claim (the allowed audit row) in one transaction under a lock on the id: of two users
        # publishing a new id at once, the second finds the first's row and is refused.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"watchlist.publish:{entry.entry_id}")
        first = await conn.fetchval(FIRST_PUBLISHER, entry.entry_id)
        taken = first is not None and first != call.user.user_id
        if not taken:
            await call.answered(grant, 1, extra, conn=conn)
    if taken:
        reason = f"entry {entry.entry_id!r} was published by another user: choose another entry id"
        raise await call.deny(Denied(409, reason), extra)
    try:
        await asyncio.wait_for(
            publish(settings, [entry], replace=False, request_timeout_ms=PRODUCE_TIMEOUT_MS), PUBLISH_TIMEOUT_S
        )
    except Exception as exc:  # any failure to produce is answered (503), never a 500
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = f"no answer from Kafka within {PUBLISH_TIMEOUT_S:g} s"
        reason = f"publishing to {topic} failed after the request was recorded: {detail}"[:1000]
        log.warning("watchlist.publish of %s by %s: %s", entry.entry_id, call.user.name, reason)
        await audit(
            call.svc, call.request, call.user.name, call.user.role.value, False, grant.justification, reason,
            extra=extra, actor_id=call.user.user_id,
        )  # fmt: skip
        raise HTTPException(503, reason) from None
    return {
        "entry": {"entry_id": entry.entry_id, "list": entry.list, "plate": entry.plate, "covert": entry.covert},
        "topic": topic,
        "published": True,
    }
