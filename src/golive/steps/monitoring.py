"""Verify monitoring is live (targets up, rules loaded, no critical alert, fresh samples).

Uses golive.monitoring when the plan names a Prometheus URL; otherwise the step says plainly
that none is configured and is skipped.
"""

from __future__ import annotations

from golive.errors import GoLiveError
from golive.plan import Plan
from golive.steps import StepContext, StepResult


class VerifyMonitoring:
    name = "verify-monitoring"
    title = "Verify monitoring: Prometheus targets, rules, alerts, fresh samples"

    def run(self, ctx: StepContext) -> StepResult:
        url = ctx.plan.monitoring.prometheus_url
        if not url:
            return StepResult("no Prometheus configured in the plan, skipped", {"skipped": True})
        from golive.monitoring import Expectations, PrometheusMonitoring, failures

        with PrometheusMonitoring(url) as prometheus:
            findings = prometheus.verify(Expectations(fresh_slots=("green",)))
        for finding in findings:
            ctx.observer.message(f"  {finding}")
        failed = failures(findings)
        if failed:
            raise GoLiveError("monitoring is not live: " + "; ".join(map(str, failed)))
        return StepResult(
            f"{len(findings)} monitoring checks passed",
            {"findings": [str(f) for f in findings]},
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 5

    def manual(self, plan: Plan) -> list[str]:
        prom = plan.monitoring.prometheus_url or "$PROMETHEUS"
        return [
            f"curl -s {prom}/api/v1/targets "
            "| jq '.data.activeTargets[] | {slot: .labels.slot, health}'",
            f"curl -s {prom}/api/v1/alerts "
            "| jq '.data.alerts[] | select(.labels.severity==\"critical\")'",
        ]
