"""The access decision (pure): roles per endpoint, camera scope, purpose and case reference, authorisation by the
age of the oldest data in the window, the clamp at the retention horizon, per preset; and the justification headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from anpr_stream.api.access import (
    DATA_ENDPOINTS,
    PERMISSIONS,
    Denied,
    Grant,
    Justification,
    Role,
    User,
    check_request,
    decide,
    default_since,
)
from anpr_stream.retention.policy import Access, DataClass, preset

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
D = timedelta(days=1)
S = timedelta(seconds=1)
A = Access
INV = User("ines", Role.INVESTIGATOR)
NONE = Justification()
CASE = Justification("burglary series", "LM.2026.1")


def held(kind: Access, reference: str | None = "PK-2026-17") -> Justification:
    return Justification("burglary series", "LM.2026.1", kind, reference)


JUDICIAL = held(A.JUDICIAL_WITH_PROSECUTOR_DECISION)
SENIOR = held(A.SENIOR_AUTHORISATION)
PROSECUTOR = held(A.PROSECUTOR_EVERY_QUERY)


def _decide(policy: str, age: timedelta, justification: Justification) -> Grant:
    return decide(INV, "hits.list", justification, preset(policy), NOW, since=NOW - age)


@pytest.mark.parametrize(
    ("policy", "age", "justification", "denied"),
    [
        # BE: the first 30 days open to any justified purpose; the boundary is exactly 30 days.
        ("be", D, CASE, None),
        ("be", 30 * D - S, CASE, None),
        ("be", 30 * D, CASE, "procureur des Konings"),
        ("be", 30 * D, JUDICIAL, None),
        ("be", 45 * D, CASE, "data older than 30 days"),
        ("be", 45 * D, JUDICIAL, None),
        ("be", 45 * D, held(A.JUDICIAL_WITH_PROSECUTOR_DECISION, None), "needs its reference"),
        ("be", 45 * D, SENIOR, "procureur des Konings"),  # another kind of authorisation does not cover
        ("be", 365 * D - S, JUDICIAL, None),
        # A window reaching past the horizon is clamped to it: granted with the authorisation for the rest.
        ("be", 365 * D, JUDICIAL, None),
        ("be", 400 * D, JUDICIAL, None),
        ("be", 400 * D, CASE, "procureur des Konings"),
        # NL: no open window; the prosecutor approves every query, even of today's data.
        ("nl", timedelta(minutes=5), CASE, "prosecutor's approval"),
        ("nl", timedelta(minutes=5), PROSECUTOR, None),
        ("nl", 27 * D, PROSECUTOR, None),
        ("nl", 27 * D, JUDICIAL, "prosecutor's approval"),
        ("nl", 40 * D, PROSECUTOR, None),  # clamped to 28 days
        # UK: 90 days open, then a senior officer's authorisation.
        ("uk", 89 * D, CASE, None),
        ("uk", 90 * D, CASE, "senior officer's authorisation"),
        ("uk", 200 * D, SENIOR, None),
        ("uk", 200 * D, JUDICIAL, "senior officer"),
        # Purpose and case reference come first, whatever the age.
        ("be", D, NONE, "X-Purpose"),
        ("be", D, Justification("burglary series"), "X-Case-Reference"),
        ("be", D, Justification(None, "LM.1"), "X-Purpose"),
        ("nl", 400 * D, NONE, "X-Purpose"),
    ],
)
def test_authorisation_by_age(policy: str, age: timedelta, justification: Justification, denied: str | None) -> None:
    if denied is None:
        grant = _decide(policy, age, justification)
        horizon = NOW - preset(policy).hits
        assert grant.since == max(NOW - age, horizon)
        return
    with pytest.raises(Denied) as caught:
        _decide(policy, age, justification)
    assert caught.value.status == 403
    assert denied in caught.value.reason


def test_the_clamp_never_grants_past_the_horizon() -> None:
    policy = preset("be")
    for data_class in (DataClass.HITS, DataClass.PASSAGES):
        grant = decide(INV, "hits.list", JUDICIAL, policy, NOW, since=NOW - 1000 * D, data_class=data_class)
        assert grant.since == policy.horizon(data_class, NOW)
    unbounded = decide(INV, "hits.list", JUDICIAL, policy, NOW, since=None)
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
        decide(INV, "hits.get", JUDICIAL, preset("be"), NOW, since=NOW - 500 * D, until=until)
    assert (caught.value.status, reason in caught.value.reason) == (status, True)


def test_one_record_at_its_own_instant() -> None:
    """hits.get asks for the hit's own instant: inside retention it is granted, past it (not yet purged) refused."""
    at = NOW - 364 * D
    assert decide(INV, "hits.get", JUDICIAL, preset("be"), NOW, since=at, until=at).since == at
    at = NOW - 366 * D
    with pytest.raises(Denied, match="never returned"):
        decide(INV, "hits.get", JUDICIAL, preset("be"), NOW, since=at, until=at)


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
        "me", "cameras.list", "cameras.map", "hits.list", "hits.get", "hits.ack", "hits.stream",
    }  # fmt: skip
    assert PERMISSIONS["dpo.report"] == {Role.DPO, Role.ADMIN}
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
        ({"x-authorisation": "senior_authorisation", "x-authorisation-reference": "S-1"},
         Justification(None, None, A.SENIOR_AUTHORISATION, "S-1")),
        ({"x-purpose": "p" * 600}, Justification("p" * 500)),
    ],
)  # fmt: skip
def test_justification_from_headers(headers: dict[str, str], expected: Justification) -> None:
    assert Justification.from_headers(headers) == expected


@pytest.mark.parametrize(("value", "reason"), [("expired", "cannot be held"), ("root", "is not one of")])
def test_justification_refuses_unknown_or_expired_authorisation(value: str, reason: str) -> None:
    with pytest.raises(Denied, match=reason) as caught:
        Justification.from_headers({"x-authorisation": value})
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
