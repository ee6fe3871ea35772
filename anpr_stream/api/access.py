"""Who may ask what (pure): roles and their endpoints, the justification every data request carries, the registered
authorisations restricted-tier requests cite, and the lawful access decision for a time window under a retention
policy. The HTTP layer only gathers the inputs (the cited authorisation loaded from the registry) and audits the
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
    required_authorisation,
)


class Role(StrEnum):
    DISPATCHER = "dispatcher"  # live hits, acknowledgements
    INVESTIGATOR = "investigator"  # retroactive queries on passages and hits
    DPO = "dpo"  # retention and access audit: no camera data
    ADMIN = "admin"  # user management and the DPO's report: no camera data
    # The zone's information manager: registers and revokes authorisations (prosecutor decisions, senior
    # authorisations); no camera data. Never an investigator: who asks is not who authorises.
    INFORMATION_MANAGER = "information_manager"


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
    """A request refused for a reason the caller is told and the audit log records; `required`, for a request into a
    restricted tier, the kind of authorisation it needs (the HTTP answer names it in `X-Authorisation-Required`, so
    that a page can offer the registered authorisations of that kind without parsing the reason)."""

    def __init__(self, status: int, reason: str, required: Access | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.required = required


@dataclass(frozen=True)
class Justification:
    """What the caller states with every data request (HTTP headers X-Purpose, X-Case-Reference and, for data in a
    restricted tier, X-Authorisation-Id: the registry id of the authorisation relied on)."""

    purpose: str | None = None
    case_reference: str | None = None
    authorisation_id: int | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Justification:
        for retired in ("x-authorisation", "x-authorisation-reference"):
            if (headers.get(retired) or "").strip():
                raise Denied(
                    400,
                    f"{retired.title()} is not accepted: authorisations are registry records; cite one with "
                    "X-Authorisation-Id (the information manager registers them)",
                )

        def text(name: str) -> str | None:
            value = (headers.get(name) or "").strip()
            return value[:500] or None

        raw_id = (headers.get("x-authorisation-id") or "").strip()
        authorisation_id = None
        if raw_id:
            if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18 or int(raw_id) < 1:
                raise Denied(400, f"X-Authorisation-Id {raw_id[:40]!r} is not a registry id (a positive integer)")
            authorisation_id = int(raw_id)
        return cls(text("x-purpose"), text("x-case-reference"), authorisation_id)


@dataclass(frozen=True)
class Authorisation:
    """A registered authorisation (table `authorisations`): who issued it, for which case, over which plates and/or
    cameras and which window of data, usable from when until when; revoked or (single query) used."""

    authorisation_id: int
    kind: Access
    issuing_authority: str
    issued_by: str
    reference: str
    case_reference: str
    plates: frozenset[str] | None  # normalised plates; None: any plate (then cameras bound it)
    cameras: frozenset[str] | None  # None: any camera (then plates bound it)
    data_from: datetime
    data_until: datetime
    valid_from: datetime
    valid_until: datetime
    single_query: bool = False
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def unusable(self, now: datetime) -> str | None:
        """Why it cannot be relied on now, or None."""
        name = f"authorisation {self.authorisation_id}"
        if self.revoked_at is not None and self.revoked_at <= now:
            return f"{name} was revoked on {self.revoked_at.isoformat()}"
        if now < self.valid_from:
            return f"{name} is not valid before {self.valid_from.isoformat()}"
        if now >= self.valid_until:
            return f"{name} expired on {self.valid_until.isoformat()}"
        if self.single_query and self.used_at is not None:
            return f"{name} approved a single query, already made on {self.used_at.isoformat()}"
        return None

    def covers_scope(self, plates: Collection[str] | None, cameras: Collection[str] | None) -> str | None:
        """None when every plate and camera asked is in its scope; else what is not. Asking for no particular plate
        (or camera) is asking for all of them: within a plate-bound (camera-bound) scope only when it has none."""
        if self.plates is not None:
            if not plates:
                return f"authorisation {self.authorisation_id} covers named plates only, and the request names none"
            outside = sorted(set(plates) - self.plates)
            if outside:
                return f"plate(s) {', '.join(outside)} are outside authorisation {self.authorisation_id}"
        if self.cameras is not None:
            if not cameras:
                return f"authorisation {self.authorisation_id} covers named cameras only, and the request names none"
            outside = sorted(set(cameras) - self.cameras)
            if outside:
                return f"camera(s) {', '.join(outside)} are outside authorisation {self.authorisation_id}"
        return None


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
    "hits.image": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.ack": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.stream": frozenset({Role.DISPATCHER, Role.INVESTIGATOR}),
    "hits.retroactive": frozenset({Role.INVESTIGATOR}),
    # The investigator workspace publishes an entry after its retroactive check (covert ones: cleared users only).
    "watchlist.publish": frozenset({Role.INVESTIGATOR}),
    "dpo.report": frozenset({Role.DPO, Role.ADMIN}),
    "authorisations.register": frozenset({Role.INFORMATION_MANAGER}),
    "authorisations.revoke": frozenset({Role.INFORMATION_MANAGER}),
    # Investigators see the authorisations of the case they state (to cite one); the DPO all of them.
    "authorisations.list": frozenset({Role.INFORMATION_MANAGER, Role.DPO, Role.INVESTIGATOR}),
    "authorisations.get": frozenset({Role.INFORMATION_MANAGER, Role.DPO, Role.INVESTIGATOR}),
}

# Endpoints that return camera data: they need a purpose and a case reference, and the data's age is checked.
DATA_ENDPOINTS = frozenset(
    {"plates.search", "plates.route", "plates.cotravel", "cameras.passages", "hits.list", "hits.get", "hits.image",
     "hits.ack", "hits.stream", "hits.retroactive", "watchlist.publish"}
)  # fmt: skip

_REQUIREMENT_TEXT = {
    Access.JUDICIAL_WITH_PROSECUTOR_DECISION: "the procureur des Konings' written, reasoned decision for the case",
    Access.SENIOR_AUTHORISATION: "a senior officer's authorisation for the case",
    Access.PROSECUTOR_EVERY_QUERY: "the prosecutor's approval of this query",
}


@dataclass(frozen=True)
class Grant:
    """An allowed request: the window it may see (clamped to the retention horizon) and what the caller holds."""

    user: User
    endpoint: str
    justification: Justification
    since: datetime | None  # rows observed before this are never returned (None: no time-bound data)
    until: datetime | None
    authorisation: Authorisation | None = None  # the registered authorisation relied on (restricted tier)
    clamped: str | None = None  # what was cut from the window asked for, and why (recorded in the audit row)

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
    authorisation: Authorisation | None = None,
    plates: Collection[str] | None = None,
) -> Grant:
    """Allow the request or raise Denied with the reason. `since` is the oldest instant the request would read
    (None for requests that read no camera data by time). The part of the window past retention is cut off, never
    granted. The part in the restricted tier (older than the open-access period) needs `authorisation`, the
    registered record the caller cited (loaded by the HTTP layer; None when none was cited or none is registered
    under that id): current, of the kind the policy asks for, of the stated case; what it does not cover (its data
    window, its plates and cameras: `plates` are the normalised plates the request names, None for none) is cut
    from the window, and the request is refused when nothing is left."""
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
    if required is Access.OPEN:
        return Grant(user, endpoint, justification, effective_since, until)
    try:
        return _restricted(
            user, endpoint, justification, policy, now, effective_since, until, required, cameras, authorisation,
            plates,
        )  # fmt: skip
    except Denied as exc:
        raise Denied(exc.status, exc.reason, required=required) from None


def _restricted(
    user: User,
    endpoint: str,
    justification: Justification,
    policy: RetentionPolicy,
    now: datetime,
    since: datetime,
    until: datetime | None,
    required: Access,
    cameras: Collection[str] | None,
    authorisation: Authorisation | None,
    plates: Collection[str] | None,
) -> Grant:
    """The window reaches into the restricted tier (data older than `open_from`)."""
    open_from = now - policy.open_access
    needed = (
        f"data older than {policy.open_access.days} days (before {open_from.isoformat()}) needs "
        f"{_REQUIREMENT_TEXT.get(required, required.value)} under the {policy.name!r} policy"
    )
    if user.role is not Role.INVESTIGATOR:
        raise Denied(403, f"{needed}: only investigators may ask for it, never the {user.role} role")
    if justification.authorisation_id is None:
        raise Denied(
            403,
            f"{needed}: cite the registered authorisation ({required.value}) of case "
            f"{justification.case_reference!r} in X-Authorisation-Id",
        )
    if authorisation is None or authorisation.authorisation_id != justification.authorisation_id:
        raise Denied(403, f"{needed}: no authorisation {justification.authorisation_id} is registered")
    name = f"authorisation {authorisation.authorisation_id}"
    if authorisation.kind is not required:
        raise Denied(403, f"{needed}: {name} is a {authorisation.kind.value}, not a {required.value}")
    problem = authorisation.unusable(now)
    if problem is not None:
        raise Denied(403, f"{needed}: {problem}")
    if authorisation.case_reference != justification.case_reference:
        raise Denied(403, f"{needed}: {name} was issued for another case, not for {justification.case_reference!r}")
    end = until if until is not None else now
    cut: list[str] = []
    outside = authorisation.covers_scope(plates, cameras)
    if outside is not None:
        # Only the open tier remains: the authorisation says nothing about the rest of what was asked.
        granted_since, granted_until, used = max(since, open_from), until, None
        cut.append(f"data before {open_from.isoformat()} left out: {outside}")
    else:
        granted_since, granted_until, used = since, until, authorisation
        if authorisation.data_from > since:
            granted_since = authorisation.data_from if authorisation.data_from < open_from else open_from
            cut.append(f"data before {granted_since.isoformat()} left out: {name} covers data from "
                       f"{authorisation.data_from.isoformat()}")  # fmt: skip
        if authorisation.data_until < open_from and authorisation.data_until < end:
            # The open tier lies beyond a gap the authorisation does not cover: a window has one piece, so the
            # grant ends where the authorisation does.
            granted_until = authorisation.data_until
            cut.append(f"data after {granted_until.isoformat()} left out: {name} covers data until then")
    if (granted_until if granted_until is not None else now) < granted_since:
        raise Denied(403, f"{needed}: nothing of the window asked is covered ({'; '.join(cut)})")
    if granted_since >= open_from:
        used = None  # clamped to the open tier: the authorisation was not needed after all
    return Grant(user, endpoint, justification, granted_since, granted_until, used, "; ".join(cut) or None)


def default_since(policy: RetentionPolicy, now: datetime) -> datetime:
    """The window when none is asked for: the open-access period (a minute inside it, so that it stays open by the
    time the decision is made), or one day where there is none (NL)."""
    if policy.open_access > timedelta(minutes=2):
        return now - policy.open_access + timedelta(minutes=1)
    return now - timedelta(days=1)
