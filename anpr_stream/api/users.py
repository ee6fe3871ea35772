"""API users: bearer tokens made once, stored only as their sha256, looked up by that hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from anpr_stream.api.access import Role, User

TOKEN_PREFIX = "anpr_"


def new_token() -> str:
    """256 random bits; the prefix makes a leaked token recognisable to secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class UserRow:
    name: str
    role: Role
    camera_scope: tuple[str, ...] | None
    covert: bool
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class UserError(ValueError):
    pass


async def add_user(
    conn: asyncpg.Connection,
    name: str,
    role: Role,
    created_by: str,
    cameras: Collection[str] | None = None,
    covert: bool = False,
) -> str:
    """Create the user and return its token (shown once). A revoked user's name may be reused: the old row is
    replaced, the audit log keeps what the old token did."""
    if covert and role is not Role.INVESTIGATOR:
        raise UserError("covert clearance is for investigators only")
    token = new_token()
    scope = sorted(set(cameras)) if cameras else None
    async with conn.transaction():
        existing = await conn.fetchrow("SELECT revoked_at FROM api_users WHERE name = $1 FOR UPDATE", name)
        if existing is not None and existing["revoked_at"] is None:
            raise UserError(f"user {name!r} exists and is active: revoke it first")
        if existing is not None:
            await conn.execute("DELETE FROM api_users WHERE name = $1", name)
        await conn.execute(
            "INSERT INTO api_users (name, role, camera_scope, covert, token_hash, created_by) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            name, role.value, scope, covert, token_hash(token), created_by,
        )  # fmt: skip
    return token


async def revoke_user(conn: asyncpg.Connection, name: str) -> bool:
    """Revoke the user's token now; False when there was no active user of that name."""
    status: str = await conn.execute(
        "UPDATE api_users SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name
    )
    return status.endswith(" 1")


async def list_users(conn: asyncpg.Connection) -> list[UserRow]:
    rows = await conn.fetch(
        "SELECT name, role, camera_scope, covert, created_at, created_by, revoked_at FROM api_users ORDER BY name"
    )
    return [
        UserRow(r["name"], Role(r["role"]), tuple(r["camera_scope"]) if r["camera_scope"] is not None else None,
                r["covert"], r["created_at"], r["created_by"], r["revoked_at"])
        for r in rows
    ]  # fmt: skip


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> User | None:
    """The active user holding `token`, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await conn.fetchrow(
        "SELECT name, role, camera_scope, covert FROM api_users WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    if row is None:
        return None
    scope = frozenset(row["camera_scope"]) if row["camera_scope"] is not None else None
    return User(row["name"], Role(row["role"]), scope, row["covert"])
