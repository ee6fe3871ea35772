"""API users and their bearer tokens. A user keeps its row and id for good (revoked, never deleted; a name is never
given to anyone else); tokens are made once, stored only as their sha256, and each ends: at its expiry, at logout,
at rotation or with its user. Every change appends its audit row in the same transaction."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from anpr_stream.api.access import Role, User
from anpr_stream.audit.chain import AuditRecord
from anpr_stream.audit.log import append_audit

TOKEN_PREFIX = "anpr_"
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # as api_users' CHECK (migration 0003)
OPERATOR_ROLE = "admin-cli"  # the audit role of changes made with `anpr-stream users` and `watchlist load`


def new_token() -> str:
    """256 random bits; the prefix makes a leaked token recognisable to secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Operator:
    """Who makes an administrative change: the audit row's actor."""

    name: str
    role: str = OPERATOR_ROLE


@dataclass(frozen=True)
class IssuedToken:
    user_id: int
    token_id: int
    token: str = field(repr=False)  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class UserRow:
    user_id: int
    name: str
    role: Role
    camera_scope: tuple[str, ...] | None
    covert: bool
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    valid_tokens: int  # neither revoked nor expired
    expires_at: datetime | None  # when the last of them ends


@dataclass(frozen=True)
class TokenCheck:
    """What a bearer token is worth: the user when it is good; else why not, and whose it was when it is known."""

    user: User | None
    refusal: str | None = None  # for the audit log: names the holder of a known token
    holder: str | None = None  # the user a known but refused token belongs to
    expired: bool = False

    @property
    def detail(self) -> str:
        """For the caller: no more than they need (an expired token is worth renewing; the rest is not)."""
        if self.expired:
            return "expired token: ask an administrator for a new one"
        return "unknown or revoked token"


class UserError(ValueError):
    pass


async def _audit(conn: asyncpg.Connection, by: Operator, action: str, parameters: dict[str, Any]) -> None:
    await append_audit(
        conn, AuditRecord(actor=by.name, role=by.role, endpoint=f"admin.users.{action}", allowed=True,
                          parameters=parameters)
    )  # fmt: skip


async def _issue(conn: asyncpg.Connection, user_id: int, by: Operator, lifetime: timedelta) -> IssuedToken:
    if lifetime <= timedelta(0):
        raise UserError("a token's lifetime must be positive")
    token = new_token()
    row = await conn.fetchrow(
        "INSERT INTO api_tokens (user_id, token_hash, created_by, expires_at) "
        "VALUES ($1, $2, $3, now() + $4::interval) RETURNING token_id, expires_at",
        user_id, token_hash(token), by.name, lifetime,
    )  # fmt: skip
    return IssuedToken(user_id, row["token_id"], token, row["expires_at"])


def _scope(cameras: Collection[str] | None) -> list[str] | None:
    return sorted(set(cameras)) if cameras else None


async def add_user(
    conn: asyncpg.Connection,
    name: str,
    role: Role,
    by: Operator,
    lifetime: timedelta,
    cameras: Collection[str] | None = None,
    covert: bool = False,
) -> IssuedToken:
    """Create the user and its first token (shown once). A name is never reused, not even a revoked user's: the
    audit log names users, and a second holder of a name would inherit the first one's history."""
    if NAME.fullmatch(name) is None:
        raise UserError(f"user name {name!r}: 1-64 letters, digits and . _ @ - only")
    if covert and role is not Role.INVESTIGATOR:
        raise UserError("covert clearance is for investigators only")
    scope = _scope(cameras)
    async with conn.transaction():
        existing = await conn.fetchrow("SELECT user_id, revoked_at FROM api_users WHERE name = $1", name)
        if existing is not None and existing["revoked_at"] is None:
            raise UserError(f"user {name!r} exists (id {existing['user_id']}): `users rotate` gives it a new token")
        if existing is not None:
            raise UserError(
                f"the name {name!r} was used before (user id {existing['user_id']}, revoked "
                f"{existing['revoked_at']:%Y-%m-%d}): names are never reused, pick another"
            )
        try:
            user_id = await conn.fetchval(
                "INSERT INTO api_users (name, role, camera_scope, covert, created_by) VALUES ($1, $2, $3, $4, $5) "
                "RETURNING user_id",
                name, role.value, scope, covert, by.name,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise UserError(f"user {name!r} was created meanwhile: pick another name") from None
        issued = await _issue(conn, user_id, by, lifetime)
        await _audit(conn, by, "add", {
            "user_id": user_id, "name": name, "role": role.value, "cameras": scope, "covert": covert,
            "token_id": issued.token_id, "expires_at": issued.expires_at.isoformat(),
        })  # fmt: skip
    return issued


async def _active_user(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    """The user's row, locked for the change; UserError when there is none or it is revoked."""
    row = await conn.fetchrow(
        "SELECT user_id, role, camera_scope, covert, revoked_at FROM api_users WHERE name = $1 FOR UPDATE", name
    )
    if row is None:
        raise UserError(f"no user {name!r}")
    if row["revoked_at"] is not None:
        raise UserError(
            f"user {name!r} was revoked {row['revoked_at']:%Y-%m-%d %H:%M}: revocation is final, add a user under "
            "another name"
        )
    return row


async def _revoke_tokens(conn: asyncpg.Connection, user_id: int, by: Operator) -> list[int]:
    rows = await conn.fetch(
        "UPDATE api_tokens SET revoked_at = now(), revoked_by = $2 WHERE user_id = $1 AND revoked_at IS NULL "
        "RETURNING token_id",
        user_id, by.name,
    )  # fmt: skip
    return sorted(r["token_id"] for r in rows)


async def revoke_user(conn: asyncpg.Connection, name: str, by: Operator) -> list[int]:
    """Revoke the user and every token it holds, now; returns the tokens revoked. Final: the user is kept (its id
    stays in the audit log) but never comes back."""
    async with conn.transaction():
        user = await _active_user(conn, name)
        await conn.execute(
            "UPDATE api_users SET revoked_at = now(), revoked_by = $2 WHERE user_id = $1", user["user_id"], by.name
        )
        revoked = await _revoke_tokens(conn, user["user_id"], by)
        await _audit(conn, by, "revoke", {"user_id": user["user_id"], "name": name, "revoked_tokens": revoked})
    return revoked


async def rotate_token(conn: asyncpg.Connection, name: str, by: Operator, lifetime: timedelta) -> IssuedToken:
    """A new token for the user (shown once); every token it held before stops working at once."""
    async with conn.transaction():
        user = await _active_user(conn, name)
        revoked = await _revoke_tokens(conn, user["user_id"], by)
        issued = await _issue(conn, user["user_id"], by, lifetime)
        await _audit(conn, by, "rotate", {
            "user_id": user["user_id"], "name": name, "token_id": issued.token_id,
            "expires_at": issued.expires_at.isoformat(), "revoked_tokens": revoked,
        })  # fmt: skip
    return issued


async def issue_token(conn: asyncpg.Connection, name: str, by: Operator, lifetime: timedelta) -> IssuedToken:
    """One more token for the user (shown once), its others kept: one per console or workstation, so that logging
    out of one leaves the others working."""
    async with conn.transaction():
        user = await _active_user(conn, name)
        issued = await _issue(conn, user["user_id"], by, lifetime)
        await _audit(conn, by, "issue", {
            "user_id": user["user_id"], "name": name, "token_id": issued.token_id,
            "expires_at": issued.expires_at.isoformat(),
        })  # fmt: skip
    return issued


async def set_user(
    conn: asyncpg.Connection,
    name: str,
    by: Operator,
    cameras: Collection[str] | None = None,
    all_cameras: bool = False,
    covert: bool | None = None,
) -> dict[str, Any]:
    """Change the user's camera scope (`cameras`, or every camera with `all_cameras`) or covert clearance; returns
    what changed as {field: [before, after]}. Takes effect with the user's next request."""
    if cameras and all_cameras:
        raise UserError("give cameras or every camera, not both")
    async with conn.transaction():
        user = await _active_user(conn, name)
        role = Role(user["role"])
        before = {"cameras": list(user["camera_scope"]) if user["camera_scope"] is not None else None,
                  "covert": user["covert"]}  # fmt: skip
        after = dict(before)
        if cameras:
            after["cameras"] = _scope(cameras)
        if all_cameras:
            after["cameras"] = None
        if covert is not None:
            if covert and role is not Role.INVESTIGATOR:
                raise UserError("covert clearance is for investigators only")
            after["covert"] = covert
        changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        if not changed:
            raise UserError(f"user {name!r}: nothing to change")
        await conn.execute(
            "UPDATE api_users SET camera_scope = $2, covert = $3 WHERE user_id = $1",
            user["user_id"], after["cameras"], after["covert"],
        )  # fmt: skip
        await _audit(conn, by, "set", {"user_id": user["user_id"], "name": name, "changed": changed})
    return changed


async def list_users(conn: asyncpg.Connection) -> list[UserRow]:
    rows = await conn.fetch(
        """SELECT u.user_id, u.name, u.role, u.camera_scope, u.covert, u.created_at, u.created_by, u.revoked_at,
                  count(t.token_id) AS valid_tokens, max(t.expires_at) AS expires_at
           FROM api_users u
           LEFT JOIN api_tokens t ON t.user_id = u.user_id AND t.revoked_at IS NULL AND t.expires_at > now()
                                     AND u.revoked_at IS NULL
           GROUP BY u.user_id ORDER BY u.name"""
    )
    return [
        UserRow(r["user_id"], r["name"], Role(r["role"]),
                tuple(r["camera_scope"]) if r["camera_scope"] is not None else None, r["covert"], r["created_at"],
                r["created_by"], r["revoked_at"], r["valid_tokens"], r["expires_at"])
        for r in rows
    ]  # fmt: skip


async def check_token(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> TokenCheck:
    """The user holding `token` if the token is good: issued, neither revoked nor expired, its user not revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return TokenCheck(None, "unknown token")
    row = await conn.fetchrow(
        """SELECT u.user_id, u.name, u.role, u.camera_scope, u.covert, u.revoked_at AS user_revoked_at,
                  t.token_id, t.revoked_at, t.expires_at, t.expires_at <= now() AS expired
           FROM api_tokens t JOIN api_users u ON u.user_id = t.user_id WHERE t.token_hash = $1""",
        token_hash(token),
    )
    if row is None:
        return TokenCheck(None, "unknown token")
    whose = f"user {row['name']} (id {row['user_id']})"
    if row["user_revoked_at"] is not None:
        return TokenCheck(None, f"token {row['token_id']} of revoked {whose}", row["name"])
    if row["revoked_at"] is not None:
        return TokenCheck(None, f"revoked token {row['token_id']} of {whose}", row["name"])
    if row["expired"]:
        return TokenCheck(None, f"token {row['token_id']} of {whose} expired {row['expires_at'].isoformat()}",
                          row["name"], expired=True)  # fmt: skip
    scope = frozenset(row["camera_scope"]) if row["camera_scope"] is not None else None
    return TokenCheck(User(row["name"], Role(row["role"]), scope, row["covert"], row["user_id"]))


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> User | None:
    """The active user holding a good `token`, or None."""
    return (await check_token(conn, token)).user


async def log_out(conn: asyncpg.Connection, token: str) -> int | None:
    """Revoke this one token (its holder's other tokens stay good); returns its id, None when it was not active.
    Through api_token_logout(): the service login may revoke a token it is shown, and change nothing else."""
    token_id: int | None = await conn.fetchval("SELECT token_id FROM api_token_logout($1)", token_hash(token))
    return token_id
