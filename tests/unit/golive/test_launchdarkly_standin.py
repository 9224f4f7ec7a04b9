"""The LaunchDarkly stand-in's own logic: JSON patches, what LaunchDarkly refuses, the SDK's
view of a flag; and the plan's launchdarkly section."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from golive.errors import PlanError
from golive.plan import load, parse
from golive.rehearsal.launchdarkly_flags import (
    FLAG_KEY,
    PatchError,
    apply_patch,
    check_flag,
    sdk_flag,
    seeded_flag,
)

REPO = Path(__file__).resolve().parents[3]
WEIGHTS = "/environments/production/rules/0/rollout/variations"


def test_a_patch_is_applied_to_a_copy_in_order() -> None:
    flag = seeded_flag()
    patched = apply_patch(
        flag,
        [
            {"op": "test", "path": "/environments/production/on", "value": False},
            {"op": "replace", "path": f"{WEIGHTS}/0/weight", "value": 10_000},
            {"op": "replace", "path": f"{WEIGHTS}/1/weight", "value": 90_000},
            {"op": "replace", "path": "/environments/production/on", "value": True},
            {"op": "add", "path": "/environments/production/targets/-", "value": {"x": 1}},
        ],
    )
    check_flag(patched, FLAG_KEY)
    assert flag == seeded_flag()  # the original is untouched
    rollout = patched["environments"]["production"]["rules"][0]["rollout"]["variations"]
    assert [v["weight"] for v in rollout] == [10_000, 90_000]
    assert patched["environments"]["production"]["targets"] == [{"x": 1}]


@pytest.mark.parametrize(
    ("operations", "says"),
    [
        ([], "non-empty list"),
        ([{"op": "replace", "path": "/environments/production/rules/3/on", "value": 1}], "rules/3"),
        ([{"op": "test", "path": "/environments/production/on", "value": True}], "test failed"),
        ([{"op": "move", "path": "/key"}], "unsupported operation 'move'"),
        ([{"op": "replace", "path": "", "value": {}}], "not a JSON pointer"),
    ],
)
def test_a_patch_that_does_not_apply_is_refused(operations: list[object], says: str) -> None:
    with pytest.raises(PatchError, match=says):
        apply_patch(seeded_flag(), operations)


def test_a_rollout_must_add_up_to_100000_and_the_key_cannot_change() -> None:
    half = apply_patch(
        seeded_flag(), [{"op": "replace", "path": f"{WEIGHTS}/0/weight", "value": 1}]
    )
    with pytest.raises(PatchError, match="add up to 100000"):
        check_flag(half, FLAG_KEY)
    renamed = apply_patch(seeded_flag(), [{"op": "replace", "path": "/key", "value": "other"}])
    with pytest.raises(PatchError, match="key cannot change"):
        check_flag(renamed, FLAG_KEY)


def test_the_sdk_sees_the_environment_s_flag_in_its_own_representation() -> None:
    flag = sdk_flag(seeded_flag(), "production")
    assert flag["variations"] == [True, False] and flag["on"] is False
    assert flag["offVariation"] == 1 and flag["version"] == 1 and flag["salt"]
    assert flag["rules"][0]["id"] == "rule-all-clients"
    assert flag["rules"][0]["rollout"]["variations"][1] == {"variation": 1, "weight": 100_000}
    assert "_id" not in str(flag)


def test_the_launchdarkly_rehearsal_extends_the_rehearsal() -> None:
    plan = load(REPO / "deploy/golive/rehearsal-launchdarkly.yaml")
    base = load(REPO / "deploy/golive/rehearsal.yaml")
    assert plan.traffic.flag_provider == "launchdarkly"
    assert plan.traffic.launchdarkly is not None
    assert plan.traffic.launchdarkly.api_url.startswith("http://127.0.0.1:")
    assert plan.traffic.stages == base.traffic.stages
    assert plan.state_dir != base.state_dir
    assert plan.target.router.port != base.target.router.port


def test_a_launchdarkly_flag_needs_its_section(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["traffic"]["flag_provider"] = "launchdarkly"
    with pytest.raises(PlanError, match="needs a launchdarkly section"):
        parse(yaml.safe_dump(data), str(tmp_path / "plan.yaml"))
