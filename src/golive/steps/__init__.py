"""The go-live's steps, one module each, and the registry that puts them in order.

What every step is and is given (``Step``, ``StepContext``, ``StepResult``, the observer and the
clock) lives in ``golive.steps.base``, which every step module imports; this module only builds
the list a plan runs.
"""

from __future__ import annotations

from golive.plan import Plan
from golive.steps.backup import Backup, VerifyBackup
from golive.steps.base import Step
from golive.steps.deploy import DeployGreen, WaitGreenReady
from golive.steps.hold import Hold
from golive.steps.migrate import CloneTest, Migrate, VerifyDatabase
from golive.steps.monitoring import VerifyMonitoring
from golive.steps.performance import PerformanceGreen
from golive.steps.preflight import Preflight
from golive.steps.retire import RetireBlue
from golive.steps.shift import TrafficStage
from golive.steps.smoke import SmokeGreen
from golive.steps.switch import RollbackDrill, SwitchToGreen, VerifySwitch
from golive.steps.validate import Validate


def build_steps(plan: Plan) -> list[Step]:
    """The go-live, in order."""
    steps: list[Step] = [
        Preflight(),
        Backup(),
        VerifyBackup(),
        CloneTest(),
        Migrate(),
        VerifyDatabase(),
        DeployGreen(),
        WaitGreenReady(),
        SmokeGreen(),
        PerformanceGreen(),
        SwitchToGreen(),
        VerifySwitch(),
        VerifyMonitoring(),
    ]
    if plan.rollback_drill:
        steps.append(RollbackDrill())
    previous = 0
    for stage in plan.traffic.stages:
        steps.append(TrafficStage(stage, previous))
        previous = stage.weight
    steps += [Hold(), Validate(), RetireBlue()]
    return steps
