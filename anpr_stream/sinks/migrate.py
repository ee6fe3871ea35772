"""Versioned schema migrations: numbered SQL files applied once each, in order, under an advisory lock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant: two `migrate` runs at once (e.g. two workers starting) serialise on it instead of racing.
_LOCK_KEY = 0x616E7072  # "anpr"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    found = []
    for item in resources.files("anpr_stream.sinks.migrations").iterdir():
        if item.name.endswith(".sql"):
            version, _, rest = item.name.partition("_")
            found.append(Migration(int(version), rest.removesuffix(".sql"), item.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def is_current(conn: asyncpg.Connection) -> bool:
    """Every migration applied, unchanged; needs only SELECT on schema_migrations (a least-privilege service role
    may not even issue `CREATE TABLE IF NOT EXISTS`: PostgreSQL checks the schema's CREATE privilege first)."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return False
    done = {
        row["version"]: row["checksum"] for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
    }
    return all(done.get(m.version) == m.checksum for m in available())


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply what is missing; returns the migrations applied now (empty when the schema is current)."""
    if await is_current(conn):
        return []
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in available():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version} ({migration.name}) was changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
