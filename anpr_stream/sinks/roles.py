"""Login roles for the service: members of `anpr_service` (least privilege, see migration 0005), with a password
sent to the server only as a SCRAM-SHA-256 verifier, so that it never appears in a statement log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import asyncpg

SERVICE_ROLE = "anpr_service"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = _ITERATIONS) -> str:
    """The `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` form PostgreSQL stores (RFC 5802/7677);
    PostgreSQL accepts it in CREATE/ALTER ROLE ... PASSWORD and stores it as is."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class RoleError(ValueError):
    pass


async def create_service_login(conn: asyncpg.Connection, name: str, rotate: bool = False) -> str:
    """Create login role `name` as a member of anpr_service (or, with `rotate`, give an existing one a new
    password) and return the password. Needs CREATEROLE (the local cluster's `anpr` has it)."""
    if _NAME.fullmatch(name) is None:
        raise RoleError(f"role name {name!r}: lower-case letters, digits and _ only, at most 63, not a digit first")
    if await conn.fetchval("SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", SERVICE_ROLE):
        raise RoleError(f"role {SERVICE_ROLE} does not exist: run `anpr-stream migrate` as a role that may create it")
    exists = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name)
    if exists and not rotate:
        raise RoleError(f"role {name!r} exists: --rotate gives it a new password")
    password = secrets.token_urlsafe(24)
    statement = (
        "SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)"
        if exists
        else "SELECT format('CREATE ROLE %I WITH LOGIN PASSWORD %L', $1::text, $2::text)"
    )
    # Utility statements take no bind parameters: format() quotes the name and the verifier server-side.
    async with conn.transaction():
        await conn.execute(await conn.fetchval(statement, name, scram_verifier(password)))
        await conn.execute(
            await conn.fetchval("SELECT format('GRANT %I TO %I', $1::text, $2::text)", SERVICE_ROLE, name)
        )
        is_privileged = await conn.fetchval(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = $1", name
        )
        if is_privileged:
            raise RoleError(f"role {name!r} has SUPERUSER, CREATEROLE, CREATEDB or BYPASSRLS: not a service login")
    return password
