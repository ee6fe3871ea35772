"""Retention policy: horizons per data class, who may see data of which age, configuration from the environment."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import anpr_stream.retention.policy as policy_module
from anpr_stream.retention import (
    PRESETS,
    Access,
    DataClass,
    authorisation_covers,
    policy_from_env,
    preset,
    required_authorisation,
)

D = timedelta(days=1)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
A = Access


@pytest.mark.parametrize(
    ("name", "age", "data_class", "required"),
    [
        # Belgium: first month open, then judicial with the prosecutor's decision, gone after 12 months.
        ("be", timedelta(0), DataClass.PASSAGES, A.OPEN),
        ("be", -D, DataClass.PASSAGES, A.OPEN),  # clock skew: future data counts as new
        ("be", 29 * D, DataClass.PASSAGES, A.OPEN),
        ("be", 30 * D - timedelta(seconds=1), DataClass.PASSAGES, A.OPEN),
        ("be", 30 * D, DataClass.PASSAGES, A.JUDICIAL_WITH_PROSECUTOR_DECISION),
        ("be", 200 * D, DataClass.HITS, A.JUDICIAL_WITH_PROSECUTOR_DECISION),
        ("be", 365 * D - timedelta(seconds=1), DataClass.PASSAGES, A.JUDICIAL_WITH_PROSECUTOR_DECISION),
        ("be", 365 * D, DataClass.PASSAGES, A.EXPIRED),
        ("be", 365 * D, DataClass.HITS, A.EXPIRED),
        ("be", 400 * D, DataClass.OUTCOMES, A.EXPIRED),
        ("be", 400 * D, DataClass.AUDIT, A.OPEN),  # audit: years, access by role
        ("be", 5 * 365 * D, DataClass.AUDIT, A.EXPIRED),
        # Netherlands: the prosecutor approves every query, 28 days.
        ("nl", timedelta(0), DataClass.PASSAGES, A.PROSECUTOR_EVERY_QUERY),
        ("nl", 27 * D, DataClass.HITS, A.PROSECUTOR_EVERY_QUERY),
        ("nl", 28 * D, DataClass.PASSAGES, A.EXPIRED),
        ("nl", 28 * D, DataClass.HITS, A.EXPIRED),
        # UK: 90 days open, then senior authorisation up to 12 months.
        ("uk", 89 * D, DataClass.PASSAGES, A.OPEN),
        ("uk", 90 * D, DataClass.PASSAGES, A.SENIOR_AUTHORISATION),
        ("uk", 364 * D, DataClass.HITS, A.SENIOR_AUTHORISATION),
        ("uk", 365 * D, DataClass.PASSAGES, A.EXPIRED),
    ],
)
def test_required_authorisation(name: str, age: timedelta, data_class: DataClass, required: Access) -> None:
    assert required_authorisation(preset(name), age, data_class) is required


@pytest.mark.parametrize(
    ("held", "required", "covered"),
    [
        (A.OPEN, A.OPEN, True),
        (A.JUDICIAL_WITH_PROSECUTOR_DECISION, A.OPEN, True),
        (A.OPEN, A.JUDICIAL_WITH_PROSECUTOR_DECISION, False),
        (A.JUDICIAL_WITH_PROSECUTOR_DECISION, A.JUDICIAL_WITH_PROSECUTOR_DECISION, True),
        (A.SENIOR_AUTHORISATION, A.JUDICIAL_WITH_PROSECUTOR_DECISION, False),
        (A.SENIOR_AUTHORISATION, A.SENIOR_AUTHORISATION, True),
        (A.PROSECUTOR_EVERY_QUERY, A.PROSECUTOR_EVERY_QUERY, True),
        (A.OPEN, A.PROSECUTOR_EVERY_QUERY, False),
        (A.JUDICIAL_WITH_PROSECUTOR_DECISION, A.EXPIRED, False),
        (A.EXPIRED, A.EXPIRED, False),
    ],
)
def test_authorisation_covers(held: Access, required: Access, covered: bool) -> None:
    assert authorisation_covers(held, required) is covered


@pytest.mark.parametrize(
    ("name", "passages_days", "hits_days", "open_days"),
    [("be", 365, 365, 30), ("nl", 28, 28, 0), ("uk", 365, 365, 90)],
)
def test_presets(name: str, passages_days: int, hits_days: int, open_days: int) -> None:
    policy = preset(name)
    assert (policy.passages, policy.hits, policy.open_access) == (passages_days * D, hits_days * D, open_days * D)
    assert policy.audit >= 365 * D
    assert policy.passage_horizon(NOW) == NOW - passages_days * D
    assert policy.hit_horizon(NOW) == policy.horizon(DataClass.HITS, NOW) == NOW - hits_days * D


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown retention preset 'fr'; known: be, nl, uk"):
        preset("fr")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, PRESETS["be"]),
        ({"ANPR_RETENTION": ""}, PRESETS["be"]),
        ({"ANPR_RETENTION": "nl"}, PRESETS["nl"]),
        ({"ANPR_RETENTION": "uk", "ANPR_RETENTION_AUDIT_DAYS": ""}, PRESETS["uk"]),
    ],
)
def test_policy_from_env_presets(env: dict[str, str], expected: object) -> None:
    assert policy_from_env(env) == expected


@pytest.mark.parametrize(
    ("env", "attribute", "days"),
    [
        ({"ANPR_RETENTION_AUDIT_DAYS": "3650"}, "audit", 3650),
        ({"ANPR_RETENTION_AUDIT_DAYS": "30"}, "audit", 30),
        ({"ANPR_RETENTION_PASSAGES_DAYS": "31"}, "passages", 31),
        ({"ANPR_RETENTION_HITS_DAYS": "180"}, "hits", 180),
        ({"ANPR_RETENTION_OUTCOMES_DAYS": "100"}, "outcomes", 100),
        ({"ANPR_RETENTION_OPEN_DAYS": "7"}, "open_access", 7),
        ({"ANPR_RETENTION": "nl", "ANPR_RETENTION_PASSAGES_DAYS": " 14 "}, "passages", 14),
    ],
)
def test_policy_from_env_overrides(env: dict[str, str], attribute: str, days: int) -> None:
    assert getattr(policy_from_env(env), attribute) == days * D


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ANPR_RETENTION": "fr"}, "unknown retention preset"),
        ({"ANPR_RETENTION_AUDIT_DAYS": "ten"}, "ANPR_RETENTION_AUDIT_DAYS must be a whole number"),
        ({"ANPR_RETENTION_AUDIT_DAYS": "0"}, "must be at least 1"),
        ({"ANPR_RETENTION_OPEN_DAYS": "-1"}, "must be at least 0"),
        ({"ANPR_RETENTION_PASSAGES_DAYS": "366"}, "exceeds the 'be' preset's legal maximum of 365 days"),
        ({"ANPR_RETENTION": "nl", "ANPR_RETENTION_HITS_DAYS": "29"}, "legal maximum of 28 days"),
        ({"ANPR_RETENTION_OPEN_DAYS": "31"}, "legal maximum of 30 days"),
        ({"ANPR_RETENTION_PASSAGES_DAYS": "10"}, "open-access window cannot be longer"),
    ],
)
def test_policy_from_env_refuses(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy_from_env(env)


def test_policy_module_is_pure() -> None:
    tree = ast.parse(Path(policy_module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "collections.abc", "dataclasses", "datetime", "enum"}
