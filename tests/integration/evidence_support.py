"""Evidence images for integration tests: a real PNG (encoded here, decodable by any browser) stored in a real
EvidenceStore, and the passage row that references it, as the worker stores a read the gateway sent with images."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import datetime

import asyncpg
import orjson

from anpr_stream.evidence import EvidenceStore, ref_for


def png(width: int = 24, height: int = 8, shade: int = 0) -> bytes:
    """An RGB PNG of a gradient (`shade` makes each one's bytes, hence its ref, differ)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(
        b"\x00" + b"".join(bytes(((x * 10 + shade) % 256, (y * 30) % 256, shade % 256)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def store_images(store: EvidenceStore, at: datetime, **images: bytes) -> dict[str, str]:
    """Put each image (kind=bytes, PNG) as the gateway does; their refs by kind, as a read's `images` carries them."""
    refs = {}
    for kind, data in images.items():
        refs[kind] = ref_for(at, data, "image/png")
        store.put(refs[kind], data)
    return refs


async def plant_passage(conn: asyncpg.Connection, hit_id: uuid.UUID, images: dict[str, str]) -> None:
    """The passage of a hit planted straight into the hits table (tests/integration/test_api_access.plant_hit)."""
    hit = await conn.fetchrow("SELECT read_id, camera_id, observed_at, plate_raw, plate_norm FROM hits "
                              "WHERE hit_id = $1", hit_id)  # fmt: skip
    await conn.execute("SELECT ensure_passage_partition($1::date)", hit["observed_at"].date())
    await conn.execute(
        """INSERT INTO passages (read_id, camera_id, observed_at, plate_raw, plate_norm, plate_class, country,
               confidence, camera_known, has_hit, extra)
           VALUES ($1, $2, $3, $4, $5, $5, 'BE', 0.9, true, true, $6::jsonb)""",
        hit["read_id"], hit["camera_id"], hit["observed_at"], hit["plate_raw"], hit["plate_norm"],
        orjson.dumps({"images": images, "image_ref": images.get("plate")}).decode(),
    )  # fmt: skip
