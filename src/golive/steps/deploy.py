"""Deploy green next to blue, then wait until it is ready (and the router's checks see it).

Green starts out of the traffic: the router only health-checks it. A green that is not ready
in ``deploy.ready_timeout_s`` fails the step; the rollback tears green down and leaves blue
untouched.
"""

from __future__ import annotations

from golive.plan import Plan
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures


class DeployGreen:
    name = "deploy-green"
    title = "Deploy green (the new release) beside blue"

    def run(self, ctx: StepContext) -> StepResult:
        spec = ctx.plan.slots.green
        started = ctx.target.deploy("green")
        status = ctx.target.slot_status("green")
        size = status.size or "size unknown"
        return StepResult(
            f"green {spec.version} {'started' if started else 'already running'} "
            f"({size}, {status.url})",
            {"version": spec.version, "size": size, "started": started},
        )

    def undo(self, ctx: StepContext) -> str | None:
        if ctx.target.stop("green"):
            return "green stopped"
        return None

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("deploy")

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).deploy("green")


class WaitGreenReady:
    name = "wait-green-ready"
    title = "Wait until green is ready"

    def run(self, ctx: StepContext) -> StepResult:
        timeout = ctx.plan.deploy.ready_timeout_s
        waited = ctx.target.wait_ready("green", timeout)
        return StepResult(f"green ready after {waited:.1f}s", {"ready_after_s": round(waited, 2)})

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return min(plan.deploy.ready_timeout_s, procedures(plan).expected_s("wait-ready"))

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).wait_ready("green")
