"""A plan that extends another: the shipped production plan with its timings compressed, and
every problem still named at the file and line that set it."""

from __future__ import annotations

from pathlib import Path

import pytest

from golive.errors import PlanError
from golive.plan import load, merge

PRODUCTION = Path(__file__).resolve().parents[3] / "deploy" / "golive" / "production.yaml"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_override_compresses_the_timings_and_keeps_everything_else(tmp_path: Path) -> None:
    override = write(
        tmp_path,
        "fast.yaml",
        f"extends: {PRODUCTION}\n"
        "traffic:\n  interval_s: 2\n  stages:\n"
        "    - {dwell_s: 6, deadline_s: 60}\n"
        "    - {dwell_s: 6, deadline_s: 60}\n"
        "    - {dwell_s: 6, deadline_s: 60}\n"
        "hold: {post_switch_s: 5}\n",
    )
    shipped, fast = load(PRODUCTION), load(override)
    assert [s.weight for s in fast.traffic.stages] == [10, 50, 100]
    assert [s.dwell_s for s in fast.traffic.stages] == [6, 6, 6]
    assert fast.traffic.interval_s == 2 and fast.hold.post_switch_s == 5
    assert fast.hold.keep_blue_s == shipped.hold.keep_blue_s
    assert fast.target == shipped.target and fast.escalation == shipped.escalation
    assert fast.sources == (PRODUCTION, override)


def test_a_problem_is_named_in_the_file_that_set_it(tmp_path: Path) -> None:
    text = f"extends: {PRODUCTION}\n\nhold: {{post_switch_s: -1}}\n"
    override = write(tmp_path, "bad.yaml", text)
    with pytest.raises(PlanError) as raised:
        load(override)
    assert f"{override}:3: hold.post_switch_s" in str(raised.value)

    unknown = write(tmp_path, "unknown.yaml", f"extends: {PRODUCTION}\nholdd: {{}}\n")
    with pytest.raises(PlanError, match=r"unknown.yaml:2: holdd: unknown key"):
        load(unknown)


def test_a_missing_base_and_a_cycle_are_refused(tmp_path: Path) -> None:
    missing = write(tmp_path, "missing.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(PlanError, match=r"missing.yaml:1: extends: .*nowhere.yaml cannot be read"):
        load(missing)
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(PlanError, match="cycle"):
        load(tmp_path / "a.yaml")


def test_merge_replaces_lists_that_are_not_the_same_shape() -> None:
    base = {"stages": [{"weight": 10}, {"weight": 100}], "keep": 1}
    assert merge(base, {"stages": [{"weight": 100}]}) == {"stages": [{"weight": 100}], "keep": 1}
    assert merge(base, {"stages": [{"dwell_s": 1}, {}]})["stages"] == [
        {"weight": 10, "dwell_s": 1},
        {"weight": 100},
    ]
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
