"""Dwell on the new release while gates judge live figures; a breach rolls back.

``dwell`` is shared by the hold and the traffic stages. Every ``gates.interval_s`` it measures
green's own ``/metrics`` (5xx ratio and p99 of the API since the dwell began) and, in a
rehearsal, the background load (errors and p99 as clients saw them), judges them
(steps/gates.py), journals the verdict, and raises ``GateBreached`` on a failure. A pause
freezes the countdown. A resumed run dwells only what is left of
the time measured from the step's first start. An inconclusive end (too little traffic to
judge) pauses for a human, as Argo Rollouts does. While paused nothing is judged; judging
starts again with the run.
"""

from __future__ import annotations

import contextlib
import math
import time
from datetime import datetime
from typing import Any

import httpx

from golive import journal as j
from golive.errors import GateBreached
from golive.plan import Gates, Plan
from golive.steps.base import StepContext, StepResult
from golive.steps.gates import HistogramSnapshot, Window, histogram_window, judge, parse_histogram

MAX_SCRAPE_ERRORS = 3
TICK_S = 0.5


def _scrape(ctx: StepContext) -> HistogramSnapshot:
    url = ctx.target.slot_url("green") + "/metrics"
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return parse_histogram(response.text)


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
    base = _scrape(ctx)
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
            windows = [histogram_window("green /metrics", base, _scrape(ctx))]
            scrape_errors = 0
        except httpx.HTTPError as exc:
            scrape_errors += 1
            if scrape_errors >= MAX_SCRAPE_ERRORS:
                raise GateBreached(
                    f"green's /metrics unreachable {scrape_errors} times: {exc}"
                ) from exc
            continue
        if ctx.load is not None:
            requests, failed, p99 = ctx.load.window(load_since)
            windows.append(Window("clients (background load)", requests, failed, p99))
        verdict = judge(gates, windows)
        evaluations += 1
        last = _figures(windows, verdict.status)
        ctx.journal.append(
            j.GATE_EVALUATED,
            step=step,
            verdict=verdict.status,
            figures=last,
            reasons=list(verdict.reasons),
        )
        if verdict.status == "failed":
            raise GateBreached(f"gate failed during {step}: " + "; ".join(verdict.reasons))
        if remaining - waited <= 0 and verdict.status == "inconclusive":
            ctx.journal.append(j.NOTE, step=step, text="inconclusive: paused for a human")
            ctx.control.write(pause=True)
            ctx.checkpoint()
    return {
        "dwell_s": round(seconds, 1),
        "dwelt_s": round(ctx.clock.monotonic() - clock_start, 1),
        "evaluations": evaluations,
        **last,
    }


def _figures(windows: list[Window], verdict: str) -> dict[str, Any]:
    figures: dict[str, Any] = {"verdict": verdict}
    for w in windows:
        key = "green" if w.source.startswith("green") else "clients"
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
