"""Per-list match policy and its compact string form."""

from __future__ import annotations

import pytest

from anpr_stream.core.policy import ListPolicy, MatchPolicy


def test_example_from_the_issue() -> None:
    policy = MatchPolicy.parse("default=fuzzy:1;biker_club=fuzzy:0,log-only")
    assert policy.default == ListPolicy(fuzzy=True, max_distance=1, dispatch=True)
    assert policy.for_list("biker_club") == ListPolicy(fuzzy=False, max_distance=0, dispatch=False)
    assert policy.for_list("stolen_vehicle") == policy.default
    assert policy.max_distance == 1


@pytest.mark.parametrize(
    ("text", "default", "lists", "max_distance"),
    [
        ("", ListPolicy(), {}, 0),
        ("  ", ListPolicy(), {}, 0),
        ("default=exact", ListPolicy(), {}, 0),
        ("default=log-only", ListPolicy(dispatch=False), {}, 0),
        # list clauses inherit what they do not set from the default, whatever the order
        (
            "stolen_vehicle=fuzzy:2 ; default = fuzzy:1, log-only",
            ListPolicy(True, 1, False),
            {"stolen_vehicle": ListPolicy(True, 2, False)},
            2,
        ),
        ("biker_club=dispatch;", ListPolicy(), {"biker_club": ListPolicy()}, 0),
    ],
)
def test_parse(text: str, default: ListPolicy, lists: dict[str, ListPolicy], max_distance: int) -> None:
    policy = MatchPolicy.parse(text)
    assert policy.default == default
    assert dict(policy.per_list) == lists
    assert policy.max_distance == max_distance
    assert MatchPolicy.parse(policy.to_string()) == policy


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("fuzzy:1", "expected NAME=OPTION"),
        ("Default=fuzzy:1", "expected NAME=OPTION"),
        ("default=fuzzy:x", "distance from 0 to 3"),
        ("default=fuzzy:9", "distance from 0 to 3"),
        ("default=fuzzy", "distance from 0 to 3"),
        ("default=fast", "unknown option 'fast'"),
        ("default=", "unknown option"),
        ("default=fuzzy:1,exact", "distance is set twice"),
        ("default=dispatch,log-only", "dispatch is set twice"),
        ("default=fuzzy:1;default=fuzzy:0", "given twice"),
        ("default=log-only:1", "unknown option"),
    ],
)
def test_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        MatchPolicy.parse(text)


def test_list_policy_invariants() -> None:
    with pytest.raises(ValueError, match="max_distance from 1"):
        ListPolicy(fuzzy=True, max_distance=0)
    with pytest.raises(ValueError, match="must be 0 when fuzzy"):
        ListPolicy(fuzzy=False, max_distance=1)


def test_uniform_policy_is_the_cli_max_distance() -> None:
    assert MatchPolicy.uniform(0) == MatchPolicy()
    assert MatchPolicy.uniform(2).for_list("anything") == ListPolicy(True, 2, True)


@pytest.mark.parametrize(
    ("text", "default", "lists", "max_candidates"),
    [
        ("default=fuzzy:1", ListPolicy(True, 1), {}, 0),  # off unless a list opts in
        ("default=candidates:3", ListPolicy(candidates=3), {}, 3),
        (
            "default=candidates:2,candidate-confidence:0.5;stolen_vehicle=candidates:10;biker_club=candidates:0",
            ListPolicy(candidates=2, min_candidate_confidence=0.5),
            {
                "stolen_vehicle": ListPolicy(candidates=10, min_candidate_confidence=0.5),
                "biker_club": ListPolicy(candidates=0, min_candidate_confidence=0.5),
            },
            10,
        ),
        (
            "stolen_vehicle = candidates : 3 , candidate-confidence : .25, log-only",
            ListPolicy(),
            {"stolen_vehicle": ListPolicy(candidates=3, min_candidate_confidence=0.25, dispatch=False)},
            3,
        ),
        ("default=candidate-confidence:1", ListPolicy(min_candidate_confidence=1.0), {}, 0),
    ],
)
def test_parse_candidate_options(
    text: str, default: ListPolicy, lists: dict[str, ListPolicy], max_candidates: int
) -> None:
    policy = MatchPolicy.parse(text)
    assert policy.default == default
    assert dict(policy.per_list) == lists
    assert policy.max_candidates == max_candidates
    assert MatchPolicy.parse(policy.to_string()) == policy


@pytest.mark.parametrize(
    "text",
    [
        "default=candidates",
        "default=candidates:",
        "default=candidates:11",
        "default=candidates:-1",
        "default=candidates:2.5",
        "default=candidates:\u0663",  # an Arabic-Indic three: isdigit() but not ASCII
        "default=candidate-confidence:1.01",
        "default=candidate-confidence:-0.1",
        "default=candidate-confidence:nan",
        "default=candidate-confidence:inf",
        "default=candidate-confidence:1e-1",
        "default=candidate-confidence:",
        "default=candidate-confidence:0..5",
        "default=candidates:1,candidates:2",
    ],
)
def test_parse_candidate_option_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"candidate|set twice"):
        MatchPolicy.parse(text)


@pytest.mark.parametrize(
    ("policy", "rank", "confidence", "taken"),
    [
        (ListPolicy(), 1, 0.99, False),  # off by default
        (ListPolicy(candidates=2), 1, None, True),
        (ListPolicy(candidates=2), 2, 0.0, True),
        (ListPolicy(candidates=2), 3, 0.99, False),
        (ListPolicy(candidates=3, min_candidate_confidence=0.5), 1, 0.5, True),
        (ListPolicy(candidates=3, min_candidate_confidence=0.5), 1, 0.49, False),
        (ListPolicy(candidates=3, min_candidate_confidence=0.5), 1, None, False),  # unknown is not enough
    ],
)
def test_takes_candidate(policy: ListPolicy, rank: int, confidence: float | None, taken: bool) -> None:
    assert policy.takes_candidate(rank, confidence) is taken


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"candidates": 11}, "candidates must be from 0 to 10"),
        ({"candidates": -1}, "candidates must be from 0 to 10"),
        ({"min_candidate_confidence": 1.5}, "min_candidate_confidence"),
        ({"min_candidate_confidence": float("nan")}, "min_candidate_confidence"),
    ],
)
def test_candidate_invariants(kwargs: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ListPolicy(**kwargs)  # type: ignore[arg-type]
