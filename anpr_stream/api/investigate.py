"""Investigations: plate search (exact, OCR-equivalent, fuzzy, wildcard), passages at a camera, a plate's route
(JSON, CSV, GeoJSON), co-travel, and retroactive hits of a new watchlist entry over stored passages."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from rapidfuzz.distance import Levenshtein

from anpr_stream.api.access import Denied, Grant, default_since
from anpr_stream.api.context import Call, CallDep, error_responses, justification_headers
from anpr_stream.api.passage_queries import (
    MOBILE_RADIUS_M,
    Key,
    TooManyCandidates,
    candidate_plates,
    cotravellers,
    passage_view,
    passages_page,
    route,
)
from anpr_stream.api.plate_query import (
    InvalidQuery,
    SearchMode,
    check_literals,
    decode_cursor,
    encode_cursor,
    fuzzy_form,
    fuzzy_like_patterns,
    like_pattern,
    plate_term,
    wildcards_to_like,
)
from anpr_stream.cameras import Camera
from anpr_stream.console.svgmap import RoutePoint, build_map
from anpr_stream.core.entry import MAX_ID, MAX_REFERENCE
from anpr_stream.core.matching import WatchlistIndex
from anpr_stream.core.matching.segment import MIN_FUZZY_LENGTH
from anpr_stream.core.plates import confusion_form
from anpr_stream.core.plates.normalisation import normalise
from anpr_stream.core.policy import MatchPolicy
from anpr_stream.csvsafe import safe_cell
from anpr_stream.retention.policy import DataClass
from anpr_stream.watchlists import InvalidEntry, WatchlistEntry, entry_from_mapping

# Refusals of input the document can express (types, bounds, patterns, a UTC offset) are FastAPI's 422 (a list of
# errors); what only the query can tell (a plate with no letters or digits, a cursor this API did not hand out, a
# search too broad to run, an entry ending before it starts) is a 400 with the reason, as on /v1/hits.
router = APIRouter(
    prefix="/v1",
    tags=["investigations"],
    dependencies=[Depends(justification_headers)],
    responses=error_responses(400, 401, 403, 404),
)

MAX_PAGE = 1000
MAX_ROUTE = 10_000
MAX_COTRAVEL_TARGETS = 2_000
# Retroactive hits: at most this many passages and plates in one answer (`truncated` says when there were more).
MAX_RETROACTIVE = 1_000

Since = Annotated[
    AwareDatetime | None,
    Query(description="oldest observed_at, with a UTC offset (default: the open-access period)"),
]
Until = Annotated[AwareDatetime | None, Query(description="newest observed_at, with a UTC offset (default: now)")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PlatePath = Annotated[
    str, Path(min_length=1, max_length=32, description="the plate as written; separators and case are ignored")
]
Ocr = Annotated[bool, Query(description="true: the plate's whole confusion class (0/O, 8/B, ...), not just the plate")]


async def _granted(
    call: Call,
    since: datetime | None,
    until: datetime | None,
    cameras: list[str] | None = None,
    plates: list[str] | None = None,
) -> tuple[Grant, datetime]:
    """The access decision for a window of passages, and the granted lower bound."""
    policy = call.svc.settings.retention
    grant = await call.grant(
        since=since or default_since(policy, call.now), until=until, data_class=DataClass.PASSAGES, cameras=cameras,
        plates=plates,
    )  # fmt: skip
    assert grant.since is not None  # decide() always bounds a data window by the retention horizon
    return grant, grant.since


async def _invalid(call: Call, exc: Exception) -> Exception:
    return await call.deny(Denied(400, str(exc)))


def _window(grant: Grant, since: datetime) -> dict[str, str | None]:
    return {"since": since.isoformat(), "until": grant.until.isoformat() if grant.until else None}


@router.get(
    "/plates/search", name="plates.search", summary="Passages of a plate: exact, OCR-equivalent, fuzzy, wildcard"
)
async def search(
    call: CallDep,
    plate: Annotated[
        str,
        Query(min_length=1, max_length=32, description="the plate; in wildcard mode `?` one character, `*` any run"),
    ],
    mode: Annotated[SearchMode, Query(description="exact | ocr | fuzzy | wildcard")] = SearchMode.EXACT,
    distance: Annotated[int, Query(ge=1, le=2, description="fuzzy mode: most Levenshtein edits (1 or 2)")] = 1,
    since: Since = None,
    until: Until = None,
    camera: Annotated[list[str] | None, Query(description="only these cameras (repeat the parameter)")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    grant, since_at = await _granted(call, since, until, camera)
    cameras = grant.cameras(camera)
    distances: dict[str, int] = {}
    try:
        after = decode_cursor(cursor) if cursor else None
        key: Key
        value: str | list[str]
        if mode is SearchMode.WILDCARD:
            key, value = Key.PLATE_LIKE, like_pattern(plate)
        elif mode is SearchMode.OCR:
            key, value = Key.PLATE_CLASS, confusion_form(plate_term(plate))
        elif mode is SearchMode.FUZZY:
            form = fuzzy_form(plate_term(plate), distance)
            candidates = await candidate_plates(
                call.svc.pool, since_at, grant.until, cameras, class_like=fuzzy_like_patterns(form, distance),
                lengths=(len(form) - distance, len(form) + distance),
            )  # fmt: skip
            # Up to MAX_CANDIDATE_PLATES: off the event loop, so that other requests are not held up.
            distances = await asyncio.to_thread(fuzzy_distances, candidates, form, distance)
            key, value = Key.PLATES, sorted(distances)
        else:
            key, value = Key.PLATE, plate_term(plate)
    except (InvalidQuery, TooManyCandidates) as exc:
        raise await _invalid(call, exc) from None
    rows = await passages_page(call.svc.pool, key, value, since_at, grant.until, cameras, after, limit)
    passages = [passage_view(row) for row in rows]
    if mode is SearchMode.FUZZY:
        for passage in passages:
            passage["distance"] = distances[passage["plate"]]
    next_cursor = encode_cursor(rows[-1]["observed_at"], rows[-1]["read_id"]) if len(rows) == limit else None
    await call.answered(grant, len(passages))
    return {
        "mode": mode.value, "searched": value if isinstance(value, str) else plate_term(plate),
        **_window(grant, since_at), "passages": passages, "next_cursor": next_cursor,
    }  # fmt: skip


def fuzzy_distances(candidates: list[str], form: str, distance: int) -> dict[str, int]:
    """Candidate plate -> its distance to `form` (confusion forms), for those within `distance`."""
    found: dict[str, int] = {}
    for candidate in candidates:
        edits = Levenshtein.distance(confusion_form(candidate), form, score_cutoff=distance)
        if edits <= distance:
            found[candidate] = edits
    return found


@router.get("/cameras/{camera_id}/passages", name="cameras.passages", summary="Passages at a camera, newest first")
async def camera_passages(
    call: CallDep,
    camera_id: Annotated[str, Path(max_length=128)],
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    grant, since_at = await _granted(call, since, until, [camera_id])
    try:
        after = decode_cursor(cursor) if cursor else None
    except InvalidQuery as exc:
        raise await _invalid(call, exc) from None
    if camera_id not in call.svc.cameras:
        raise await call.deny(Denied(404, f"no camera {camera_id!r} in the registry"))
    rows = await passages_page(call.svc.pool, Key.CAMERA, camera_id, since_at, grant.until, None, after, limit)
    next_cursor = encode_cursor(rows[-1]["observed_at"], rows[-1]["read_id"]) if len(rows) == limit else None
    await call.answered(grant, len(rows))
    return {
        "camera_id": camera_id, **_window(grant, since_at), "passages": [passage_view(row) for row in rows],
        "next_cursor": next_cursor,
    }  # fmt: skip


class RouteFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    GEOJSON = "geojson"
    SVG = "svg"  # the zone map with the route over it (console/svgmap.py)


# The columns added for mobile cameras come last: a consumer of the earlier twelve reads them where it did.
ROUTE_CSV_FIELDS = (
    "observed_at", "camera_id", "camera_name", "road", "direction", "lat", "lon", "plate_read", "plate", "country",
    "confidence", "read_id", "heading", "mobile", "note",
)  # fmt: skip

# Why a stop has no place: it stays in the table (it is a passage) but is left out of the map and the line, rather
# than drawn at the camera's registry position, which for a mobile camera is its base and not where the read was.
NOTE_NO_POSITION = "mobile camera; the read carries no position: not on the map"
NOTE_UNKNOWN_CAMERA = "camera not in the registry: not on the map"

Position = tuple[float, float, float | None]


def read_position(row: asyncpg.Record) -> Position | None:
    """(lat, lon, heading) of a route row's read (route()'s position columns), or None without a usable one."""
    lat, lon = row["position_lat"], row["position_lon"]
    if lat is None or lon is None:
        return None
    heading = row["position_heading"]
    return float(lat), float(lon), None if heading is None else float(heading)


def route_stop(passage: dict[str, Any], camera: Camera | None, position: Position | None) -> dict[str, Any]:
    """A passage with its place: the registry's for a fixed camera, the read's own for a mobile one (heading too;
    none, with a note, when the read has no position). A fixed camera's reads keep its place whatever they carry."""
    lat: float | None = None
    lon: float | None = None
    heading: float | None = None
    note: str | None = None
    if camera is None:
        note = NOTE_UNKNOWN_CAMERA
    elif not camera.mobile:
        lat, lon = camera.lat, camera.lon
    elif position is not None:
        lat, lon, heading = position
    else:
        note = NOTE_NO_POSITION
    return {
        **passage,
        "camera_name": camera.name if camera else None,
        "road": camera.road if camera else None,
        "direction": camera.direction if camera else None,
        "lat": lat,
        "lon": lon,
        "heading": heading,
        "mobile": camera.mobile if camera else None,
        "note": note,
    }


def route_csv(stops: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=ROUTE_CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(
        {k: ("true" if v else "false") if isinstance(v, bool) else safe_cell(v) for k, v in stop.items()}
        for stop in stops
    )
    return out.getvalue()


def route_geojson(plate: str, stops: list[dict[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection: one Point per passage (null geometry for a camera missing from the registry and for a
    mobile camera's read without a position, `note` says which), then the LineString through the located passages
    in time order (RFC 7946: [lon, lat]). A mobile camera's passage is at the read's position, `heading` beside."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "geometry": None if stop["lat"] is None else {"type": "Point", "coordinates": [stop["lon"], stop["lat"]]},
            "properties": {k: v for k, v in stop.items() if k not in ("lat", "lon")},
        }
        for stop in stops
    ]
    line = [[stop["lon"], stop["lat"]] for stop in stops if stop["lat"] is not None]
    if len(line) >= 2:
        features.append({
            "type": "Feature", "geometry": {"type": "LineString", "coordinates": line},
            "properties": {"plate": plate, "passages": len(line)},
        })  # fmt: skip
    return {"type": "FeatureCollection", "features": features}


def route_points(stops: list[dict[str, Any]]) -> list[RoutePoint]:
    """The located stops, in time order, for the map (the same places as the GeoJSON's)."""
    return [
        RoutePoint(
            stop["lat"], stop["lon"], f"{stop['observed_at']} {stop['camera_id']} ({stop['plate_read']})",
            mobile=bool(stop["mobile"]), heading=stop["heading"],
        )
        for stop in stops
        if stop["lat"] is not None
    ]  # fmt: skip


@router.get(
    "/plates/{plate}/route",
    name="plates.route",
    summary="A plate's passages in time order with their places (JSON, CSV, GeoJSON or an SVG map)",
    responses={200: {"content": {"text/csv": {}, "application/geo+json": {}, "image/svg+xml": {}}}},
    response_model=None,
)
async def plate_route(
    call: CallDep,
    plate: PlatePath,
    since: Since = None,
    until: Until = None,
    camera: Annotated[list[str] | None, Query(description="only these cameras")] = None,
    ocr: Ocr = False,
    format: Annotated[RouteFormat, Query(description="json | csv | geojson | svg")] = RouteFormat.JSON,
    limit: Annotated[int, Query(ge=1, le=MAX_ROUTE)] = MAX_ROUTE,
) -> dict[str, Any] | Response:
    grant, since_at = await _granted(call, since, until, camera)
    try:
        normalised = plate_term(plate)
    except InvalidQuery as exc:
        raise await _invalid(call, exc) from None
    key, value = (Key.PLATE_CLASS, confusion_form(normalised)) if ocr else (Key.PLATE, normalised)
    rows = await route(call.svc.pool, key, value, since_at, grant.until, grant.cameras(camera), limit + 1)
    truncated = len(rows) > limit
    registry = call.svc.cameras
    stops = [route_stop(passage_view(row), registry.get(row["camera_id"]), read_position(row)) for row in rows[:limit]]
    await call.answered(grant, len(stops), {"format": format.value})
    headers = {"X-Route-Truncated": "true" if truncated else "false"}
    if format is RouteFormat.CSV:
        headers["Content-Disposition"] = f'attachment; filename="route-{normalised}.csv"'
        return Response(route_csv(stops), media_type="text/csv; charset=utf-8", headers=headers)
    if format is RouteFormat.GEOJSON:
        body = orjson.dumps(route_geojson(normalised, stops))
        return Response(body, media_type="application/geo+json", headers=headers)
    if format is RouteFormat.SVG:
        shown = [c for c in registry if call.user.sees_camera(c.camera_id)]
        drawing = build_map(shown, f"Route of {normalised}", route_points(stops))
        return Response(drawing, media_type="image/svg+xml", headers=headers)
    return {"plate": normalised, "ocr": ocr, **_window(grant, since_at), "truncated": truncated, "passages": stops}


@router.get(
    "/plates/{plate}/cotravel", name="plates.cotravel", summary="Plates travelling with a plate (convoy), ranked"
)
async def cotravel(
    call: CallDep,
    plate: PlatePath,
    since: Since = None,
    until: Until = None,
    window_seconds: Annotated[int, Query(ge=1, le=3600, description="+- seconds around each target passage")] = 60,
    min_cameras: Annotated[int, Query(ge=1, le=100, description="at least this many shared distinct cameras")] = 2,
    camera: Annotated[list[str] | None, Query(description="only the target's passages at these cameras")] = None,
    ocr: Ocr = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    radius_m: Annotated[
        int, Query(ge=10, le=5000, description="mobile cameras: at most this many metres between the two reads")
    ] = int(MOBILE_RADIUS_M),
) -> dict[str, Any]:
    grant, since_at = await _granted(call, since, until, camera)
    try:
        normalised = plate_term(plate)
    except InvalidQuery as exc:
        raise await _invalid(call, exc) from None
    plate_class = confusion_form(normalised)
    key, value = (Key.PLATE_CLASS, plate_class) if ocr else (Key.PLATE, normalised)
    targets, rows = await cotravellers(
        call.svc.pool, key, value, plate_class, since_at, grant.until, grant.cameras(camera),
        timedelta(seconds=window_seconds), min_cameras, limit, MAX_COTRAVEL_TARGETS, call.svc.cameras.mobile_ids(),
        float(radius_m),
    )  # fmt: skip
    found = [
        {
            "plate": row["plate"],
            "plates": sorted(row["plates"]),
            "cameras": row["cameras"],
            "copassages": row["copassages"],
            "shared": shared_passages(row),
        }
        for row in rows
    ]
    await call.answered(grant, len(found))
    return {
        "plate": normalised, "ocr": ocr, **_window(grant, since_at), "window_seconds": window_seconds,
        "min_cameras": min_cameras, "radius_m": radius_m, "target_passages": targets,
        "target_passages_truncated": targets >= MAX_COTRAVEL_TARGETS, "cotravellers": found,
    }  # fmt: skip


def shared_passages(row: asyncpg.Record) -> list[dict[str, Any]]:
    """A co-traveller's passages beside the target's; at a mobile camera also where it was read (`lat`, `lon`) and
    how far that was from the target's read (`distance_m`); those three are null at fixed cameras."""
    columns = ("shared_cameras", "shared_at", "target_at", "shared_lat", "shared_lon", "shared_distance_m")
    return [
        {
            "camera_id": camera_id, "observed_at": at.isoformat(), "target_observed_at": target_at.isoformat(),
            "lat": lat, "lon": lon, "distance_m": None if metres is None else round(metres, 1),
        }
        for camera_id, at, target_at, lat, lon, metres in zip(*(row[c] for c in columns), strict=True)
    ]  # fmt: skip


def retroactive_candidates(entry: WatchlistEntry, policy: MatchPolicy) -> dict[str, Any]:
    """How to pull candidates for an entry from the passages: the confusion class for exact and OCR-equivalent
    entries, LIKE patterns on it for partial plates and for fuzzy ones (the list's distance under the live match
    policy). Every candidate is then verified by the live matcher, so this only has to miss nothing."""
    form = confusion_form(entry.normalised)
    if entry.is_pattern:
        return {"class_like": [wildcards_to_like(form)]}
    distance = policy.for_list(entry.list).max_distance
    if distance and len(entry.normalised) >= MIN_FUZZY_LENGTH:
        return {
            "class_like": fuzzy_like_patterns(form, distance),
            "lengths": (len(form) - distance, len(form) + distance),
        }
    return {"class_equals": form}


def retroactive_matches(entry: WatchlistEntry, plates: list[str], policy: MatchPolicy) -> dict[str, tuple[str, int]]:
    """Plate -> (match kind, distance) for the candidate plates the live matcher matches to the entry. Validity
    dates are left out: a look-back asks about the past whatever date the entry starts being alerted on."""
    index = WatchlistIndex.build([replace(entry, valid_from=None, valid_until=None)])
    at = datetime.now(UTC)
    matched: dict[str, tuple[str, int]] = {}
    for plate in plates:
        found = index.match(plate, at, policy)
        if found:
            matched[plate] = (found[0].kind, found[0].distance)
    return matched


# What entry_from_mapping accepts, as far as a schema can say it (text is stripped; control characters refused), so
# that a schema-valid entry is accepted: its remaining refusals (a plate with no letters or digits, valid_until not
# after valid_from) are 400s with its reason.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"
NOT_BLANK = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"

# An open validity bound is empty in watchlist files and on the watchlist topic (entry_to_mapping), null in JSON.
OpenBound = AwareDatetime | Literal[""] | None


class RetroactiveEntry(BaseModel):
    """A watchlist entry as in watchlist files and on the watchlist topic; validated by the same code
    (watchlists.entry_from_mapping), whose reason a refusal carries."""

    model_config = ConfigDict(extra="forbid")

    entry_id: str = Field(max_length=MAX_ID, pattern=NOT_BLANK)
    list: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="lower_snake_case list name, e.g. stolen_vehicle (its match policy applies)",
    )
    plate: str = Field(max_length=64, pattern=NOT_BLANK, description="the plate; `?` and `*` make a partial plate")
    country: str | None = Field(default=None, pattern=r"^([A-Za-z]{2})?$", description="ISO 3166-1 alpha-2 or empty")
    priority: int = Field(ge=1, le=5, description="1 (highest) to 5")
    action: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="e.g. intercept, observe, inform")
    valid_from: OpenBound = Field(default=None, description="RFC 3339, empty or null; ignored by the look-back")
    valid_until: OpenBound = Field(default=None, description="RFC 3339, empty or null; ignored by the look-back")
    reference: str = Field(default="", max_length=MAX_REFERENCE, pattern=NO_CONTROL)
    covert: bool = False


@router.post(
    "/watchlist/retroactive",
    name="hits.retroactive",
    summary="Retroactive hits: stored passages in a look-back window that a (new) watchlist entry matches",
)
async def retroactive(
    call: CallDep,
    body: Annotated[RetroactiveEntry, Body()],
    lookback_days: Annotated[int, Query(ge=1, le=366, description="days back from now to search")] = 30,
    limit: Annotated[int, Query(ge=1, le=MAX_RETROACTIVE)] = MAX_RETROACTIVE,
) -> dict[str, Any]:
    entry_fields = body.model_dump()
    # The audit row says what was looked for: the entry's plate (a partial plate is its pattern), not only its id.
    extra: dict[str, Any] = {
        "entry_id": body.entry_id, "list": body.list, "plate": body.plate, "lookback_days": lookback_days,
    }  # fmt: skip
    lookback = timedelta(days=lookback_days)
    policy_window = call.svc.settings.retention
    since = call.now - lookback
    if lookback <= policy_window.open_access:
        # A look-back as long as the open-access period (the default 30 days under BE) stays open: trimmed by the
        # minute that keeps it inside the period by the time the decision is made.
        since = max(since, default_since(policy_window, call.now))
    # A whole plate binds the look-back to that plate (within a plate-bound authorisation); a partial plate does not.
    whole = normalise(body.plate) if not any(c in body.plate for c in "*?%_") else ""
    grant, since_at = await _granted(call, since, None, plates=[whole] if whole else None)
    try:
        entry = entry_from_mapping(entry_fields)
        if entry.is_pattern:
            extra["pattern"] = entry.normalised
            check_literals(entry.normalised, body.plate, "a look-back for a partial plate")
    except (InvalidEntry, InvalidQuery) as exc:
        prefix = "invalid watchlist entry: " if isinstance(exc, InvalidEntry) else ""
        raise await call.deny(Denied(400, f"{prefix}{exc}"), extra) from None
    policy = MatchPolicy.parse(call.svc.settings.match_policy)
    cameras = grant.cameras(None)
    try:
        plates = await candidate_plates(
            call.svc.pool, since_at, grant.until, cameras, **retroactive_candidates(entry, policy)
        )
    except TooManyCandidates as exc:
        raise await call.deny(Denied(400, str(exc)), extra) from None
    # The live matcher over up to MAX_CANDIDATE_PLATES plates is Python work: off the event loop.
    matched = await asyncio.to_thread(retroactive_matches, entry, plates, policy)
    shown_plates = sorted(matched)[:limit]
    rows: list[asyncpg.Record] = []
    if matched:
        rows = await passages_page(
            call.svc.pool, Key.PLATES, sorted(matched), since_at, grant.until, cameras, None, limit + 1
        )
    hits = [
        {**passage_view(row), "match_kind": matched[row["plate_norm"]][0], "distance": matched[row["plate_norm"]][1]}
        for row in rows[:limit]
    ]
    truncated = len(rows) > limit or len(matched) > limit
    await call.answered(grant, len(hits), {**extra, "truncated": truncated})
    return {
        "entry": {"entry_id": entry.entry_id, "list": entry.list, "plate": entry.plate},
        "lookback_days": lookback_days, **_window(grant, since_at), "count": len(hits), "limit": limit,
        "truncated": truncated, "plates": shown_plates, "hits": hits,
    }  # fmt: skip
