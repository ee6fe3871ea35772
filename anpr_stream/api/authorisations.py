"""The registry's HTTP routes (`/v1/authorisations`): the information manager registers and revokes; investigators see
the authorisations of the case they state, to cite one; the DPO sees them all. The rules live in api/registry.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from anpr_stream.api.access import Denied, Role
from anpr_stream.api.context import CallDep, error_responses
from anpr_stream.api.registry import (
    BY_ID,
    COLUMNS,
    MAX_SCOPE,
    Registration,
    RegistrationError,
    audit_parameters,
    checked,
    insert,
    mark_revoked,
    view,
)
from anpr_stream.retention.policy import Access

# --- HTTP ------------------------------------------------------------------------------------------------------------

# Changes under /v1/registry, reads under /v1/authorisations: one method per path (a path with GET and POST routes
# answers OPTIONS with the first route's Allow only, starlette's router).
registry_router = APIRouter(
    prefix="/v1/registry/authorisations", tags=["authorisations"], responses=error_responses(400, 401, 403, 404)
)
router = APIRouter(prefix="/v1/authorisations", tags=["authorisations"], responses=error_responses(400, 401, 403, 404))


class RegistrationBody(BaseModel):
    kind: Access = Field(description="judicial_with_prosecutor_decision (BE), senior_authorisation (UK), "
                         "prosecutor_every_query (NL)")  # fmt: skip
    issuing_authority: str = Field(max_length=200, examples=["procureur des Konings, Limburg"])
    issued_by: str = Field(max_length=200, description="the magistrate or officer who signed the decision")
    reference: str = Field(max_length=200, description="the decision's own reference")
    case_reference: str = Field(max_length=500, description="the case the decision serves")
    plates: list[str] | None = Field(default=None, max_length=MAX_SCOPE, description="plates it covers")
    cameras: list[str] | None = Field(default=None, max_length=MAX_SCOPE, description="cameras it covers")
    data_from: AwareDatetime = Field(description="oldest observation it opens")
    data_until: AwareDatetime = Field(description="newest observation it opens")
    valid_from: AwareDatetime | None = Field(default=None, description="usable from (default: now)")
    valid_until: AwareDatetime = Field(description="usable until")
    single_query: bool = Field(default=False, description="approves one query (always so for NL)")
    note: str | None = Field(default=None, max_length=2000)


class RevocationBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@registry_router.post(
    "",
    name="authorisations.register",
    summary="Register a written authorisation (information manager)",
    status_code=201,
)
async def register_route(call: CallDep, body: Annotated[RegistrationBody, Body()]) -> dict[str, Any]:
    grant = await call.grant()
    registration = Registration(
        kind=body.kind, issuing_authority=body.issuing_authority, issued_by=body.issued_by,
        reference=body.reference, case_reference=body.case_reference,
        plates=tuple(body.plates) if body.plates else None, cameras=tuple(body.cameras) if body.cameras else None,
        data_from=body.data_from, data_until=body.data_until, valid_from=body.valid_from or call.now,
        valid_until=body.valid_until, single_query=body.single_query, note=body.note,
    )  # fmt: skip
    try:
        registration = checked(registration, call.svc.settings.retention, call.now)
        async with call.svc.pool.acquire() as conn, conn.transaction():
            row = await insert(conn, registration, call.user.name, call.user.user_id)
            await call.answered(
                grant, 1, extra=audit_parameters(row), conn=conn, authorisation_id=row["authorisation_id"]
            )
    except RegistrationError as exc:
        raise await call.deny(Denied(400, str(exc)), extra={"reference": body.reference}) from None
    return view(row)


@registry_router.post("/{authorisation_id}/revoke", name="authorisations.revoke", summary="Revoke an authorisation")
async def revoke_route(
    call: CallDep, authorisation_id: Annotated[int, Path(ge=1)], body: Annotated[RevocationBody, Body()]
) -> dict[str, Any]:
    grant = await call.grant()
    try:
        async with call.svc.pool.acquire() as conn, conn.transaction():
            row = await mark_revoked(conn, authorisation_id, call.user.name, call.user.user_id, body.reason)
            await call.answered(grant, 1, extra={"reason": body.reason}, conn=conn, authorisation_id=authorisation_id)
    except RegistrationError as exc:
        status = 404 if "no authorisation" in str(exc) else 400
        raise await call.deny(Denied(status, str(exc))) from None
    return view(row)


def _case_bound(call: CallDep) -> str | None:
    """Investigators see the authorisations of the case they state, and only those."""
    if call.user.role is Role.INVESTIGATOR:
        case = call.justification.case_reference
        if not case:
            raise Denied(403, "state the case (X-Case-Reference) whose authorisations you need")
        return case
    return None


@router.get("", name="authorisations.list", summary="Registered authorisations (an investigator: of the stated case)")
async def list_route(
    call: CallDep,
    case: Annotated[str | None, Query(max_length=500, description="only this case")] = None,
    current: Annotated[bool, Query(description="only those usable now")] = False,
) -> dict[str, Any]:
    grant = await call.grant()
    try:
        bound = _case_bound(call)
    except Denied as exc:
        raise await call.deny(exc) from None
    if bound is not None:
        case = bound
    rows = await call.svc.pool.fetch(
        f"""SELECT {COLUMNS} FROM authorisations
             WHERE ($1::text IS NULL OR case_reference = $1)
               AND (NOT $2 OR (revoked_at IS NULL AND valid_from <= now() AND valid_until > now()
                               AND NOT (single_query AND used_at IS NOT NULL)))
             ORDER BY authorisation_id DESC LIMIT 1000""",  # noqa: S608 -- constant columns
        case, current,
    )  # fmt: skip
    await call.answered(grant, len(rows))
    return {"authorisations": [view(r) for r in rows]}


@router.get("/{authorisation_id}", name="authorisations.get", summary="One registered authorisation")
async def get_route(call: CallDep, authorisation_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
    grant = await call.grant()
    try:
        bound = _case_bound(call)
    except Denied as exc:
        raise await call.deny(exc) from None
    row = await call.svc.pool.fetchrow(BY_ID, authorisation_id)
    if row is None or (bound is not None and row["case_reference"] != bound):
        # Another case's authorisation is as absent as one never registered.
        raise await call.deny(Denied(404, f"no authorisation {authorisation_id} for this case"))
    await call.answered(grant, 1)
    return view(row)
