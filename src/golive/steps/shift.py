"""A traffic stage: raise the legacy-to-new flag to the stage's weight, verify, dwell, judge.

The flag provider comes from ``golive.traffic`` (none is registered in this build: a plan with
stages fails validation naming its provider). The weight is read back from every serving
instance before the dwell; undo restores the previous stage's weight, verified the same way.
"""

from __future__ import annotations

from golive.plan import Plan, Stage
from golive.steps import StepContext, StepResult
from golive.steps.hold import dwell
from golive.traffic import TrafficFlag, provider, verify_weight


def flag_for(ctx: StepContext) -> TrafficFlag:
    name = ctx.plan.traffic.flag_provider
    assert name is not None  # the plan validates that stages name a provider
    return provider(name)(ctx.plan, ctx.target)


class TrafficStage:
    def __init__(self, stage: Stage, previous_weight: int) -> None:
        self.stage = stage
        self.previous_weight = previous_weight
        self.name = f"traffic-{stage.weight}"
        self.title = f"Traffic stage: {stage.weight}% of legacy traffic to the new engine"

    def run(self, ctx: StepContext) -> StepResult:
        flag = flag_for(ctx)
        flag.set_weight(self.stage.weight)
        weights = verify_weight(flag, self.stage.weight)
        ctx.observer.message(
            f"  flag {flag.key} at {self.stage.weight}% on {len(weights)} instances"
        )
        figures = dwell(ctx, self.name, self.stage.dwell_s, ctx.plan.gates_for(self.stage))
        figures.update({"weight": self.stage.weight, "instances": weights})
        return StepResult(f"{self.stage.weight}% held {self.stage.dwell_s:g}s", figures)

    def undo(self, ctx: StepContext) -> str | None:
        flag = flag_for(ctx)
        if all(w == self.previous_weight for w in flag.read_weights().values()):
            return None
        flag.set_weight(self.previous_weight)
        verify_weight(flag, self.previous_weight)
        return f"flag {flag.key} back to {self.previous_weight}%"

    def expected_s(self, plan: Plan) -> float:
        return self.stage.dwell_s

    def manual(self, plan: Plan) -> list[str]:
        key = plan.traffic.flag_key
        return [
            f"# set the `{key}` fractional weights to [{self.stage.weight}, "
            f"{100 - self.stage.weight}] (new, legacy)",
            f"kubectl -n {plan.target.namespace} edit configmap credit-assessment-flags",
            f"# then watch error ratio and p99 for {self.stage.dwell_s / 3600:g} h "
            "before the next stage",
        ]
