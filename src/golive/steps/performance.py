"""Performance check of green alone, before the switch (the story's "performance tests meet SLA").

The plan's rate for the plan's duration, open loop, straight to green's port (not through the
router, so blue's traffic is untouched and the figures are green's). The step refuses the
switch when p99 or the error ratio misses the plan's SLO; the figures go into the report.
"""

from __future__ import annotations

import asyncio
import json

from golive.errors import GateBreached
from golive.load import LoadPlan, LoadResult, is_loopback, run_load
from golive.plan import Plan
from golive.steps.base import StepContext, StepResult


def assessment_load(url: str, token: str, plan: Plan, rate: float, duration: float) -> LoadPlan:
    client = plan.smoke.client_id

    def body(index: int) -> bytes:
        amount = 5000 + (index * 7919) % 95000
        term = (3, 6, 12, 24, 36)[index % 5]
        return json.dumps({"clientId": client, "loanAmount": amount, "loanTerm": term}).encode()

    return LoadPlan(
        url=url,
        path="/api/v1/assessment",
        rate_per_s=rate,
        duration_s=duration,
        method="POST",
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        connections=32,
        remote=not is_loopback(url),  # a production slot: TLS and the environment's proxy
    )


def figures(result: LoadResult) -> dict[str, float | int]:
    ratio = result.failed / result.count if result.count else 1.0
    return {**result.summary(), "error_ratio": round(ratio, 6)}


class PerformanceGreen:
    name = "performance-green"
    title = "Performance check of green alone (SLO: p99, error ratio)"

    def run(self, ctx: StepContext) -> StepResult:
        perf = ctx.plan.performance
        url = ctx.target.slot_url("green")
        ctx.observer.message(
            f"  {perf.rate_per_s:g} req/s for {perf.duration_s:g}s straight to green"
        )

        def measure(token: str) -> LoadResult:
            load = assessment_load(url, token, ctx.plan, perf.rate_per_s, perf.duration_s)
            return asyncio.run(run_load(load))

        # A token that expired during the run is refused: measure again with a fresh one.
        result = ctx.authorized(measure, lambda done: done.statuses().get(401, 0) > 0)
        measured = figures(result)
        measured.update(
            {"slo_p99_ms": perf.slo.p99_ms, "slo_error_ratio": perf.slo.max_error_ratio}
        )
        misses = []
        if not result.count:
            misses.append("no request completed")
        if float(measured["p99_ms"]) > perf.slo.p99_ms:
            misses.append(f"p99 {measured['p99_ms']} ms > {perf.slo.p99_ms:g} ms")
        if float(measured["error_ratio"]) > perf.slo.max_error_ratio:
            misses.append(f"error ratio {measured['error_ratio']} > {perf.slo.max_error_ratio:g}")
        summary = (
            f"{measured['requests']} requests at {measured['rps']} req/s: "
            f"p50 {measured['p50_ms']} ms,"
            f" p99 {measured['p99_ms']} ms, {measured['failed']} failed"
        )
        if misses:
            raise GateBreached(
                f"green misses its SLO, switch refused: {'; '.join(misses)} ({summary})"
            )
        return StepResult(summary, measured)

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return plan.performance.duration_s + 2

    def manual(self, plan: Plan) -> list[str]:
        perf = plan.performance
        return [
            f"# drive {perf.rate_per_s:g} assessments/s for {perf.duration_s:g} s at green alone "
            "(an open-loop tool such as wrk2 -R or k6),",
            f"# then compare: p99 ≤ {perf.slo.p99_ms:g} ms, "
            f"errors ≤ {perf.slo.max_error_ratio:.2%}",
            f"wrk2 -t2 -c32 -d{perf.duration_s:.0f}s -R{perf.rate_per_s:.0f} --latency "
            "-s post-assessment.lua <green URL>/api/v1/assessment",
        ]
