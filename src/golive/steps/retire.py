"""Retire blue: after the hold (and the plan's keep-blue time), stop the old release.

Blue is already drained (the router sends it nothing); it is put in maintenance and stopped
with SIGTERM, which the service answers by draining. Undo starts blue again at its version
and waits until it is ready, so the switch back has somewhere to go.
"""

from __future__ import annotations

from golive.plan import Plan
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures


class RetireBlue:
    name = "retire-blue"
    title = "Retire blue (the previous release)"

    def run(self, ctx: StepContext) -> StepResult:
        keep = ctx.plan.hold.keep_blue_s
        if keep > 0:
            ctx.observer.message(f"  keeping blue as the rollback for {keep:g}s more")
            waited = 0.0
            while waited < keep:
                ctx.clock.sleep(min(0.5, keep - waited))
                if not ctx.checkpoint():
                    waited += 0.5
        stopped = ctx.target.stop("blue")
        return StepResult(
            "blue stopped" if stopped else "blue was not running", {"stopped": stopped}
        )

    def undo(self, ctx: StepContext) -> str | None:
        if ctx.target.slot_status("blue").running:
            return None
        ctx.target.deploy("blue")
        ctx.target.wait_ready("blue", ctx.plan.deploy.ready_timeout_s)
        return f"blue restarted ({ctx.plan.slots.blue.version})"

    def expected_s(self, plan: Plan) -> float:
        return plan.hold.keep_blue_s + plan.deploy.drain_s + 2

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).scale_down("blue")
