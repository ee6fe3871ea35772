"""Serving the browser pages: the dispatch console (`/console`) and the investigators' and DPO's workspace
(`/workspace`), their static files (no authentication: they hold no data; every request they make for data is
authenticated, justified and audited by the API), and the zone map (authenticated and audited like the camera list
it draws)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from anpr_stream.api.context import CallDep, error_responses
from anpr_stream.console.svgmap import build_map

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# Everything the page uses comes from this service: a CDN or tile server slipping in fails loudly in the browser.
HEADERS = {
    "Cache-Control": "no-cache",
    # blob: the hit cards' evidence images, fetched with the user's token and shown through object URLs.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter()


@router.get("/console", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/workspace", include_in_schema=False)
async def workspace_page() -> FileResponse:
    return FileResponse(STATIC / "workspace.html", media_type="text/html", headers=HEADERS)


@router.get("/console/static/{name}", include_in_schema=False)
async def console_static(name: str) -> FileResponse:
    path = STATIC / name
    media_type = MEDIA_TYPES.get(path.suffix)
    # Only the files shipped in the package's static folder, by exact name: no path games.
    if media_type is None or name not in {p.name for p in STATIC.iterdir()}:
        raise HTTPException(404, f"no console file {name!r}")
    return FileResponse(path, media_type=media_type, headers=HEADERS)


@router.get("/v1/live/map.svg", name="cameras.map", tags=["live"], summary="The zone's camera map (SVG, in scope)",
            response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}, **error_responses(400, 401, 403)})  # fmt: skip
async def zone_map(call: CallDep) -> Response:
    grant = await call.grant()
    shown = [c for c in call.svc.cameras if call.user.sees_camera(c.camera_id)]
    await call.answered(grant, len(shown))
    return Response(build_map(shown), media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})
