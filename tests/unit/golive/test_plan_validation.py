"""Plan files: the shipped plans are valid, bad plans exit 2 naming the file, line and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import cli
from golive.errors import PlanError
from golive.plan import load, parse
from golive.providers import check_runnable

REPO = Path(__file__).resolve().parents[3]
REHEARSAL = REPO / "deploy" / "golive" / "rehearsal.yaml"
PRODUCTION = REPO / "deploy" / "golive" / "production.yaml"


def base() -> dict[str, Any]:
    return yaml.safe_load(REHEARSAL.read_text(encoding="utf-8"))


def with_stages(data: dict[str, Any], *weights: int) -> dict[str, Any]:
    data["traffic"] = {
        "flag_provider": "flagd-file",
        "stages": [{"weight": w, "dwell_s": 1} for w in weights],
    }
    return data


def mutate(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(base())
    change(data)
    return data


BAD_PLANS = [
    (
        "unknown top-level key",
        lambda d: d.update(rollout_speed="fast"),
        "rollout_speed",
        "unknown key",
    ),
    (
        "unknown nested key",
        lambda d: d["slots"]["blue"].update(replicas=3),
        "slots.blue.replicas",
        "unknown key",
    ),
    ("missing slot", lambda d: d["slots"].pop("green"), "slots.green", "Field required"),
    (
        "weight above 100",
        lambda d: with_stages(d, 10, 150),
        "traffic.stages[1].weight",
        "less than or equal to 100",
    ),
    ("weight zero", lambda d: with_stages(d, 0, 100), "traffic.stages[0].weight", "greater than 0"),
    (
        "stages out of order",
        lambda d: with_stages(d, 50, 10, 100),
        "traffic.stages",
        "increase strictly",
    ),
    (
        "stages not ending at 100",
        lambda d: with_stages(d, 10, 50),
        "traffic.stages",
        "must reach 100",
    ),
    (
        "stages without provider",
        lambda d: d["traffic"].update(flag_provider=None, stages=[{"weight": 100, "dwell_s": 1}]),
        "traffic",
        "flag_provider",
    ),
    (
        "same port twice",
        lambda d: d["slots"]["green"].update(port=d["slots"]["blue"]["port"]),
        "slots",
        "different ports",
    ),
    (
        "green is not the release",
        lambda d: d["slots"]["green"].update(version="3.0.0"),
        "(top level)",
        "release version",
    ),
    (
        "unknown target",
        lambda d: d["target"].update(kind="nomad"),
        "target.kind",
        "'local' or 'kubernetes'",
    ),
    (
        "window backwards",
        lambda d: d["maintenance_window"].update(
            always=False, start="2026-12-05T22:00:00+02:00", end="2026-12-05T21:00:00+02:00"
        ),
        "maintenance_window",
        "after start",
    ),
    ("no escalation contact", lambda d: d.update(escalation=[]), "escalation", "at least 1"),
    (
        "kubernetes without auth",
        lambda d: d["target"].update(kind="kubernetes"),
        "auth",
        "one of token_env: NAME, token_file: PATH or token_command: [argv...]",
    ),
    (
        "two token sources",
        lambda d: d.update(auth={"token_env": "GOLIVE_TOKEN", "token_file": "/run/token"}),
        "auth",
        "exactly one of token_env, token_file, token_command (found token_env and token_file)",
    ),
    (
        "no token source",
        lambda d: d.update(auth={"refresh_s": 60}),
        "auth",
        "exactly one of token_env, token_file, token_command",
    ),
    (
        "token command as one string",
        lambda d: d.update(auth={"token_command": "curl -sf https://auth.example.com/token"}),
        "auth.token_command",
        "valid list",
    ),
    (
        "refresh never",
        lambda d: d.update(auth={"token_env": "GOLIVE_TOKEN", "refresh_s": 0}),
        "auth.refresh_s",
        "greater than 0",
    ),
    (
        "approval neither auto nor manual",
        lambda d: d["traffic"]["stages"][0].update(approval="maybe"),
        "traffic.stages[0].approval",
        "'auto' or 'manual'",
    ),
    (
        "negative dwell",
        lambda d: d["hold"].update(post_switch_s=-1),
        "hold.post_switch_s",
        "greater than or equal to 0",
    ),
]


@pytest.mark.parametrize(
    ("case", "change", "path", "reason"), BAD_PLANS, ids=[c[0] for c in BAD_PLANS]
)
def test_bad_plan_names_file_line_and_field(tmp_path, capsys, case, change, path, reason):
    plan_file = tmp_path / "bad.yaml"
    plan_file.write_text(yaml.safe_dump(mutate(change), sort_keys=False), encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load(plan_file)
    problem = next(p for p in caught.value.problems if f": {path}: " in p)
    assert problem.startswith(f"{plan_file}:")
    assert reason in problem
    line = int(problem.split(":")[1])
    assert 1 <= line <= len(plan_file.read_text().splitlines())

    assert cli.main(["check", str(plan_file), "--structure-only"]) == 2
    err = capsys.readouterr().err
    assert f": {path}: " in err and str(plan_file) in err


def test_line_number_points_at_the_bad_field():
    text = REHEARSAL.read_text(encoding="utf-8").replace(
        "workers: 2, version", "workers: 99, version", 1
    )
    with pytest.raises(PlanError) as caught:
        parse(text, "plan.yaml")
    (problem,) = caught.value.problems
    bad_line = next(i for i, line in enumerate(text.splitlines(), 1) if "workers: 99" in line)
    assert problem.startswith(f"plan.yaml:{bad_line}: slots.green.workers:")


def test_not_yaml_is_a_plan_error():
    with pytest.raises(PlanError, match=r"plan.yaml:2: not valid YAML"):
        parse("name: x\n  bad: [", "plan.yaml")


def test_shipped_plans_are_valid():
    rehearsal = load(REHEARSAL)
    check_runnable(rehearsal)
    assert rehearsal.target.kind == "local" and rehearsal.rollback_drill
    production = load(PRODUCTION)
    assert [s.weight for s in production.traffic.stages] == [10, 50, 100]
    assert all(s.dwell_s == 24 * 3600 for s in production.traffic.stages)
    assert production.hold.post_switch_s == 2 * 3600


def test_unregistered_providers_fail_loudly_naming_them(capsys, tmp_path: Path):
    check_runnable(load(PRODUCTION))  # kubernetes and kubernetes-configmap are registered
    text = PRODUCTION.read_text(encoding="utf-8").replace(
        "flag_provider: kubernetes-configmap", "flag_provider: unleash"
    )
    plan_path = tmp_path / "production.yaml"
    plan_path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        check_runnable(load(plan_path))
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "unleash" in row)
    assert f"production.yaml:{line}: traffic.flag_provider: no traffic flag provider 'unleash'" in (
        str(caught.value)
    )
    assert cli.main(["run", str(plan_path)]) == 2
    assert "no traffic flag provider 'unleash'" in capsys.readouterr().err


def test_the_runbook_reaches_a_slot_where_the_plan_says() -> None:
    production = load(PRODUCTION)
    assert production.slot_address("green") == "https://credit-assessment-green.internal"
    data = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    del data["target"]["kubernetes"]["slot_urls"]
    bare = parse(yaml.safe_dump(data), "production.yaml")
    assert bare.slot_address("blue") == "http://credit-assessment-blue.credit-assessment.svc"
    rehearsal = load(REPO / "deploy" / "golive" / "rehearsal.yaml")
    assert rehearsal.slot_address("green") == f"http://127.0.0.1:{rehearsal.slots.green.port}"
