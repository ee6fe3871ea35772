"""The registry of authorisations (table `authorisations`, migration 0009): the written decisions that open a
restricted tier (the procureur des Konings' decision in Belgium, a senior officer's authorisation in the UK, the
prosecutor's approval of one query in the Netherlands). The zone's information manager registers and revokes them
(API, role information_manager; or `anpr-stream authorisations` as the schema owner); an investigator only cites one
(X-Authorisation-Id) and never creates, widens or extends it: a row changes only by its revocation or, for a single
query, its use (trigger `authorisations_guard`). Every registration and revocation is in the audit chain, in the
same transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from anpr_stream.api.access import Authorisation
from anpr_stream.core.plates.normalisation import normalise
from anpr_stream.retention.policy import Access, RetentionPolicy

MAX_SCOPE = 1000  # plates or cameras in one authorisation (the table's CHECK says the same)

COLUMNS = """authorisation_id, kind, issuing_authority, issued_by, reference, case_reference, plates, cameras,
    data_from, data_until, valid_from, valid_until, single_query, used_at, note, registered_by, registered_by_id,
    registered_at, revoked_at, revoked_by, revoked_by_id, revocation_reason"""
BY_ID = f"SELECT {COLUMNS} FROM authorisations WHERE authorisation_id = $1"  # noqa: S608 -- constant columns


class RegistrationError(ValueError):
    """A registration or revocation refused; the message is the reason given to the caller."""


@dataclass(frozen=True)
class Registration:
    """What the information manager enters from the written decision."""

    kind: Access
    issuing_authority: str  # e.g. "procureur des Konings, Limburg"
    issued_by: str  # the magistrate or senior officer who signed it
    reference: str  # the decision's own reference
    case_reference: str  # the case it serves: requests citing it must state this case
    plates: tuple[str, ...] | None
    cameras: tuple[str, ...] | None
    data_from: datetime
    data_until: datetime
    valid_from: datetime
    valid_until: datetime
    single_query: bool = False
    note: str | None = None


def checked(registration: Registration, policy: RetentionPolicy, now: datetime) -> Registration:
    """The registration as it will be stored (plates normalised, texts trimmed), or RegistrationError (pure)."""
    if registration.kind is not policy.restricted:
        raise RegistrationError(
            f"the {policy.name!r} policy's restricted tier needs a {policy.restricted.value}, not a "
            f"{registration.kind.value}"
        )
    texts = {}
    for name in ("issuing_authority", "issued_by", "reference", "case_reference"):
        value = " ".join(str(getattr(registration, name)).split())
        if not value:
            raise RegistrationError(f"{name} is required")
        if len(value) > (500 if name == "case_reference" else 200):
            raise RegistrationError(f"{name} is too long")
        texts[name] = value
    plates = None
    if registration.plates:
        plates = tuple(sorted({normalise(p) for p in registration.plates}))
        if "" in plates:
            raise RegistrationError("a plate in the scope has no letters or digits")
        if len(plates) > MAX_SCOPE:
            raise RegistrationError(f"at most {MAX_SCOPE} plates in one authorisation")
    cameras = None
    if registration.cameras:
        cameras = tuple(sorted({c.strip() for c in registration.cameras if c.strip()}))
        if len(cameras) > MAX_SCOPE:
            raise RegistrationError(f"at most {MAX_SCOPE} cameras in one authorisation")
    if not plates and not cameras:
        raise RegistrationError("an authorisation names its plates and/or cameras: no blanket authorisation")
    for name in ("data_from", "data_until", "valid_from", "valid_until"):
        if getattr(registration, name).tzinfo is None:
            raise RegistrationError(f"{name} needs a UTC offset")
    if registration.data_from >= registration.data_until:
        raise RegistrationError("data_from must be before data_until")
    if registration.valid_from >= registration.valid_until:
        raise RegistrationError("valid_from must be before valid_until")
    if registration.valid_until <= now:
        raise RegistrationError(f"valid_until {registration.valid_until.isoformat()} is already past")
    if registration.note is not None and len(registration.note) > 2000:
        raise RegistrationError("note is longer than 2,000 characters")
    # The Netherlands: the prosecutor approves each query, so each registry record serves one.
    single = registration.single_query or registration.kind is Access.PROSECUTOR_EVERY_QUERY
    return replace(
        registration, plates=plates, cameras=cameras, single_query=single,
        issuing_authority=texts["issuing_authority"], issued_by=texts["issued_by"], reference=texts["reference"],
        case_reference=texts["case_reference"],
    )  # fmt: skip


def authorisation_of(row: asyncpg.Record) -> Authorisation:
    return Authorisation(
        authorisation_id=row["authorisation_id"], kind=Access(row["kind"]),
        issuing_authority=row["issuing_authority"], issued_by=row["issued_by"], reference=row["reference"],
        case_reference=row["case_reference"],
        plates=frozenset(row["plates"]) if row["plates"] is not None else None,
        cameras=frozenset(row["cameras"]) if row["cameras"] is not None else None,
        data_from=row["data_from"], data_until=row["data_until"], valid_from=row["valid_from"],
        valid_until=row["valid_until"], single_query=row["single_query"], used_at=row["used_at"],
        revoked_at=row["revoked_at"],
    )  # fmt: skip


def view(row: asyncpg.Record) -> dict[str, Any]:
    """The registry row as the API returns it (ISO times)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in dict(row).items()}


async def load(conn: asyncpg.Connection | asyncpg.Pool, authorisation_id: int) -> Authorisation | None:
    row = await conn.fetchrow(BY_ID, authorisation_id)
    return authorisation_of(row) if row is not None else None


async def insert(conn: asyncpg.Connection, registration: Registration, by: str, by_id: int | None) -> asyncpg.Record:
    """Store a checked registration; RegistrationError when the authority already has a decision of that reference."""
    r = registration
    try:
        row: asyncpg.Record = await conn.fetchrow(
            f"""INSERT INTO authorisations (kind, issuing_authority, issued_by, reference, case_reference, plates,
                    cameras, data_from, data_until, valid_from, valid_until, single_query, note, registered_by,
                    registered_by_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}""",  # noqa: S608
            r.kind.value, r.issuing_authority, r.issued_by, r.reference, r.case_reference,
            list(r.plates) if r.plates else None, list(r.cameras) if r.cameras else None, r.data_from, r.data_until,
            r.valid_from, r.valid_until, r.single_query, r.note, by, by_id,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        raise RegistrationError(
            f"{r.issuing_authority!r} already has a registered decision {r.reference!r}: revoke it and register the "
            "corrected one under its own reference"
        ) from None
    return row


async def mark_revoked(
    conn: asyncpg.Connection, authorisation_id: int, by: str, by_id: int | None, reason: str
) -> asyncpg.Record:
    reason = " ".join(reason.split())
    if not reason:
        raise RegistrationError("a revocation states its reason")
    if len(reason) > 2000:
        raise RegistrationError("the reason is longer than 2,000 characters")
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""UPDATE authorisations SET revoked_at = now(), revoked_by = $2, revoked_by_id = $3, revocation_reason = $4
             WHERE authorisation_id = $1 AND revoked_at IS NULL RETURNING {COLUMNS}""",  # noqa: S608
        authorisation_id, by, by_id, reason,
    )  # fmt: skip
    if row is None:
        known = await conn.fetchval(
            "SELECT revoked_at FROM authorisations WHERE authorisation_id = $1", authorisation_id
        )
        if known is None:
            raise RegistrationError(f"no authorisation {authorisation_id} is registered")
        raise RegistrationError(f"authorisation {authorisation_id} was revoked on {known.isoformat()}")
    return row


async def use_once(conn: asyncpg.Connection | asyncpg.Pool, authorisation_id: int) -> bool:
    """Mark a single-query authorisation used; False when another request used it first."""
    status: str = await conn.execute(
        "UPDATE authorisations SET used_at = now() WHERE authorisation_id = $1 AND single_query AND used_at IS NULL",
        authorisation_id,
    )
    return status.endswith(" 1")


def audit_parameters(row: asyncpg.Record) -> dict[str, Any]:
    """What the audit row of a registration records: the whole record (authorisations are not covert)."""
    return {k: v for k, v in view(row).items() if k not in {"used_at", "registered_at", "registered_by"}}
