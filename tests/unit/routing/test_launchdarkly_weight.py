"""The weight /flags reports for a flag in the LaunchDarkly SDK's representation."""

from __future__ import annotations

from typing import Any

import pytest

from credit_assessment.routing.launchdarkly import weight_of


def flag(on: bool, *, rules: list[Any] | None = None, fallthrough: Any = None) -> dict[str, Any]:
    return {
        "key": "new-credit-assessment-enabled",
        "on": on,
        "variations": [True, False],
        "offVariation": 1,
        "rules": rules or [],
        "fallthrough": fallthrough or {"variation": 1},
    }


def rollout(new: int) -> dict[str, Any]:
    return {
        "variations": [{"variation": 0, "weight": new}, {"variation": 1, "weight": 100_000 - new}]
    }


@pytest.mark.parametrize(
    ("document", "weight"),
    [
        (None, None),
        (flag(True) | {"deleted": True}, None),
        (flag(False, rules=[{"rollout": rollout(50_000)}]), 0),  # off: the off variation
        (flag(False) | {"offVariation": 0}, 100),
        (flag(True, rules=[{"rollout": rollout(10_000)}]), 10),
        (flag(True, rules=[{"variation": 1}, {"rollout": rollout(33_000)}]), 33),
        (flag(True, fallthrough={"rollout": rollout(100_000)}), 100),
        (flag(True, fallthrough={"variation": 0}), 100),
        (flag(True), 0),
    ],
)
def test_weight_in_use(document: dict[str, Any] | None, weight: int | None) -> None:
    assert weight_of(document) == weight
