"""The rig's traffic stages run by golive in a process of its own, so that a test can kill it
(``python -m tests.integration.golive.traffic_run PLAN WEIGHTS STEP FAULT_JSON FAULT_AT_FILE``).

The fault (``POST /rehearsal/faults`` with FAULT_JSON) is switched on the moment STEP has its
weight verified; when it was is written to FAULT_AT_FILE. When a gate fails, the stage rolls the
flag back to 0% itself and the step fails; the rollback of the run then begins, and there this
process stops, as a golive killed at that point would: the journal has the FAIL and the step's
failure, and the run's rollback is for ``golive run PLAN --resume`` to finish."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from golive import targets
from golive.errors import StepFailed
from golive.plan import load
from golive.runner import Runner
from golive.steps.shift import TrafficStage
from golive.targets.local import LocalTarget
from tests.integration.golive.traffic_rig import FaultOnStart


class StopAtTheRollback(FaultOnStart):
    def __init__(
        self, target: LocalTarget, step: str, switches: dict[str, Any], fault_at_file: Path
    ) -> None:
        super().__init__(target, step, switches)
        self.fault_at_file = fault_at_file

    def message(self, text: str) -> None:
        had = self.fault_at
        super().message(text)
        if self.fault_at is not None and had is None:
            self.fault_at_file.write_text(repr(self.fault_at), encoding="utf-8")
        if text.startswith("rolling back"):
            threading.Event().wait(600)  # killed here


def main(plan_path: str, weights: str, step: str, switches: str, fault_at_file: str) -> int:
    plan = load(Path(plan_path))
    target = targets.create(plan)
    assert isinstance(target, LocalTarget)
    wanted = {int(w) for w in weights.split(",")}
    stages, previous = [], 0
    for stage in plan.traffic.stages:
        if stage.weight in wanted:
            stages.append(TrafficStage(stage, previous))
            previous = stage.weight
    observer = StopAtTheRollback(target, step, json.loads(switches), Path(fault_at_file))
    try:
        Runner(plan, target, steps=stages, observer=observer).run(report=False)
    except StepFailed as exc:
        print(type(exc).__name__, exc.exit_code)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
