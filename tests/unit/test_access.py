"""The access decision (pure): roles per endpoint, camera scope, purpose and case reference, the registered
authorisation a restricted-tier request cites (current, of the right kind and case, its scope and data window
clamping what it does not cover), the clamp at the retention horizon, per preset; and the justification headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.api.access import (
    DATA_ENDPOINTS,
    PERMISSIONS,
    Authorisation,
    Denied,
    Grant,
    Justification,
    Role,
    User,
    check_request,
    decide,
    default_since,
)
from anpr_stream.retention.policy import Access, DataClass, preset, required_authorisation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = timedelta(days=1)
S = timedelta(seconds=1)
A = Access
INV = User("ines", Role.INVESTIGATOR)
NONE = Justification()
CASE = Justification("burglary series", "LM.2026.1")


KIND = {"be": A.JUDICIAL_WITH_PROSECUTOR_DECISION, "nl": A.PROSECUTOR_EVERY_QUERY, "uk": A.SENIOR_AUTHORISATION}


def registered(kind: Access = A.JUDICIAL_WITH_PROSECUTOR_DECISION, **changes: object) -> Authorisation:
    """A current registered authorisation of case LM.2026.1 over plate 1ABC123 and two cameras, all retained data."""
    fields: dict[str, object] = {
        "authorisation_id": 7, "kind": kind, "issuing_authority": "procureur des Konings, Limburg",
        "issued_by": "M. Peeters", "reference": "PK-2026-17", "case_reference": "LM.2026.1",
        "plates": frozenset({"1ABC123"}), "cameras": None, "data_from": NOW - 400 * D, "data_until": NOW,
        "valid_from": NOW - D, "valid_until": NOW + 30 * D, "single_query": kind is A.PROSECUTOR_EVERY_QUERY,
    }  # fmt: skip
    fields.update(changes)
    return Authorisation(**fields)  # type: ignore[arg-type]


CITED = Justification("burglary series", "LM.2026.1", 7)
PLATE = ["1ABC123"]


def _decide(policy: str, age: timedelta, justification: Justification, kind: Access | None = None) -> Grant:
    held = registered(kind) if kind is not None else None
    return decide(INV, "plates.route", justification, preset(policy), NOW, since=NOW - age, authorisation=held,
                  plates=PLATE)  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "age", "justification", "kind", "denied"),
    [
        # BE: the first 30 days open to any justified purpose; the boundary is exactly 30 days.
        ("be", D, CASE, None, None),
        ("be", 30 * D - S, CASE, None, None),
        ("be", 30 * D, CASE, None, "procureur des Konings"),
        ("be", 30 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, None),
        ("be", 45 * D, CASE, None, "cite the registered authorisation (judicial_with_prosecutor_decision)"),
        ("be", 45 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, None),
        ("be", 45 * D, CITED, None, "no authorisation 7 is registered"),
        ("be", 45 * D, CITED, A.SENIOR_AUTHORISATION, "is a senior_authorisation, not a judicial"),
        ("be", 365 * D - S, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, None),
        # A window reaching past the horizon is clamped to it: granted with the authorisation for the rest.
        ("be", 365 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, None),
        ("be", 400 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, None),
        ("be", 400 * D, CASE, None, "procureur des Konings"),
        # NL: no open window; the prosecutor approves every query, even of today's data.
        ("nl", timedelta(minutes=5), CASE, None, "prosecutor's approval"),
        ("nl", timedelta(minutes=5), CITED, A.PROSECUTOR_EVERY_QUERY, None),
        ("nl", 27 * D, CITED, A.PROSECUTOR_EVERY_QUERY, None),
        ("nl", 27 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, "prosecutor's approval"),
        ("nl", 40 * D, CITED, A.PROSECUTOR_EVERY_QUERY, None),  # clamped to 28 days
        # UK: 90 days open, then a senior officer's authorisation.
        ("uk", 89 * D, CASE, None, None),
        ("uk", 90 * D, CASE, None, "senior officer's authorisation"),
        ("uk", 200 * D, CITED, A.SENIOR_AUTHORISATION, None),
        ("uk", 200 * D, CITED, A.JUDICIAL_WITH_PROSECUTOR_DECISION, "senior officer"),
        # Purpose and case reference come first, whatever the age.
        ("be", D, NONE, None, "X-Purpose"),
        ("be", D, Justification("burglary series"), None, "X-Case-Reference"),
        ("be", D, Justification(None, "LM.1"), None, "X-Purpose"),
        ("nl", 400 * D, NONE, A.PROSECUTOR_EVERY_QUERY, "X-Purpose"),
    ],
)
def test_authorisation_by_age(
    policy: str, age: timedelta, justification: Justification, kind: Access | None, denied: str | None
) -> None:
    if denied is None:
        grant = _decide(policy, age, justification, kind)
        horizon = NOW - preset(policy).passages
        assert grant.since == max(NOW - age, horizon)
        restricted = NOW - age < NOW - preset(policy).open_access
        assert (grant.authorisation is not None) is restricted
        assert grant.clamped is None
        return
    with pytest.raises(Denied) as caught:
        _decide(policy, age, justification, kind)
    assert caught.value.status == 403
    assert denied in caught.value.reason
    # A refusal in the restricted tier names the authorisation it needs (X-Authorisation-Required); a missing
    # purpose or case is refused before any age is looked at, and names none.
    stated = justification.purpose and justification.case_reference
    oldest = min(age, preset(policy).passages - S)
    assert caught.value.required is (required_authorisation(preset(policy), oldest) if stated else None)


@pytest.mark.parametrize(
    ("held", "justification", "denied"),
    [
        (registered(revoked_at=NOW - S), CITED, "authorisation 7 was revoked on"),
        (registered(revoked_at=NOW + D), CITED, None),  # a revocation takes effect when it is made
        (registered(valid_until=NOW), CITED, "authorisation 7 expired on"),
        (registered(valid_from=NOW + S), CITED, "not valid before"),
        (registered(case_reference="LM.2026.99"), CITED, "issued for another case, not for 'LM.2026.1'"),
        (registered(authorisation_id=8), CITED, "no authorisation 7 is registered"),
        (registered(single_query=True), CITED, None),
        (registered(single_query=True, used_at=NOW - D), CITED, "approved a single query, already made"),
        (registered(single_query=False, used_at=NOW - D), CITED, None),
    ],
)
def test_the_cited_authorisation_must_be_current_and_of_the_case(
    held: Authorisation, justification: Justification, denied: str | None
) -> None:
    ask = {"since": NOW - 100 * D, "authorisation": held, "plates": PLATE}
    if denied is None:
        assert decide(INV, "plates.route", justification, preset("be"), NOW, **ask).authorisation == held  # type: ignore[arg-type]
        return
    with pytest.raises(Denied, match=denied) as caught:
        decide(INV, "plates.route", justification, preset("be"), NOW, **ask)  # type: ignore[arg-type]
    assert caught.value.status == 403


@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.DPO, Role.ADMIN, Role.INFORMATION_MANAGER])
def test_only_investigators_reach_a_restricted_tier(role: Role) -> None:
    """Dispatchers (who may list hits) never see beyond the open tier, whatever they cite."""
    user = User("d", role)
    endpoint = "hits.list" if role is Role.DISPATCHER else "plates.route"
    with pytest.raises(Denied) as caught:
        decide(user, endpoint, CITED, preset("be"), NOW, since=NOW - 100 * D, authorisation=registered())
    assert caught.value.status == 403
    if role is Role.DISPATCHER:
        assert "only investigators may ask for it, never the dispatcher role" in caught.value.reason


OPEN_FROM = NOW - 30 * D


@pytest.mark.parametrize(
    ("held", "plates", "cameras", "since", "until", "used", "clamped"),
    [
        # Plates outside the authorisation's scope, or none named (a wildcard search, a camera's passages): only
        # the open tier is granted, and the grant relies on no authorisation.
        (registered(), ["9XYZ999"], None, OPEN_FROM, None, False, "9XYZ999 are outside authorisation 7"),
        (registered(), None, None, OPEN_FROM, None, False, "covers named plates only"),
        (registered(), ["1ABC123", "9XYZ999"], None, OPEN_FROM, None, False, "9XYZ999"),
        # Camera-bound: the cameras asked must be in it.
        (registered(plates=None, cameras=frozenset({"LM-EISDEN"})), None, ["LM-EISDEN"], NOW - 100 * D, None,
         True, None),
        (registered(plates=None, cameras=frozenset({"LM-EISDEN"})), None, None, OPEN_FROM, None, False,
         "covers named cameras only"),
        (registered(plates=None, cameras=frozenset({"LM-EISDEN"})), None, ["LM-EISDEN", "LM-REKEM"], OPEN_FROM,
         None, False, "LM-REKEM are outside"),
        # The data window: what it does not cover is cut.
        (registered(data_from=NOW - 60 * D), PLATE, None, NOW - 60 * D, None, True, "covers data from"),
        (registered(data_from=NOW - 10 * D), PLATE, None, OPEN_FROM, None, False, "covers data from"),
        # Data until 50 days ago: the open tier beyond the gap is not granted (a window is one piece).
        (registered(data_until=NOW - 50 * D), PLATE, None, NOW - 100 * D, NOW - 50 * D, True, "covers data until"),
    ],
)  # fmt: skip
def test_what_the_authorisation_does_not_cover_is_cut(
    held: Authorisation,
    plates: list[str] | None,
    cameras: list[str] | None,
    since: datetime,
    until: datetime | None,
    used: bool,
    clamped: str | None,
) -> None:
    grant = decide(INV, "cameras.passages", CITED, preset("be"), NOW, since=NOW - 100 * D, cameras=cameras,
                   authorisation=held, plates=plates)  # fmt: skip
    assert (grant.since, grant.until, grant.authorisation is not None) == (since, until, used)
    if clamped is None:
        assert grant.clamped is None
    else:
        assert grant.clamped is not None and clamped in grant.clamped


def test_nothing_covered_is_refused() -> None:
    """Asked only for restricted data the authorisation does not cover: refused, with what was left out."""
    ask = {"since": NOW - 100 * D, "until": NOW - 40 * D}
    with pytest.raises(Denied, match=r"nothing of the window asked is covered.*9XYZ999") as caught:
        decide(INV, "plates.route", CITED, preset("be"), NOW, authorisation=registered(), plates=["9XYZ999"], **ask)  # type: ignore[arg-type]
    assert caught.value.status == 403
    with pytest.raises(Denied, match="nothing of the window asked is covered"):
        decide(INV, "plates.route", CITED, preset("be"), NOW, authorisation=registered(data_from=NOW - 30 * D),
               plates=PLATE, **ask)  # type: ignore[arg-type]  # fmt: skip


def test_the_clamp_never_grants_past_the_horizon() -> None:
    policy = preset("be")
    for data_class in (DataClass.HITS, DataClass.PASSAGES):
        grant = decide(INV, "plates.route", CITED, policy, NOW, since=NOW - 1000 * D, data_class=data_class,
                       authorisation=registered(), plates=PLATE)  # fmt: skip
        assert grant.since == policy.horizon(data_class, NOW)
    unbounded = decide(INV, "plates.route", CITED, policy, NOW, since=None, authorisation=registered(), plates=PLATE)
    assert unbounded.since == policy.horizon(DataClass.PASSAGES, NOW)


@pytest.mark.parametrize(
    ("until", "status", "reason"),
    [
        (NOW - 365 * D, 403, "past the 'be' retention horizon"),  # exactly at the horizon: nothing retained
        (NOW - 400 * D, 403, "never returned"),
        (NOW - 500 * D - D, 400, "before it starts"),
    ],
)
def test_windows_wholly_past_retention_or_inverted(until: datetime, status: int, reason: str) -> None:
    with pytest.raises(Denied) as caught:
        decide(INV, "hits.get", CITED, preset("be"), NOW, since=NOW - 500 * D, until=until, authorisation=registered(),
               plates=PLATE)  # fmt: skip
    assert (caught.value.status, reason in caught.value.reason) == (status, True)


def test_one_record_at_its_own_instant() -> None:
    """hits.get asks for the hit's own instant: inside retention it is granted, past it (not yet purged) refused."""
    at = NOW - 364 * D
    held = registered(plates=None, cameras=frozenset({"LM-EISDEN"}))
    ask = {"authorisation": held, "cameras": ["LM-EISDEN"]}
    assert decide(INV, "hits.get", CITED, preset("be"), NOW, since=at, until=at, **ask).since == at  # type: ignore[arg-type]
    at = NOW - 366 * D
    with pytest.raises(Denied, match="never returned"):
        decide(INV, "hits.get", CITED, preset("be"), NOW, since=at, until=at, **ask)  # type: ignore[arg-type]
    # Outside the authorisation's scope, one old record is refused, never returned from the open tier.
    with pytest.raises(Denied, match="nothing of the window asked is covered"):
        decide(INV, "hits.get", CITED, preset("be"), NOW, since=NOW - 40 * D, until=NOW - 40 * D, authorisation=held,
               cameras=["LM-REKEM"])  # fmt: skip


@pytest.mark.parametrize("endpoint", sorted(PERMISSIONS))
@pytest.mark.parametrize("role", list(Role))
def test_roles_per_endpoint(role: Role, endpoint: str) -> None:
    user = User("u", role)
    if role in PERMISSIONS[endpoint]:
        grant = decide(user, endpoint, CASE, preset("be"), NOW, since=NOW - D)
        assert grant.endpoint == endpoint
    else:
        with pytest.raises(Denied, match=f"role {role} may not use {endpoint}") as caught:
            decide(user, endpoint, CASE, preset("be"), NOW, since=NOW - D)
        assert caught.value.status == 403


def test_role_table() -> None:
    """What the roles are for: dispatchers no investigations, DPO and admin no camera data at all."""
    for endpoint in DATA_ENDPOINTS:
        assert Role.DPO not in PERMISSIONS[endpoint] and Role.ADMIN not in PERMISSIONS[endpoint]
    assert {e for e, roles in PERMISSIONS.items() if Role.DISPATCHER in roles} == {
        "me", "cameras.list", "cameras.map", "hits.list", "hits.get", "hits.image", "hits.ack", "hits.stream",
    }  # fmt: skip
    assert PERMISSIONS["dpo.report"] == {Role.DPO, Role.ADMIN}
    # Who asks is not who authorises: only the information manager registers and revokes authorisations.
    assert PERMISSIONS["authorisations.register"] == PERMISSIONS["authorisations.revoke"] == {Role.INFORMATION_MANAGER}
    for endpoint in DATA_ENDPOINTS:
        assert Role.INFORMATION_MANAGER not in PERMISSIONS[endpoint]
    assert "dpo.report" not in DATA_ENDPOINTS and "me" not in DATA_ENDPOINTS


def test_non_data_endpoints_need_no_justification() -> None:
    grant = decide(User("d", Role.DPO), "dpo.report", NONE, preset("nl"), NOW)
    assert (grant.since, grant.until) == (None, None)


def test_unknown_endpoint_is_a_bug() -> None:
    with pytest.raises(KeyError, match="no permission entry"):
        decide(INV, "plates.teleport", CASE, preset("be"), NOW)


SCOPED = User("sam", Role.INVESTIGATOR, camera_scope=frozenset({"LM-EISDEN", "LM-REKEM"}))


def test_camera_scope() -> None:
    grant = decide(SCOPED, "hits.list", CASE, preset("be"), NOW, since=NOW - D, cameras=["LM-EISDEN"])
    assert grant.cameras(["LM-EISDEN"]) == ["LM-EISDEN"]
    assert grant.cameras(None) == ["LM-EISDEN", "LM-REKEM"]  # no camera asked: the scope, never everything
    with pytest.raises(Denied, match="outside sam's scope: LM-LANAKEN-C") as caught:
        decide(SCOPED, "hits.list", CASE, preset("be"), NOW, since=NOW - D, cameras=["LM-EISDEN", "LM-LANAKEN-C"])
    assert caught.value.status == 403
    # The scope is checked before the justification: a scoped user learns nothing more by leaving it out.
    with pytest.raises(Denied, match="outside"):
        decide(SCOPED, "hits.get", NONE, preset("be"), NOW, since=NOW - D, cameras=["LM-VELDWEZELT"])
    unscoped = decide(INV, "hits.list", CASE, preset("be"), NOW, since=NOW - D)
    assert unscoped.cameras(None) is None and unscoped.cameras(["B", "A", "B"]) == ["A", "B"]
    assert SCOPED.sees_camera("LM-REKEM") and not SCOPED.sees_camera("LM-VELDWEZELT") and INV.sees_camera("any")


@pytest.mark.parametrize(
    ("user", "sees"),
    [
        (User("c", Role.INVESTIGATOR, covert=True), True),
        (User("u", Role.INVESTIGATOR), False),
        (User("d", Role.DISPATCHER, covert=True), False),  # clearance means nothing outside the investigator role
        (User("a", Role.ADMIN, covert=True), False),
    ],
)
def test_covert_clearance(user: User, sees: bool) -> None:
    assert user.sees_covert is sees


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, Justification()),
        ({"x-purpose": "  theft ", "x-case-reference": "LM.1"}, Justification("theft", "LM.1")),
        ({"x-purpose": "   "}, Justification()),
        ({"x-authorisation-id": " 17 "}, Justification(None, None, 17)),
        ({"x-purpose": "p" * 600}, Justification("p" * 500)),
    ],
)  # fmt: skip
def test_justification_from_headers(headers: dict[str, str], expected: Justification) -> None:
    assert Justification.from_headers(headers) == expected


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-authorisation": "judicial_with_prosecutor_decision"}, "authorisations are registry records"),
        ({"x-authorisation-reference": "PK-1"}, "cite one with X-Authorisation-Id"),
        ({"x-authorisation-id": "seven"}, "is not a registry id"),
        ({"x-authorisation-id": "0"}, "is not a registry id"),
        ({"x-authorisation-id": "-3"}, "is not a registry id"),
        ({"x-authorisation-id": "1" * 30}, "is not a registry id"),
        ({"x-authorisation-id": "\u0661"}, "is not a registry id"),  # an Arabic-Indic digit: isdigit() says yes
    ],
)
def test_justification_refuses_header_authorisations_and_bad_ids(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Denied, match=reason) as caught:
        Justification.from_headers(headers)
    assert caught.value.status == 400


M = timedelta(minutes=1)


@pytest.mark.parametrize(("policy", "age"), [("be", 30 * D - M), ("uk", 90 * D - M), ("nl", D)])
def test_default_window_stays_open(policy: str, age: timedelta) -> None:
    """The default window of hits.list needs no authorisation where there is an open period."""
    assert default_since(preset(policy), NOW) == NOW - age
    if policy != "nl":
        assert decide(INV, "hits.list", CASE, preset(policy), NOW, since=default_since(preset(policy), NOW))


@pytest.mark.parametrize(
    ("user", "endpoint", "justification", "refused"),
    [
        (User("d", Role.DPO), "hits.get", CASE, "may not use hits.get"),
        (INV, "hits.get", NONE, "X-Purpose"),
        (INV, "hits.ack", Justification("p"), "X-Case-Reference"),
        (INV, "hits.get", CASE, None),
        (User("a", Role.ADMIN), "dpo.report", NONE, None),  # not a data endpoint: nothing to state
    ],
)
def test_check_request_before_any_lookup(user: User, endpoint: str, justification: Justification,
                                         refused: str | None) -> None:  # fmt: skip
    if refused is None:
        check_request(user, endpoint, justification)
        return
    with pytest.raises(Denied, match=refused):
        check_request(user, endpoint, justification)
