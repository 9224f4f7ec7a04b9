"""Automatic rollback with real processes: a green that fails its smoke test, and a green that
is not ready in time. Both end with the router on blue, green stopped, blue untouched, a
non-zero exit naming the step and what was undone, and a report saying so."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from golive import journal as j
from golive.plan import load
from golive.rehearsal import environment
from golive.targets.local import LocalTarget
from tests.conftest import VENV_BIN
from tests.integration.golive.plans import (
    leftover_processes,
    needs_haproxy,
    same_environment,
    write_plan,
)

pytestmark = [needs_haproxy, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, LocalTarget]]:
    directory = tmp_path_factory.mktemp("golive-rollback")
    plan_path = write_plan(directory)
    target = environment.up(load(plan_path))
    try:
        yield directory, plan_path, target
    finally:
        environment.stop_everything(target)
    time.sleep(0.5)
    assert leftover_processes(directory / "state") == []


def run(plan: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "golive"), "run", str(plan), "--plain"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_green_failing_its_smoke_test_is_rolled_back(env):
    directory, plan_path, target = env
    blue_pid = target.slot_status("blue").detail
    # Green misconfigured: its product limit is below the smoke test's loan of 50,000.
    bad = same_environment(
        plan_path,
        directory,
        "bad-green.yaml",
        slots={"green": {"env": {"PRODUCT_MAX_AMOUNT": "10000"}}},
    )
    result = run(bad)
    assert result.returncode == 8, result.stdout + result.stderr
    assert "step 'smoke-green' failed" in result.stderr
    assert "POST /api/v1/assessment -> 422" in result.stderr
    assert "deploy-green: green stopped" in result.stderr
    assert "the service is on blue" in result.stderr and "backup kept at" in result.stderr

    assert target.router_state().active == "blue"
    assert not target.slot_status("green").running
    assert target.slot_status("blue").detail == blue_pid  # blue untouched

    journal = j.latest_run(load(bad).state_dir.resolve())
    assert journal is not None and journal.state().outcome == "rolled_back"
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "**Rolled back**" in report and "- `deploy-green`: green stopped" in report
    assert "| smoke-green |" not in report or "failed" in report


def test_green_that_never_gets_ready_is_torn_down_and_blue_untouched(env):
    directory, plan_path, target = env
    blue_pid = target.slot_status("blue").detail
    # Green deployed with a scorecard artifact that does not exist: it serves /health but
    # its /ready stays 503 (model not loaded), so the deploy deadline passes.
    broken = same_environment(
        plan_path,
        directory,
        "no-model-green.yaml",
        deploy={"ready_timeout_s": 6},
        slots={"green": {"env": {"MODEL_PATH": str(directory / "missing-scorecard.json")}}},
    )
    result = run(broken)
    assert result.returncode == 8, result.stdout + result.stderr
    assert "step 'wait-green-ready' failed" in result.stderr
    assert "green was not ready within 6s" in result.stderr
    assert "deploy-green: green stopped" in result.stderr
    assert target.router_state().active == "blue"
    assert not target.slot_status("green").running
    assert target.slot_status("blue").detail == blue_pid
    green_data = str(directory / "state" / "local" / "slots" / "green")
    assert not [p for p in leftover_processes(directory / "state") if green_data in p]
