"""Who may ask what (pure): roles and their endpoints, the justification every data request carries, and the lawful
access decision for a time window under a retention policy. The HTTP layer only gathers the inputs and audits the
decision."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from anpr_stream.retention.policy import (
    Access,
    DataClass,
    RetentionPolicy,
    authorisation_covers,
    required_authorisation,
)


class Role(StrEnum):
    DISPATCHER = "dispatcher"  # live hits, acknowledgements
    INVESTIGATOR = "investigator"  # retroactive queries on passages and hits
    DPO = "dpo"  # retention and access audit: no camera data
    ADMIN = "admin"  # user management and the DPO's report: no camera data


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    camera_scope: frozenset[str] | None = None  # None: every camera
    covert: bool = False  # may see covert lists' details (investigators only)
    user_id: int | None = None  # api_users.user_id: what audit rows tie the user by (names are never reused)

    def sees_camera(self, camera_id: str) -> bool:
        return self.camera_scope is None or camera_id in self.camera_scope

    @property
    def sees_covert(self) -> bool:
        """Covert list details (list, plate on the list, reference) are for cleared investigators only; everyone
        else gets the covert instruction without them."""
        return self.covert and self.role is Role.INVESTIGATOR


class Denied(Exception):
    """A request refused for a reason the caller is told and the audit log records."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Justification:
    """What the caller states with every data request (HTTP headers X-Purpose, X-Case-Reference, X-Authorisation,
    X-Authorisation-Reference)."""

    purpose: str | None = None
    case_reference: str | None = None
    authorisation: Access = Access.OPEN  # the kind of authorisation held for older data
    authorisation_reference: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Justification:
        raw = (headers.get("x-authorisation") or "").strip() or Access.OPEN.value
        try:
            held = Access(raw)
        except ValueError:
            known = ", ".join(a.value for a in Access if a is not Access.EXPIRED)
            raise Denied(400, f"X-Authorisation {raw!r} is not one of: {known}") from None
        if held is Access.EXPIRED:
            raise Denied(400, "X-Authorisation 'expired' cannot be held: data past retention is never returned")

        def text(name: str) -> str | None:
            value = (headers.get(name) or "").strip()
            return value[:500] or None

        return cls(text("x-purpose"), text("x-case-reference"), held, text("x-authorisation-reference"))


# Endpoint name -> roles allowed. Names are what the audit log records.
PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "me": frozenset(Role),
    "plates.search": frozenset({Role.INVESTIGATOR}),
    "plates.route": frozenset({Role.INVESTIGATOR}),
    "plates.cotravel": frozenset({Role.INVESTIGATOR}),
    "cameras.passages": frozenset({Role.INVESTIGATOR}),
    "cameras.list": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "cameras.map": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.list": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.get": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.ack": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.stream": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.retroactive": frozenset({Role.INVESTIGATOR}),
    "dpo.report": frozenset({Role.DPO, Role.ADMIN}),
}

# Endpoints that return camera data: they need a purpose and a case reference, and the data's age is checked.
DATA_ENDPOINTS = frozenset(
    {"plates.search", "plates.route", "plates.cotravel", "cameras.passages", "hits.list", "hits.get", "hits.ack",
     "hits.stream", "hits.retroactive"}
)  # fmt: skip

_REQUIREMENT_TEXT = {
    Access.JUDICIAL_WITH_PROSECUTOR_DECISION: (
        "a judicial-police purpose with the procureur des Konings' written, reasoned decision "
        "(X-Authorisation: judicial_with_prosecutor_decision and its reference in X-Authorisation-Reference)"
    ),
    Access.SENIOR_AUTHORISATION: (
        "a senior officer's authorisation (X-Authorisation: senior_authorisation and its reference in "
        "X-Authorisation-Reference)"
    ),
    Access.PROSECUTOR_EVERY_QUERY: (
        "the prosecutor's approval of this query (X-Authorisation: prosecutor_every_query and its reference in "
        "X-Authorisation-Reference)"
    ),
}


@dataclass(frozen=True)
class Grant:
    """An allowed request: the window it may see (clamped to the retention horizon) and what the caller holds."""

    user: User
    endpoint: str
    justification: Justification
    since: datetime | None  # rows observed before this are never returned (None: no time-bound data)
    until: datetime | None

    def cameras(self, asked: Collection[str] | None) -> list[str] | None:
        """The cameras a query may cover: those asked for within the user's scope (None: no restriction)."""
        scope = self.user.camera_scope
        if asked:
            return sorted(set(asked) & scope) if scope is not None else sorted(set(asked))
        return sorted(scope) if scope is not None else None


def check_role(user: User, endpoint: str) -> None:
    allowed = PERMISSIONS.get(endpoint)
    if allowed is None:
        raise KeyError(f"endpoint {endpoint!r} has no permission entry")
    if user.role not in allowed:
        roles = ", ".join(sorted(allowed))
        raise Denied(403, f"role {user.role} may not use {endpoint} (allowed: {roles})")


def _check_stated(justification: Justification) -> None:
    if not justification.purpose:
        raise Denied(403, "every data request states its purpose (X-Purpose header)")
    if not justification.case_reference:
        raise Denied(403, "every data request carries a case or incident reference (X-Case-Reference header)")


def check_request(user: User, endpoint: str, justification: Justification) -> None:
    """What is decided before any data is looked at: the role and, for data endpoints, the stated purpose and case.
    A route that must fetch a record to decide the rest (its age, its camera) runs this first, so that a caller who
    may not ask learns nothing, not even whether the record exists (404)."""
    check_role(user, endpoint)
    if endpoint in DATA_ENDPOINTS:
        _check_stated(justification)


def decide(
    user: User,
    endpoint: str,
    justification: Justification,
    policy: RetentionPolicy,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    data_class: DataClass = DataClass.PASSAGES,
    cameras: Collection[str] | None = None,
) -> Grant:
    """Allow the request or raise Denied with the reason. `since` is the oldest instant the request would read
    (None for requests that read no camera data by time). The part of the window past retention is cut off, never
    granted; the rest must be covered by the caller's authorisation as a whole."""
    check_role(user, endpoint)
    if cameras and user.camera_scope is not None:
        outside = sorted(set(cameras) - user.camera_scope)
        if outside:
            raise Denied(403, f"camera(s) outside {user.name}'s scope: {', '.join(outside)}")
    if endpoint not in DATA_ENDPOINTS:
        return Grant(user, endpoint, justification, since, until)
    _check_stated(justification)
    if until is not None and since is not None and until < since:
        raise Denied(400, f"the window ends ({until.isoformat()}) before it starts ({since.isoformat()})")
    horizon = policy.horizon(data_class, now)
    if until is not None and until <= horizon:
        raise Denied(
            403,
            f"the whole window is past the {policy.name!r} retention horizon ({horizon.isoformat()}): "
            "such data is deleted and never returned",
        )
    effective_since = horizon if since is None or since < horizon else since
    # The oldest data the window may return is at the horizon itself (retained: only data *before* it is past
    # retention). required_authorisation() calls an age of exactly the horizon expired, so a window clamped to the
    # horizon would always be refused: ask for the age just inside it instead.
    oldest_age = min(now - effective_since, policy.horizon_for(data_class) - timedelta.resolution)
    required = required_authorisation(policy, oldest_age, data_class)
    if not authorisation_covers(justification.authorisation, required):
        open_from = now - policy.open_access
        raise Denied(
            403,
            f"data older than {policy.open_access.days} days (before {open_from.isoformat()}) needs "
            f"{_REQUIREMENT_TEXT.get(required, required.value)} under the {policy.name!r} policy",
        )
    if required is not Access.OPEN and not justification.authorisation_reference:
        raise Denied(
            403, f"X-Authorisation {justification.authorisation} needs its reference in X-Authorisation-Reference"
        )
    return Grant(user, endpoint, justification, effective_since, until)


def default_since(policy: RetentionPolicy, now: datetime) -> datetime:
    """The window when none is asked for: the open-access period (a minute inside it, so that it stays open by the
    time the decision is made), or one day where there is none (NL)."""
    if policy.open_access > timedelta(minutes=2):
        return now - policy.open_access + timedelta(minutes=1)
    return now - timedelta(days=1)
