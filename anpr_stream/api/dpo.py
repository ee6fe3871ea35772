"""The DPO's report over HTTP (roles dpo and admin): what is held against the retention policy, purges, requests
and denials, the audit chain's state (against the signed checkpoints with ANPR_AUDIT_PUBLIC_KEY and
ANPR_AUDIT_CHECKPOINT_DIR), the retention check, restricted-tier requests with their authorisations, as
JSON or CSV. No camera data."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from anpr_stream import config
from anpr_stream.api.access import Denied
from anpr_stream.api.context import CallDep, error_responses
from anpr_stream.dpo.export import SECTIONS, Section, to_csv
from anpr_stream.dpo.report import DpoReport, build_report

router = APIRouter(prefix="/v1/dpo", tags=["dpo"], responses=error_responses(400, 401, 403))

DEFAULT_WINDOW = timedelta(days=30)


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


CSV_DESCRIPTION = (
    f"CSV: one file whose first column `section` names the section ({', '.join(SECTIONS)}); the header is the union "
    "of the sections' columns. With `section=`, that section alone with its own columns."
)


@router.get(
    "/report",
    name="dpo.report",
    summary="Data held against the retention policy, purges, requests per user and purpose, denials, audit chain, "
    "retention check, restricted-tier requests and their authorisations",
    response_model=DpoReport,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": CSV_DESCRIPTION}},
)
async def report(
    call: CallDep,
    since: Annotated[AwareDatetime | None, Query(description="requests and purges from (default: 30 days ago)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="requests and purges until (default: now)")] = None,
    format: Annotated[Format, Query(description="json (default) or csv")] = Format.JSON,
    section: Annotated[Section | None, Query(description="csv only: one section alone")] = None,
) -> DpoReport | Response:
    grant = await call.grant()
    until = until or call.now
    since = since or until - DEFAULT_WINDOW
    if until <= since:
        raise await call.deny(Denied(400, f"until ({until.isoformat()}) is not after since ({since.isoformat()})"))
    if section is not None and format is not Format.CSV:
        raise await call.deny(Denied(400, "section= selects a CSV section: use it with format=csv"))
    policy = call.svc.settings.retention
    async with call.svc.pool.acquire() as conn:
        built = await build_report(
            conn, policy, call.now, since, until, kafka=call.svc.settings,
            # Read at each request: a key or directory put in place later counts without a restart; one that cannot
            # be read makes the chain not intact (a finding), never a failed request.
            public_key=config.path_value("ANPR_AUDIT_PUBLIC_KEY"),
            checkpoint_dir=config.path_value("ANPR_AUDIT_CHECKPOINT_DIR"),
        )  # fmt: skip
    await call.answered(grant, built.row_count)
    if format is Format.CSV:
        name = f"dpo-report-{call.now:%Y%m%dT%H%M%SZ}" + (f"-{section}" if section else "") + ".csv"
        return Response(
            to_csv(built, section.value if section else None),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return built
