"""Smoke-test green directly (not through the router) before any traffic reaches it."""

from __future__ import annotations

from golive.credentials import shell_export
from golive.errors import SmokeFailed
from golive.plan import Plan, SlotName
from golive.smoke import Dependency, SmokeReport, SmokeRequest, run_smoke
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures
from golive.targets.base import Target


def smoke_request(plan: Plan, target: Target) -> SmokeRequest:
    """The plan's smoke settings; its dependencies, then those the target runs, one per name."""
    s = plan.smoke
    named = [Dependency(d.name, d.url, d.expect) for d in s.dependencies]
    known = {d.name for d in named}
    named += [d for d in target.dependencies() if d.name not in known]
    return SmokeRequest(s.client_id, s.loan_amount, s.loan_term, tuple(named), s.timeout_s)


def smoke_or_fail(ctx: StepContext, url: str, what: str, slot: SlotName) -> SmokeReport:
    """The smoke tests against ``url``, which ``slot`` answers; its counter is read from each of
    the slot's instances where ``url`` balances over several."""
    request = smoke_request(ctx.plan, ctx.target)
    target = ctx.target
    each = [] if target.slot_metrics_complete else [i.url for i in target.instances(slot)]
    with target.instance_http(request.timeout_s) as reader:
        report = ctx.authorized(
            lambda token: run_smoke(url, token, request, metrics_urls=each, metrics_reader=reader),
            lambda done: done.unauthorized,
        )
    for check in report.checks:
        ctx.observer.message(f"  {check}")
    if not report.passed:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failures())
        raise SmokeFailed(f"smoke test of {what} failed: {failed}")
    return report


class SmokeGreen:
    name = "smoke-green"
    title = "Smoke-test green directly"

    def run(self, ctx: StepContext) -> StepResult:
        report = smoke_or_fail(ctx, ctx.target.slot_url("green"), "green", "green")
        passed = sum(c.status == "passed" for c in report.checks)
        return StepResult(f"{passed}/{len(report.checks)} checks passed", report.to_json())

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("smoke")

    def manual(self, plan: Plan) -> list[str]:
        url = plan.slot_address("green")
        return [
            shell_export(plan.auth),
            f"./scripts/smoke-tests.sh {url}",
            f"golive smoke {url}",
        ]
