"""A person approves a running traffic stage with the real `golive approve`, and rolls one back
with the real `golive rollback` while it waits: live slots behind HAProxy, a background load
through the router, the stages run by the real runner (tests/integration/golive/traffic_rig.py).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from golive import journal as j
from golive.errors import RolledBack
from golive.plan import Plan
from golive.traffic import create
from tests.conftest import VENV_BIN
from tests.integration.golive.plans import needs_haproxy
from tests.integration.golive.traffic_rig import Rig, StageRun, start_rig

pytestmark = [needs_haproxy, pytest.mark.slow]

MANUAL_10 = [
    {"weight": 10, "dwell_s": 4, "deadline_s": 30, "approval": "manual"},
    {"weight": 50, "dwell_s": 4, "deadline_s": 30},
    {"weight": 100, "dwell_s": 4, "deadline_s": 30},
]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    yield from start_rig(tmp_path_factory.mktemp("approval"))


def golive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "golive"), *args], capture_output=True, text=True, timeout=180, check=False
    )


class Stages(threading.Thread):
    """The stages running in the background, as `golive run` would run them."""

    def __init__(self, rig: Rig, plan: Plan, load: Any, weights: list[int]) -> None:
        super().__init__(daemon=True)
        self.rig, self.plan, self.load, self.weights = rig, plan, load, weights
        self.run_result: StageRun | None = None

    def run(self) -> None:
        self.run_result = self.rig.run_stages(self.plan, self.load, weights=self.weights)

    def events(self) -> list[dict[str, Any]]:
        journal = j.latest_run(self.plan.state_dir.resolve())
        return journal.events() if journal is not None else []

    def wait_for(self, event: str, within_s: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and self.is_alive():
            found = [e for e in self.events() if e["event"] == event]
            if found:
                return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no {event} event: {self.events()[-3:]}")

    def finish(self) -> StageRun:
        self.join(timeout=180)
        assert not self.is_alive() and self.run_result is not None
        return self.run_result


def test_golive_approve_lets_the_waiting_stage_finish_and_the_next_start(rig: Rig) -> None:
    plan = rig.plan_with("approve.yaml", stages=MANUAL_10)
    path = str(plan.source)
    rig.reset()
    with rig.load_through_router(200) as load:
        stages = Stages(rig, plan, load, [10, 50])
        stages.start()
        try:
            asked = stages.wait_for(j.APPROVAL_REQUESTED)
            assert (asked["step"], asked["weight"]) == ("traffic-10", 10)
            status = golive("status", "--plan", path)
            assert "waiting for approval: traffic-10 (10%)" in status.stdout, status.stderr
            approved = golive("approve", "--plan", path, "--by", "Chanda Mwale", "--note", "ok")
            again = golive("approve", "--plan", path, "--by", "Mutale Banda")
        finally:
            run = stages.finish()
    assert approved.returncode == 0, approved.stderr
    assert "traffic-10" in approved.stdout
    assert again.returncode == 20, again.stdout + again.stderr
    assert "error: " in again.stderr and "approv" in again.stderr
    assert run.error is None, run.error
    kinds = [e["event"] for e in run.events]
    record = next(e for e in run.events if e["event"] == j.APPROVED)
    assert (record["step"], record["by"], record["note"]) == ("traffic-10", "Chanda Mwale", "ok")
    shifted = [e["weight"] for e in run.events if e["event"] == "traffic_shifted"]
    assert shifted == [10, 50]
    assert kinds.index(j.APPROVED) < kinds.index("traffic_shifted", kinds.index(j.APPROVED))
    assert [e["by"] for e in run.events if e["event"] == j.APPROVED] == ["Chanda Mwale"]
    status = golive("status", "--plan", path)
    assert "approved: traffic-10 (10%) by Chanda Mwale" in status.stdout
    report = (run.journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "**approved by Chanda Mwale**" in report
    assert load.result.failed == 0 and load.stored() == len(load.ids)


def test_golive_rollback_while_a_stage_waits_for_approval_rolls_it_back(rig: Rig) -> None:
    plan = rig.plan_with("approve-then-rollback.yaml", stages=MANUAL_10)
    path = str(plan.source)
    rig.reset()
    with rig.load_through_router(200) as load:
        stages = Stages(rig, plan, load, [10])
        stages.start()
        try:
            stages.wait_for(j.APPROVAL_REQUESTED)
            rolled = golive("rollback", "--plan", path, "--wait", "120")
        finally:
            run = stages.finish()
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert isinstance(run.error, RolledBack) and run.error.exit_code == 9
    assert not [e for e in run.events if e["event"] == j.APPROVED]
    assert set(create(rig.plan, rig.target).read_weights().values()) == {0}
    refused = golive("approve", "--plan", path, "--by", "Chanda Mwale")
    assert refused.returncode == 20 and "no stage is waiting for approval" in refused.stderr
    assert load.stored() == len(load.ids)
    assert Path(run.journal.path).exists()
