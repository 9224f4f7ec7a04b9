"""A go-live on the fake target whose traffic stage fails its gate, run in a process of its own
so a test can kill it (``python -m tests.integration.golive.notify_run PLAN first|resume``).

``first``: the stage journals a FAIL with its figures and the run rolls back; undoing the
switch then hangs, so the process is still rolling back when the test kills it. ``resume``:
``--resume`` finishes the rollback."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from golive.errors import GateBreached, StepFailed
from golive.plan import Plan, load
from golive.runner import Runner
from golive.steps.base import StepContext, StepResult
from golive.targets.fake import FakeTarget

FAIL_FIGURES = {
    "error_rate": {
        "verdict": "FAIL",
        "reason": "new path errors above legacy",
        "figures": {"new_ratio": 0.05, "legacy_ratio": 0.001},
    }
}


class Switch:
    name = "switch-to-green"
    title = "Switch the service to green"

    def __init__(self, hang_on_undo: bool) -> None:
        self.hang_on_undo = hang_on_undo

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult("switched")

    def undo(self, ctx: StepContext) -> str | None:
        if self.hang_on_undo:
            threading.Event().wait(600)  # killed here
        return "router back to blue"

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


class FailingStage:
    name = "traffic-50"
    title = "Traffic stage: 50%"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.journal.append(
            "stage_measured",
            step=self.name,
            weight=50,
            look=1,
            verdict="FAIL",
            reasons=["error rate: new 5% vs legacy 0.1%"],
            gates=FAIL_FIGURES,
            counts={"new_requests": 400},
        )
        raise GateBreached("traffic stage 50%: gate failed: error rate: new 5% vs legacy 0.1%")

    def undo(self, ctx: StepContext) -> str | None:
        return "flag back to 0%"

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


def main(plan_path: str, phase: str) -> int:
    plan = load(Path(plan_path))
    steps = [Switch(hang_on_undo=phase == "first"), FailingStage()]
    runner = Runner(plan, FakeTarget(), steps=steps)
    try:
        runner.run(resume=phase == "resume", report=False)
    except StepFailed as exc:
        print(type(exc).__name__, exc.exit_code)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
