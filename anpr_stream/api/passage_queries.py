"""The SQL of the investigation endpoints, apart from HTTP so that the benchmark runs exactly what the API runs.

Every query takes the window and camera scope the access decision granted; parameters are always bound, the only
text put together is a choice between constant fragments. Rows never carry `has_hit` (it would tell a searcher
that a plate is on a list, covert ones included) nor `extra` (a route reads only the mobile camera's `position` out of
it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg

from anpr_stream.core.plates.confusion import CONFUSION_CLASSES

PASSAGE_COLUMNS = "read_id, camera_id, observed_at, plate_raw, plate_norm, country, confidence, plate_format"

# Co-travel at a mobile camera: two reads are together when they are this close (metres, the reads' positions) as well
# as close in time; the same mobile camera id alone says nothing, the vehicle moves.
MOBILE_RADIUS_M = 200.0
# Metres per degree of latitude (mean Earth radius 6,371,008.8 m); a degree of longitude is cos(lat) of it.
METRES_PER_DEGREE = 111_195.08


def position_number(alias: str, field: str, low: int, high: int) -> str:
    """SQL for `<alias>.extra -> position -> <field>` as double precision, NULL unless a number in [low, high]: the
    position is stored as the reading gave it, and a string or a 1e400 cast blindly would fail the whole query
    (CASE, unlike AND, evaluates in order). Constant text only: `alias` and `field` come from this module."""
    path = f"{alias}.extra #> '{{position,{field}}}'"
    return (
        f"CASE WHEN jsonb_typeof({path}) = 'number' THEN"
        f" CASE WHEN ({path})::numeric BETWEEN {low} AND {high} THEN ({path})::float8 END END"
    )


def distance_sql(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """SQL for the distance in metres between two points (equirectangular: within a metre at a few km, which is
    what co-travel asks about); NULL when a coordinate is."""
    return (
        f"sqrt(power(({lat1} - {lat2}) * {METRES_PER_DEGREE}, 2)"
        f" + power(({lon1} - {lon2}) * {METRES_PER_DEGREE} * cos(radians({lat2})), 2))"
    )


TARGET_LAT = position_number("passages", "lat", -90, 90)
TARGET_LON = position_number("passages", "lon", -180, 180)
SHARED_LAT = position_number("q", "lat", -90, 90)
SHARED_LON = position_number("q", "lon", -180, 180)
PAIR_DISTANCE = distance_sql("p.lat", "p.lon", "t.lat", "t.lon")

ROUTE_COLUMNS = (
    f"{PASSAGE_COLUMNS}, {position_number('passages', 'lat', -90, 90)} AS position_lat, "
    f"{position_number('passages', 'lon', -180, 180)} AS position_lon, "
    f"{position_number('passages', 'heading', 0, 360)} AS position_heading"
)


# A plate's confusion class is a function of its normalised plate (plates/confusion.py), so `plate_norm = X` is
# served by the class index with `plate_class = class(X)` and the plate rechecked: the few OCR twins of a plate cost a
# recheck each, and the day partition being written keeps one btree fewer (migration 0015 drops
# passages_plate_norm_time: about a sixth of the write time of every passage).
_CLASS_FROM = "".join(cls[1:] for cls in CONFUSION_CLASSES)
_CLASS_TO = "".join(cls[0] * (len(cls) - 1) for cls in CONFUSION_CLASSES)


def class_sql(text: str) -> str:
    """SQL for the confusion class of the normalised plate `text` (a parameter or column, never user text): the
    classes are constants of plates/confusion.py, of letters and digits only."""
    return f"translate({text}, '{_CLASS_FROM}', '{_CLASS_TO}')"


class Key(StrEnum):
    """The indexed column a page of passages is selected by."""

    PLATE = f"plate_class = {class_sql('$1')} AND plate_norm = $1"  # passages_plate_class_time, rechecked
    PLATE_CLASS = "plate_class = $1"  # passages_plate_class_time
    # passages_plate_class_time, one probe per class, rechecked
    PLATES = (
        f"plate_class = ANY(ARRAY(SELECT {class_sql('p')} FROM unnest($1::text[]) AS p)) "  # noqa: S608 -- constants
        "AND plate_norm = ANY($1::text[])"
    )
    PLATE_LIKE = "plate_norm LIKE $1"  # passages_plate_norm_trgm
    CAMERA = "camera_id = $1"  # passages_camera_time


# Fuzzy searches and retroactive hits gather the distinct plates first and verify them in Python: far fewer than
# passages, and the verification is the live matcher's own code. A window whose candidates exceed this is refused.
MAX_CANDIDATE_PLATES = 200_000


class TooManyCandidates(Exception):
    """The candidate plates of a search exceed MAX_CANDIDATE_PLATES: the caller narrows the window or cameras."""


@asynccontextmanager
async def without_jit(conn: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A transaction with JIT compilation off. Trap: the planner costs a query over many day partitions high
    (it cannot know how few rows a plate has), crosses jit_above_cost and then spends 300-500 ms compiling a
    query that runs in 20 ms (measured on co-travel at 10M passages: p50 480 ms with JIT, 20 ms without)."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as own, own.transaction():
            await own.execute("SET LOCAL jit = off")
            yield own
    else:
        async with conn.transaction():
            await conn.execute("SET LOCAL jit = off")
            yield conn


def passage_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "read_id": row["read_id"],
        "camera_id": row["camera_id"],
        "observed_at": row["observed_at"].isoformat(),
        "plate_read": row["plate_raw"],
        "plate": row["plate_norm"],
        "country": row["country"],
        "confidence": round(float(row["confidence"]), 4),
        "plate_format": row["plate_format"],
    }


async def passages_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: Key,
    value: str | list[str],
    since: datetime,
    until: datetime | None,
    cameras: list[str] | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Passages selected by `key`, newest first, after the keyset cursor `after` (the last row of the previous
    page)."""
    after_at, after_id = after if after is not None else (None, None)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {PASSAGE_COLUMNS} FROM passages
            WHERE {key.value} AND observed_at >= $2 AND ($3::timestamptz IS NULL OR observed_at <= $3)
              AND ($4::text[] IS NULL OR camera_id = ANY($4))
              AND ($5::timestamptz IS NULL OR (observed_at, read_id) < ($5, $6::text))
            ORDER BY observed_at DESC, read_id DESC LIMIT $7""",  # noqa: S608 -- constant fragments only
        value, since, until, cameras, after_at, after_id, limit,
    )  # fmt: skip
    return rows


async def candidate_plates(
    conn: asyncpg.Connection | asyncpg.Pool,
    since: datetime,
    until: datetime | None,
    cameras: list[str] | None,
    class_equals: str | None = None,
    class_like: list[str] | None = None,
    lengths: tuple[int, int] | None = None,
) -> list[str]:
    """Distinct normalised plates in the window whose confusion class equals `class_equals` or matches one of the
    LIKE patterns `class_like` (served by the trigram index passages_plate_class_trgm), with a class length in
    `lengths` (inclusive) if given."""
    low, high = lengths if lengths is not None else (None, None)
    async with without_jit(conn) as own:
        rows = await own.fetch(
            """SELECT DISTINCT plate_norm FROM passages
                WHERE ($1::text IS NULL OR plate_class = $1) AND ($2::text[] IS NULL OR plate_class LIKE ANY($2))
                  AND ($3::int IS NULL OR length(plate_class) BETWEEN $3 AND $4)
                  AND observed_at >= $5 AND ($6::timestamptz IS NULL OR observed_at <= $6)
                  AND ($7::text[] IS NULL OR camera_id = ANY($7))
                LIMIT $8""",
            class_equals, class_like, low, high, since, until, cameras, MAX_CANDIDATE_PLATES + 1,
        )  # fmt: skip
    if len(rows) > MAX_CANDIDATE_PLATES:
        raise TooManyCandidates(
            f"more than {MAX_CANDIDATE_PLATES} candidate plates in the window: narrow the window or the cameras"
        )
    return [row["plate_norm"] for row in rows]


async def route(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: Key,
    plate: str,
    since: datetime,
    until: datetime | None,
    cameras: list[str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """A plate's passages (by normalised plate or confusion class), oldest first, each with the read's position
    (`position_lat`, `position_lon`, `position_heading`: NULL when the read has none, or none usable)."""
    if key not in (Key.PLATE, Key.PLATE_CLASS):
        raise ValueError(f"a route is by plate or plate class, not {key.name}")
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {ROUTE_COLUMNS} FROM passages
            WHERE {key.value} AND observed_at >= $2 AND ($3::timestamptz IS NULL OR observed_at <= $3)
              AND ($4::text[] IS NULL OR camera_id = ANY($4))
            ORDER BY observed_at, read_id LIMIT $5""",  # noqa: S608 -- constant fragments only
        plate, since, until, cameras, limit,
    )  # fmt: skip
    return rows


async def cotravellers(
    conn: asyncpg.Connection | asyncpg.Pool,
    key: Key,
    plate: str,
    plate_class: str,
    since: datetime,
    until: datetime | None,
    cameras: list[str] | None,
    window: timedelta,
    min_cameras: int,
    limit: int,
    max_target_passages: int,
    mobile_cameras: list[str] | None = None,
    radius_m: float = MOBILE_RADIUS_M,
) -> tuple[int, list[asyncpg.Record]]:
    """(target passages used, co-travellers): confusion classes other than the target's seen within +-`window` of
    the target's (newest `max_target_passages`) passages at >= `min_cameras` distinct cameras, ranked by distinct
    cameras, then co-passages. Per co-traveller: its most frequent read, every read, and the shared passages.

    At a camera of `mobile_cameras` a passage is shared only when it was also within `radius_m` of the target's
    passage, by the two reads' positions (`shared_distance_m`, `shared_lat`, `shared_lon`; NULL at fixed cameras);
    a mobile read without a position shares nothing. Fixed cameras' passages never have their `extra` read."""
    if key not in (Key.PLATE, Key.PLATE_CLASS):
        raise ValueError(f"co-travel is by plate or plate class, not {key.name}")
    async with without_jit(conn) as own:
        targets = await own.fetchval(
            f"""SELECT count(*) FROM (SELECT 1 FROM passages
                  WHERE {key.value} AND observed_at >= $2 AND ($3::timestamptz IS NULL OR observed_at <= $3)
                    AND ($4::text[] IS NULL OR camera_id = ANY($4)) LIMIT $5) t""",  # noqa: S608 -- constants
            plate, since, until, cameras, max_target_passages,
        )  # fmt: skip
        rows = await own.fetch(
            f"""WITH target AS MATERIALIZED (
                    SELECT camera_id, observed_at, camera_id = ANY($10::text[]) AS mobile,
                           CASE WHEN camera_id = ANY($10::text[]) THEN {TARGET_LAT} END AS lat,
                           CASE WHEN camera_id = ANY($10::text[]) THEN {TARGET_LON} END AS lon
                      FROM passages
                     WHERE {key.value} AND observed_at >= $2 AND ($3::timestamptz IS NULL OR observed_at <= $3)
                       AND ($4::text[] IS NULL OR camera_id = ANY($4))
                     ORDER BY observed_at DESC LIMIT $9
                ), pairs AS (
                    SELECT p.plate_class, p.plate_norm, p.camera_id, p.observed_at, t.observed_at AS target_at,
                           p.lat, p.lon, CASE WHEN t.mobile THEN {PAIR_DISTANCE} END AS distance_m
                      FROM target t
                      JOIN LATERAL (
                          SELECT q.plate_class, q.plate_norm, q.camera_id, q.observed_at,
                                 CASE WHEN t.mobile THEN {SHARED_LAT} END AS lat,
                                 CASE WHEN t.mobile THEN {SHARED_LON} END AS lon
                            FROM passages q
                           WHERE q.camera_id = t.camera_id
                             AND q.observed_at BETWEEN t.observed_at - $6::interval AND t.observed_at + $6::interval
                             AND q.observed_at >= $2 AND ($3::timestamptz IS NULL OR q.observed_at <= $3)
                          OFFSET 0  -- a fence: flattened, the planner hash-joins the whole window (5 s at 10M)
                      ) p ON p.plate_class <> $5 AND (NOT t.mobile OR {PAIR_DISTANCE} <= $11::float8)
                )
                SELECT plate_class, mode() WITHIN GROUP (ORDER BY plate_norm) AS plate,
                       array_agg(DISTINCT plate_norm) AS plates,
                       count(DISTINCT camera_id) AS cameras, count(*) AS copassages,
                       array_agg(camera_id ORDER BY observed_at) AS shared_cameras,
                       array_agg(observed_at ORDER BY observed_at) AS shared_at,
                       array_agg(target_at ORDER BY observed_at) AS target_at,
                       array_agg(distance_m ORDER BY observed_at) AS shared_distance_m,
                       array_agg(lat ORDER BY observed_at) AS shared_lat,
                       array_agg(lon ORDER BY observed_at) AS shared_lon
                  FROM pairs GROUP BY plate_class HAVING count(DISTINCT camera_id) >= $7
                 ORDER BY cameras DESC, copassages DESC, plate_class LIMIT $8""",  # noqa: S608 -- constant fragments only
            plate, since, until, cameras, plate_class, window, min_cameras, limit, max_target_passages,
            mobile_cameras or [], radius_m,
        )  # fmt: skip
    return int(targets), rows
