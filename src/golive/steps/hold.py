"""Dwell on the new release while gates judge live figures; a breach rolls back.

The hold's ``dwell`` opens a metric window on green (``golive.metrics``: green's own
``/metrics`` scraped directly, as the traffic stages do on the local target). Every
``gates.interval_s`` it measures the window (5xx ratio and p99 of the API since the dwell
began) and, in a rehearsal, the background load (errors and p99 as clients saw them), judges
them against the plan's absolute thresholds (``golive.analysis.judge_thresholds``), journals
the verdict, and raises ``GateBreached`` on a failure. A pause freezes the countdown. A resumed
run dwells only what is left of the time measured from the step's first start (the traffic
stages share ``elapsed_since_first_start`` and ``TICK_S``). An inconclusive end (too little
traffic to judge) pauses for a human, as Argo Rollouts does. While paused nothing is judged;
judging starts again with the run.
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import datetime
from typing import Any

from golive import journal as j
from golive import metrics
from golive.analysis import SourceWindow, Thresholds, Verdict, judge_thresholds
from golive.errors import GateBreached, MetricSourceError, PlanError
from golive.metrics import MetricSource
from golive.plan import Gates, Plan, SlotName
from golive.steps.base import StepContext, StepResult

MAX_SCRAPE_ERRORS = 3
TICK_S = 0.5
GREEN = "green /metrics"
CLIENTS = "clients (background load)"
# How the journal and the report spell a verdict of the hold.
JOURNALED = {Verdict.PASS: "passed", Verdict.FAIL: "failed", Verdict.INCONCLUSIVE: "inconclusive"}


def slot_metrics(ctx: StepContext, slot: SlotName) -> MetricSource:
    """One slot's figures summed over every instance: its own ``/metrics`` where that URL
    covers them all (the local target), else the plan's Prometheus -- never a scrape through a
    load-balanced URL, where each scrape lands on one pod of many."""
    if ctx.target.slot_metrics_complete:
        return metrics.create("scrape", instances=[ctx.target.slot_url(slot)])
    url = ctx.plan.monitoring.prometheus_url
    if not url:
        raise PlanError(
            [
                "monitoring.prometheus_url: this target's slots have many instances; the gates "
                "need a Prometheus that scrapes every one"
            ]
        )
    return metrics.create("prometheus", url=url, selector=ctx.target.metric_selector(slot))


def metric_source(ctx: StepContext) -> MetricSource:
    """Green's figures, every instance of it."""
    return slot_metrics(ctx, "green")


def elapsed_since_first_start(ctx: StepContext, step: str) -> float:
    record = ctx.state.steps.get(step)
    if record is None or record.attempts <= 1:
        return 0.0
    with contextlib.suppress(ValueError):
        started = datetime.fromisoformat(record.started)
        return max(0.0, (datetime.now(started.tzinfo) - started).total_seconds())
    return 0.0


def dwell(ctx: StepContext, step: str, seconds: float, gates: Gates) -> dict[str, Any]:
    """Dwell ``seconds`` (less what a previous attempt already did), judging gates."""
    remaining = max(0.0, seconds - elapsed_since_first_start(ctx, step))
    if remaining < seconds:
        ctx.journal.append(j.NOTE, step=step, text=f"resumed dwell: {remaining:.0f}s left")
    thresholds = Thresholds(gates.max_error_ratio, gates.max_p99_ms, gates.min_requests)
    source = metric_source(ctx)
    window = source.open_window(step)
    load_since = time.monotonic()
    scrape_errors = evaluations = 0
    last: dict[str, Any] = {}
    next_judgement = gates.interval_s
    clock_start = ctx.clock.monotonic()
    waited = 0.0
    while True:
        left = remaining - waited
        ctx.observer.dwell(step, max(0.0, left), last)
        if left <= 0 and evaluations > 0:
            break
        tick = min(TICK_S, max(left, 0.0), next_judgement)
        before = ctx.clock.monotonic()
        if tick > 0:
            ctx.clock.sleep(tick)
        if not ctx.checkpoint():  # a pause freezes the countdown
            waited += ctx.clock.monotonic() - before
        next_judgement -= ctx.clock.monotonic() - before
        if next_judgement > 0 and remaining - waited > 0:
            continue
        next_judgement = gates.interval_s
        try:
            windows = [SourceWindow.of_api(GREEN, source.measure(window))]
            scrape_errors = 0
        except MetricSourceError as exc:
            scrape_errors += 1
            if scrape_errors >= MAX_SCRAPE_ERRORS:
                raise GateBreached(
                    f"green's /metrics unreachable {scrape_errors} times: {exc}"
                ) from exc
            continue
        if ctx.load is not None:
            requests, failed, p99 = ctx.load.window(load_since)
            windows.append(SourceWindow(CLIENTS, requests, failed, p99))
        verdict = judge_thresholds(thresholds, windows)
        evaluations += 1
        last = _figures(windows, JOURNALED[verdict.verdict])
        ctx.journal.append(
            j.GATE_EVALUATED,
            step=step,
            verdict=JOURNALED[verdict.verdict],
            figures=last,
            reasons=list(verdict.reasons),
            # What the figures were judged against, so the report needs no plan to chart them.
            thresholds={
                "max_error_ratio": gates.max_error_ratio,
                "max_p99_ms": gates.max_p99_ms,
                "min_requests": gates.min_requests,
            },
        )
        if verdict.verdict is Verdict.FAIL:
            raise GateBreached(f"gate failed during {step}: " + "; ".join(verdict.reasons))
        if remaining - waited <= 0 and verdict.verdict is Verdict.INCONCLUSIVE:
            ctx.journal.append(j.NOTE, step=step, text="inconclusive: paused for a human")
            ctx.control.write(pause=True, by="golive (inconclusive gates)")
            ctx.checkpoint()
    return {
        "dwell_s": round(seconds, 1),
        "dwelt_s": round(ctx.clock.monotonic() - clock_start, 1),
        "evaluations": evaluations,
        **last,
    }


def _figures(windows: list[SourceWindow], verdict: str) -> dict[str, Any]:
    figures: dict[str, Any] = {"verdict": verdict}
    for w in windows:
        key = "green" if w.source == GREEN else "clients"
        figures[f"{key}_requests"] = w.requests
        figures[f"{key}_errors"] = w.errors
        figures[f"{key}_p99_ms"] = None if math.isnan(w.p99_ms) else round(w.p99_ms, 2)
    return figures


class Hold:
    name = "hold"
    title = "Hold: post-deployment monitoring on green, gates judged live"

    def run(self, ctx: StepContext) -> StepResult:
        figures = dwell(ctx, self.name, ctx.plan.hold.post_switch_s, ctx.plan.gates)
        return StepResult(
            f"{figures['dwell_s']:g}s on green, {figures['evaluations']} gate evaluations, "
            f"last verdict {figures.get('verdict')}",
            figures,
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return plan.hold.post_switch_s

    def manual(self, plan: Plan) -> list[str]:
        g = plan.gates
        return [
            f"# watch the error ratio (≤ {g.max_error_ratio:.2%}) and p99 (≤ {g.max_p99_ms:g} ms)",
            f"# of the green slot every {g.interval_s:g}s for {plan.hold.post_switch_s / 3600:g} h",
            "# (Grafana: Service overview; Prometheus:",
            "# slot:credit_assessment_http_error_ratio:rate5m)",
            "# verify every alert rule is loaded:",
            "curl -s $PROMETHEUS/api/v1/rules | jq '.data.groups[].rules[].name'",
        ]
