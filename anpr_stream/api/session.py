"""The caller's session: logout (revokes the token the request came with, and only it), and, in the app's
lifespan, the audit summaries of throttled authentication windows as they end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from anpr_stream.api.auth_throttle import Summary
from anpr_stream.api.context import Caller, Services, audit, audit_summaries, bearer, error_responses, services
from anpr_stream.api.users import log_out

log = logging.getLogger(__name__)

# How often ended windows are looked for: a summary row is written at most this long after its window ends.
SWEEP_SECONDS = 5.0


@contextlib.asynccontextmanager
async def _summaries(app: FastAPI) -> AsyncIterator[None]:
    svc: Services = app.state.services
    task = asyncio.create_task(_sweep(svc), name="auth-throttle-summaries")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _write(svc, svc.throttle.drain())


async def _sweep(svc: Services) -> None:
    while True:
        await asyncio.sleep(min(SWEEP_SECONDS, svc.settings.auth_window_seconds))
        await _write(svc, svc.throttle.due(datetime.now(UTC)))


async def _write(svc: Services, summaries: list[Summary]) -> None:
    if not summaries:
        return
    try:
        await audit_summaries(svc, summaries)
    except Exception:
        log.exception("could not write %d throttled-authentication summaries to the audit log", len(summaries))


router = APIRouter(prefix="/v1/session", tags=["session"], responses=error_responses(401), lifespan=_summaries)


class LoggedOut(BaseModel):
    token_id: int | None = Field(description="the token revoked; null when it was revoked already")
    revoked: bool


@router.post(
    "/logout",
    name="session.logout",
    summary="Revoke the bearer token of this request (the user's other tokens stay good)",
    response_model=LoggedOut,
)
async def logout(
    request: Request,
    user: Caller,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> LoggedOut:
    svc = services(request)
    assert credentials is not None  # the Caller dependency refused a request without one
    async with svc.pool.acquire() as conn, conn.transaction():
        token_id = await log_out(conn, credentials.credentials)
        if token_id is None:  # revoked meanwhile (another logout, `users revoke`): nothing left to do
            await audit(svc, request, user.name, user.role.value, False, reason="token already revoked",
                        conn=conn, actor_id=user.user_id)  # fmt: skip
            return LoggedOut(token_id=None, revoked=False)
        await audit(svc, request, user.name, user.role.value, True, extra={"token_id": token_id}, result_count=1,
                    conn=conn, actor_id=user.user_id)  # fmt: skip
    return LoggedOut(token_id=token_id, revoked=True)
