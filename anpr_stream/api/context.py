"""Per-request plumbing shared by every route: the authenticated caller, the access decision, and the audit row
written for every request, allowed or denied, before any data leaves the service."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from anpr_stream.api.access import Denied, Grant, Justification, User, check_request, decide
from anpr_stream.api.auth_throttle import FailureThrottle, Refusal, Summary, address_key, user_key
from anpr_stream.api.registry import load as load_authorisation
from anpr_stream.api.registry import use_once as use_authorisation_once
from anpr_stream.api.users import TokenCheck, check_token
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit
from anpr_stream.cameras import CameraRegistry
from anpr_stream.config import Settings
from anpr_stream.core.plates.normalisation import normalise
from anpr_stream.evidence import EvidenceStore
from anpr_stream.retention.policy import DataClass

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="an API token made by `anpr-stream users add`")


class ErrorDetail(BaseModel):
    """Every refusal: the reason, as the audit log records it."""

    detail: str


_ERRORS = {
    400: "malformed request (window, cursor, X-Authorisation value, ...)",
    401: "missing, unknown, revoked or expired bearer token",
    403: "refused: role, camera scope, missing justification or authorisation, data past retention",
    404: "no such record",
    409: "conflict with a record another user made (a watchlist entry id published by someone else)",
    429: "too many failed authentications from this address (or with this user's tokens): retry after Retry-After "
    "seconds",
    503: "not ready yet (the live feed is not connected to Kafka); retry",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a router's routes can give (`APIRouter(responses=error_responses(...))`);
    422 (validation) FastAPI documents by itself; a route that authenticates (401) may also be throttled (429)."""
    listed = (*codes, 429) if 401 in codes and 429 not in codes else codes
    return {code: {"model": ErrorDetail, "description": _ERRORS[code]} for code in listed}


@dataclass
class Services:
    """What the routes share, built once per process by the app's lifespan."""

    settings: Settings
    pool: asyncpg.Pool
    cameras: CameraRegistry
    throttle: FailureThrottle = field(init=False)  # failed authentications, this process's own count
    evidence: EvidenceStore = field(init=False)  # plate crops and overviews (ANPR_EVIDENCE_DIR)

    def __post_init__(self) -> None:
        s = self.settings
        self.evidence = EvidenceStore(s.evidence_dir)
        window = timedelta(seconds=s.auth_window_seconds)
        self.throttle = FailureThrottle(s.auth_max_failures, window, s.auth_tracked_max)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def endpoint_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or request.url.path


def request_parameters(request: Request, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the audit log records of a request: path and query parameters (repeated keys as lists), plus `extra`."""
    out: dict[str, Any] = dict(request.path_params)
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    if extra:
        out.update(extra)
    return out


async def audit(
    svc: Services,
    request: Request,
    actor: str,
    role: str,
    allowed: bool,
    justification: Justification | None = None,
    reason: str | None = None,
    result_count: int | None = None,
    extra: Mapping[str, Any] | None = None,
    conn: asyncpg.Connection | None = None,
    actor_id: int | None = None,
    grant: Grant | None = None,
    authorisation_id: int | None = None,
) -> None:
    """Append the request's audit row; on `conn` it commits or rolls back with the caller's transaction. An allowed
    request into a restricted tier records the registered authorisation it relied on (`grant.authorisation`) and
    what its window lost to the authorisation's scope; a refused request that cited one records the id cited (the
    DPO report lists both); a change to the registry names the authorisation changed (`authorisation_id`)."""
    parameters = request_parameters(request, extra)
    if justification is not None and justification.authorisation_id is not None:
        parameters["authorisation_cited"] = justification.authorisation_id
    used = grant.authorisation if grant is not None else None
    if grant is not None and grant.clamped:
        parameters["clamped"] = grant.clamped
    record = AuditRecord(
        actor=actor, role=role, endpoint=endpoint_of(request), allowed=allowed, parameters=parameters,
        purpose=justification.purpose if justification else None,
        case_reference=justification.case_reference if justification else None,
        authorisation_reference=f"{used.issuing_authority}: {used.reference}" if used else None,
        authorisation_id=(
            authorisation_id if authorisation_id is not None
            else used.authorisation_id if used
            else justification.authorisation_id if justification is not None and not allowed
            else None
        ),
        reason=reason, result_count=result_count, actor_id=actor_id,
    )  # fmt: skip
    if conn is not None:
        await append_audit(conn, record)
        return
    async with svc.pool.acquire() as own:
        await append_audit(own, record)


UNAUTHENTICATED = "(unauthenticated)"
# A refusal of data in a restricted tier names the kind of authorisation needed (access.Denied.required).
REQUIRED_HEADER = "X-Authorisation-Required"


async def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> User:
    """The user of a good bearer token. A failure counts against the source address and, for a known token, its
    user; past the limit they get 429 for the rest of the window, without their token being looked at."""
    svc = services(request)
    now = datetime.now(UTC)
    address = address_key(request.client.host if request.client else None)
    refused = svc.throttle.refusal([address], now)
    if refused is not None:
        raise await _throttled(svc, request, refused)
    if credentials is None:
        check = TokenCheck(None, "missing bearer token")
    else:
        check = await check_token(svc.pool, credentials.credentials)
    if check.user is not None:
        return check.user
    holder = [user_key(check.holder)] if check.holder else []
    refused = svc.throttle.refusal(holder, now)
    svc.throttle.failed([address, *([] if refused else holder)], now)
    if refused is not None:
        raise await _throttled(svc, request, refused)
    await audit(svc, request, actor=UNAUTHENTICATED, role="-", allowed=False, reason=check.refusal)
    detail = "missing bearer token" if credentials is None else check.detail
    raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def _throttled(svc: Services, request: Request, refused: Refusal) -> HTTPException:
    """429; the first refusal of a window has its own audit row, the rest are summed up when it ends."""
    if refused.audit:
        reason = (
            f"too many failed authentications ({refused.failures}) from {refused.key}: refused until "
            f"{refused.until.isoformat()}; later refusals until then are counted in one summary row"
        )
        await audit(svc, request, UNAUTHENTICATED, "-", False, reason=reason, extra={"throttled": refused.key})
    detail = f"too many failed authentications: retry after {refused.retry_after} s"
    return HTTPException(429, detail, headers={"Retry-After": str(refused.retry_after)})


async def audit_summaries(svc: Services, summaries: Iterable[Summary]) -> None:
    """One audit row per throttled window: how many requests were refused, from where, between when."""
    for summary in summaries:
        record = AuditRecord(
            actor=UNAUTHENTICATED, role="-", endpoint="auth.throttled", allowed=False,
            parameters={"throttled": summary.key, "from": summary.first.isoformat(),
                        "until": summary.last.isoformat(), "failures": summary.failures},
            reason=summary.text, result_count=summary.refused,
        )  # fmt: skip
        async with svc.pool.acquire() as conn:
            await append_audit(conn, record)


Caller = Annotated[User, Depends(_caller)]


class Call:
    """One authenticated request: decide access (auditing a denial), then audit the answer with its count."""

    def __init__(self, request: Request, user: User) -> None:
        self.request = request
        self.user = user
        self.svc = services(request)
        self.now = datetime.now(UTC)
        self._justification: Justification | None = None

    @property
    def justification(self) -> Justification:
        if self._justification is None:
            self._justification = Justification.from_headers(self.request.headers)
        return self._justification

    async def deny(self, exc: Denied, extra: Mapping[str, Any] | None = None) -> HTTPException:
        await audit(
            self.svc, self.request, self.user.name, self.user.role.value, False,
            self._justification, exc.reason, extra=extra, actor_id=self.user.user_id,
        )  # fmt: skip
        headers = {REQUIRED_HEADER: exc.required.value} if exc.required is not None else None
        return HTTPException(exc.status, exc.reason, headers=headers)

    async def check_request(self, extra: Mapping[str, Any] | None = None) -> None:
        """Role, purpose and case before a lookup (see access.check_request); a refusal is audited."""
        try:
            check_request(self.user, endpoint_of(self.request), self.justification)
        except Denied as exc:
            raise await self.deny(exc, extra) from None

    async def grant(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        data_class: DataClass = DataClass.PASSAGES,
        cameras: Collection[str] | None = None,
        extra: Mapping[str, Any] | None = None,
        plates: Collection[str] | None = None,
    ) -> Grant:
        """The access decision (access.decide) with the authorisation the request cites loaded from the registry;
        `plates`, the normalised plates the request is bound to, default to what plates_asked() finds. A
        single-query authorisation is spent here, once."""
        try:
            endpoint = endpoint_of(self.request)
            cited = self.justification.authorisation_id
            held = await load_authorisation(self.svc.pool, cited) if cited is not None else None
            grant = decide(
                self.user, endpoint, self.justification, self.svc.settings.retention, self.now,
                since=since, until=until, data_class=data_class, cameras=cameras, authorisation=held,
                plates=plates if plates is not None else plates_asked(self.request, endpoint),
            )  # fmt: skip
            spent = grant.authorisation
            if (
                spent is not None
                and spent.single_query
                and not await use_authorisation_once(self.svc.pool, spent.authorisation_id)
            ):
                raise Denied(403, f"authorisation {spent.authorisation_id} approved a single query, already made")
            return grant
        except Denied as exc:
            raise await self.deny(exc, extra) from None

    async def answered(
        self,
        grant: Grant,
        result_count: int | None,
        extra: Mapping[str, Any] | None = None,
        conn: asyncpg.Connection | None = None,
        authorisation_id: int | None = None,
    ) -> None:
        """Record the allowed request; call it before the data is returned (no audit row, no data). With `conn`, the
        row belongs to the caller's transaction (a change and its audit row commit together)."""
        await audit(
            self.svc, self.request, self.user.name, self.user.role.value, True, grant.justification,
            result_count=result_count, extra=extra, conn=conn, actor_id=self.user.user_id, grant=grant,
            authorisation_id=authorisation_id,
        )  # fmt: skip


async def _call(request: Request, user: Caller) -> Call:
    call = Call(request, user)
    # PostgreSQL text cannot hold NUL: a filter value with one would fail in the query (a 500), so refuse it here,
    # for every route, before any of them reaches the database.
    if any("\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()):
        raise await call.deny(Denied(400, "query parameters may not contain NUL characters"))
    return call


CallDep = Annotated[Call, Depends(_call)]

# The endpoints whose answer is bound to the plate they name (a route, an exact search, hits of a plate): within a
# plate-bound authorisation those plates are what is asked. Every other request (fuzzy, OCR or wildcard search, a
# camera's passages, co-travel, hits lists without `plate`) names no plate it stays within.
_PLATE_BOUND = {"plates.route": "path", "plates.search": "query", "hits.list": "query"}


def plates_asked(request: Request, endpoint: str) -> list[str] | None:
    where = _PLATE_BOUND.get(endpoint)
    if where == "path":
        raw = request.path_params.get("plate")
    elif where == "query" and request.query_params.get("mode", "exact") == "exact":
        raw = request.query_params.get("plate")
    else:
        return None
    plate = normalise(raw) if isinstance(raw, str) else ""
    return [plate] if plate else None


async def justification_headers(
    x_purpose: Annotated[str | None, Header(description="why this data is needed (every data request)")] = None,
    x_case_reference: Annotated[
        str | None, Header(description="case, incident or notice reference (every data request)")
    ] = None,
    x_authorisation_id: Annotated[
        str | None,
        Header(
            description="for data beyond the open-access period: the registry id of the authorisation relied on "
            "(the procureur des Konings' decision in BE, a senior authorisation in the UK, the prosecutor's approval "
            "of this query in NL), registered by the information manager for the stated case"
        ),
    ] = None,
) -> None:
    """Declares the justification headers in the OpenAPI document; Call reads them from the request."""
