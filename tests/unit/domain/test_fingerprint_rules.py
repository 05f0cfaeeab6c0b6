"""Who gives fingerprints is policy data: defaults, parsing, and the decision."""

from __future__ import annotations

import pytest

from entryexit.domain.fingerprints import (
    DEFAULT_FINGERPRINT_RULES,
    FingerprintDecision,
    decide,
    parse_fingerprint_rules,
)
from entryexit.domain.model import CitizenshipClass
from entryexit.errors import InvalidInputError

CITIZEN = CitizenshipClass.CITIZEN
RESIDENT = CitizenshipClass.PERMANENT_RESIDENT
VISITOR = CitizenshipClass.FOREIGN_NATIONAL


def test_the_default_programme_takes_non_citizens_of_14_to_79_never_citizens() -> None:
    rules = DEFAULT_FINGERPRINT_RULES
    assert parse_fingerprint_rules({}) == rules
    assert rules.fingers == (2, 7)
    assert rules.takes_prints(VISITOR, 30)
    assert rules.takes_prints(RESIDENT, 14)
    assert rules.takes_prints(VISITOR, 79)
    assert rules.takes_prints(VISITOR, None)  # the class decides when the age is unknown
    assert not rules.takes_prints(VISITOR, 13)
    assert not rules.takes_prints(VISITOR, 80)
    assert not rules.takes_prints(CITIZEN, 30)
    assert not rules.takes_prints(None, 30)  # unknown class: not shown to be a non-citizen


def test_a_policy_table_sets_every_field() -> None:
    rules = parse_fingerprint_rules(
        {
            "fingerprints": {
                "classes": ["foreign_national"],
                "min_age": 18,
                "max_age": 70,
                "fingers": [1, 2, 6, 7],
                "retention_hours": {"foreign_national": 8760},
                "target_far": 0.0001,
                "keep_case_prints": False,
            }
        }
    )
    assert rules.classes == frozenset({VISITOR})
    assert rules.fingers == (1, 2, 6, 7)
    assert rules.retention(VISITOR).days == 365
    assert rules.target_far == 1e-4
    assert not rules.keep_case_prints
    assert DEFAULT_FINGERPRINT_RULES.keep_case_prints  # kept unless a policy says not
    assert not rules.takes_prints(RESIDENT, 30)
    assert rules.as_dict()["fingers"] == [1, 2, 6, 7]


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"classes": ["martian"]}, "may name only"),
        ({"fingers": [0]}, "finger position"),
        ({"fingers": [2, 2]}, "twice"),
        ({"fingers": []}, "must list"),
        ({"min_age": 80, "max_age": 14}, "above"),
        ({"target_far": 2}, "between 0 and 1"),
        ({"retention_hours": {"foreign_national": 10}}, "every class"),
        ({"retention_hours": {"foreign_national": -1, "permanent_resident": 1}}, "whole number"),
        ({"colour": "blue"}, "unknown fields"),
        ({"keep_case_prints": "yes"}, "true or false"),
    ],
)
def test_bad_tables_are_refused_naming_the_field(table: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        parse_fingerprint_rules({"fingerprints": table})


def test_the_decision_is_the_threshold() -> None:
    assert decide(0.36, 0.358) is FingerprintDecision.MATCH
    assert decide(0.358, 0.358) is FingerprintDecision.MATCH
    assert decide(0.35, 0.358) is FingerprintDecision.NO_MATCH
