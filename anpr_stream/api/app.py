"""The query API: FastAPI application, its lifespan (database pool, camera registry) and the routes that are not
camera data (who am I, cameras). Served by `anpr-stream api`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from anpr_stream import __version__, config
from anpr_stream.api import authorisations, hits, session
from anpr_stream.api.access import Role
from anpr_stream.api.context import UNAUTHENTICATED, CallDep, Services, audit, error_responses, services
from anpr_stream.api.headers import SecurityHeaders
from anpr_stream.api.users import authenticate
from anpr_stream.cameras import CameraRegistry
from anpr_stream.config import Settings
from anpr_stream.sinks.migrate import migrate

log = logging.getLogger(__name__)

DESCRIPTION = """Investigations, hits and the DPO's report over the passages and hits the worker logs.

Every request is authenticated (`Authorization: Bearer <token>`, tokens from `anpr-stream users add`) and audited,
allowed or denied. Requests for camera data state their purpose (`X-Purpose`) and a case reference
(`X-Case-Reference`); data older than the open-access period of the retention policy (BE: 30 days) is for
investigators only and needs a registered authorisation of that case (`X-Authorisation-Id`: the procureur des
Konings' decision, registered by the zone's information manager under `/v1/registry/authorisations`), else 403 with the
reason; what the authorisation does not cover is cut from the window. Data past retention is never returned."""

general = APIRouter(prefix="/v1", tags=["general"], responses=error_responses(400, 401, 403))


class RetentionView(BaseModel):
    policy: str
    open_access_days: int


class MeView(BaseModel):
    name: str
    role: Role
    cameras: list[str] | None = Field(description="the camera scope; null: every camera")
    covert: bool = Field(description="sees covert lists' details")
    retention: RetentionView


class CameraView(BaseModel):
    camera_id: str
    name: str
    site: str
    road: str
    direction: str
    lat: float = Field(description="a fixed camera's place; a mobile camera's base (its reads carry their position)")
    lon: float
    mobile: bool = Field(description="a camera on a vehicle: where a read was taken is the read's position")


class CameraList(BaseModel):
    cameras: list[CameraView]


@general.get("/me", name="me", summary="The caller: name, role, camera scope, covert clearance", response_model=MeView)
async def me(call: CallDep) -> dict[str, Any]:
    grant = await call.grant()
    await call.answered(grant, 1)
    user = call.user
    policy = call.svc.settings.retention
    return {
        "name": user.name,
        "role": user.role.value,
        "cameras": sorted(user.camera_scope) if user.camera_scope is not None else None,
        "covert": user.sees_covert,
        "retention": {"policy": policy.name, "open_access_days": policy.open_access.days},
    }


@general.get(
    "/cameras",
    name="cameras.list",
    summary="The camera registry (within the caller's scope)",
    response_model=CameraList,
)
async def cameras(call: CallDep) -> dict[str, Any]:
    grant = await call.grant()
    shown = [
        {"camera_id": c.camera_id, "name": c.name, "site": c.site, "road": c.road, "direction": c.direction,
         "lat": c.lat, "lon": c.lon, "mobile": c.mobile}
        for c in call.svc.cameras
        if call.user.sees_camera(c.camera_id)
    ]  # fmt: skip
    await call.answered(grant, len(shown))
    return {"cameras": shown}


async def _requester(request: Request) -> tuple[str, str, int | None]:
    """Actor, role and actor id (api_users) for the audit row of a request refused before (or outside) the route's
    own decision."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    user = await authenticate(services(request).pool, token) if token else None
    return (user.name, user.role.value, user.user_id) if user else (UNAUTHENTICATED, "-", None)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """A malformed request is a request too: audited as denied, with who sent it when the token is valid."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)[:1000]
    actor, role, actor_id = await _requester(request)
    await audit(services(request), request, actor, role, False, reason=f"invalid request: {reason}", actor_id=actor_id)
    return JSONResponse({"detail": errors}, status_code=422)


UNSTORABLE_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)


async def _unstorable_text(request: Request, exc: Exception) -> JSONResponse:
    """Safety net for every route: text PostgreSQL cannot hold (NUL, U+0000 in JSON) that a route's model let
    through is the caller's error (400, audited), not the server's (500). Query parameters are refused earlier, in
    the Call dependency; string fields of request bodies should refuse NUL in their model (pattern `^[^\\x00]*$`)."""
    reason = "text with NUL characters cannot be stored or searched"
    actor, role, actor_id = await _requester(request)
    await audit(services(request), request, actor, role, False, reason=reason, actor_id=actor_id)
    return JSONResponse({"detail": reason}, status_code=400)


def create_app(settings: Settings, routers: tuple[APIRouter, ...] = (), docs: bool | None = None) -> FastAPI:
    """The app with its routers; `docs` serves /docs and /redoc (default: ANPR_API_DOCS, see api.headers)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # JIT compilation costs 300-500 ms on queries that run in ~20 ms (measured by benchmarks/bench_queries.py).
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10, server_settings={"jit": "off"})
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            app.state.services = Services(settings, pool, CameraRegistry.configured(settings.cameras_file))
            yield
        finally:
            await pool.close()

    docs = config.value("ANPR_API_DOCS") if docs is None else docs
    app = FastAPI(
        title="anpr-stream API", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
    )  # fmt: skip
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for error in UNSTORABLE_TEXT:
        app.add_exception_handler(error, _unstorable_text)
    registry = (authorisations.router, authorisations.registry_router)
    for router in (general, hits.router, session.router, *registry, *routers):
        app.include_router(router)
    return app
