"""A traffic stage: raise the legacy-to-new flag, verify it everywhere, dwell, judge, advance.

1. The plan's flag provider (``golive.traffic``) sets the stage's weight; every serving
   instance must report it back (``verify``) before the stage counts as started.
2. A metric window opens on the serving slot (a direct scrape of its ``/metrics`` on the local
   target; Prometheus on Kubernetes) and every ``traffic.interval_s`` the window so far is
   judged by the gates of ``golive.analysis`` (error rate and latency of the new path vs
   legacy, decision mismatch vs tolerance, bureau failures), folded into the stage verdict:

   * **FAIL** — the flag goes straight back to 0% (verified), the reason with its figures is
     journaled, and the run rolls back and exits non-zero;
   * **PASS** once the dwell has passed — the next stage; with ``approval: manual`` the stage
     first journals ``approval_requested`` and holds its weight, judging on (a FAIL still rolls
     back, pause and rollback are honoured), until ``golive approve`` records a person's
     approval while the gates pass: the approval (``approved``) is the stage's last act;
   * **INCONCLUSIVE** — keep measuring; a gate past its ``inconclusive_limit`` pauses for a
     person (as Argo Rollouts does); still not PASS at the stage deadline — rolled back: a
     stage that cannot show it is healthy does not advance.

At 100% nothing is left on legacy: the error and latency gates take their legacy side from the
previous stage's window (journaled with its figures, so a resumed run has it too).
Undo restores the previous stage's weight, verified the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections import Counter
from datetime import datetime
from typing import Any

from golive import journal as j
from golive import metrics
from golive.analysis import Analysis, Gates, Histogram, ShadowCounts, StageVerdict, WindowMetrics
from golive.analysis import judge_window as judge
from golive.errors import GateBreached, MetricSourceError
from golive.metrics import MetricSource
from golive.plan import SLOT_NAMES, Plan, SlotName, Stage
from golive.steps.base import StepContext, StepResult
from golive.steps.hold import TICK_S, elapsed_since_first_start, slot_metrics
from golive.traffic import create
from golive.traffic.base import TrafficFlag, verify_weight

# Journal events of a traffic stage.
TRAFFIC_SHIFTED = "traffic_shifted"
STAGE_MEASURED = "stage_measured"
TRAFFIC_ROLLED_BACK = "traffic_rolled_back"


def flag_for(ctx: StepContext) -> TrafficFlag:
    return create(ctx.plan, ctx.target)


def metric_source(ctx: StepContext) -> MetricSource:
    """The serving slot's instances: scraped directly where a slot's URL covers all of them
    (following a switch), else summed over every pod of the slot through Prometheus."""
    if not ctx.target.slot_metrics_complete:
        active: SlotName = "blue" if ctx.target.router_state().active == "blue" else "green"
        return slot_metrics(ctx, active)

    def serving() -> list[str]:
        active = ctx.target.router_state().active
        return [ctx.target.slot_url(s) for s in SLOT_NAMES if s == active]

    return metrics.create("scrape", instances=serving)


def approve_command(plan: Plan) -> str:
    """What a person runs to approve the stage waiting for them."""
    return f"golive approve --plan {plan.source} --by NAME [--note TEXT]"


def approval_given(ctx: StepContext, step: str) -> dict[str, Any] | None:
    """The operator's approval of ``step`` in this run, as ``golive approve`` recorded it."""
    given = ctx.control.read()["approval"]
    if given is None or given.get("step") != step:
        return None
    return given if given.get("run_id") == ctx.journal.run_dir.name else None


def approved_before(ctx: StepContext, step: str) -> dict[str, Any] | None:
    """An approval of ``step`` already journaled (a run that died before the step finished)."""
    return next((e for e in reversed(ctx.state.approvals) if e.get("step") == step), None)


def deadline_of(stage: Stage, interval_s: float) -> float:
    if stage.deadline_s is not None:
        return stage.deadline_s
    return max(2 * stage.dwell_s, stage.dwell_s + 10 * interval_s)


class TrafficStage:
    def __init__(self, stage: Stage, previous_weight: int) -> None:
        self.stage = stage
        self.previous_weight = previous_weight
        self.name = f"traffic-{stage.weight}"
        self.title = f"Traffic stage: {stage.weight}% of legacy traffic to the new engine"

    def run(self, ctx: StepContext) -> StepResult:
        weight = self.stage.weight
        gates = Gates.from_mapping(ctx.plan.traffic.analysis)
        flag = flag_for(ctx)
        began = time.monotonic()
        if (
            flag.stored_weights().get(flag.key, 0) == weight
            and ctx.state.steps[self.name].attempts > 1
        ):
            # Set before a restart (its record may be lost): verified, never set twice.
            ctx.journal.append(
                j.NOTE, step=self.name, text=f"flag {flag.key} found at {weight}%: not set again"
            )
        else:
            flag.set_weight(weight)
        weights = verify_weight(flag, weight, ctx.plan.traffic.verify_timeout_s)
        verified_s = round(time.monotonic() - began, 3)
        ctx.journal.append(
            TRAFFIC_SHIFTED,
            step=self.name,
            weight=weight,
            previous=self.previous_weight,
            instances=weights,
            verified_in_s=verified_s,
            deadline_s=deadline_of(self.stage, ctx.plan.traffic.interval_s),
        )
        ctx.observer.message(
            f"  flag {flag.key} at {weight}% on {len(weights)} instance(s), verified in "
            f"{verified_s:.2f}s"
        )
        tags_before = _load_tags(ctx)
        watch = _Watch(ctx, self, gates, flag, _baseline(ctx, self.previous_weight))
        verdict, measured = watch.run()
        approval = watch.await_approval() if self.stage.approval == "manual" else None
        if approval is not None:  # judged on while it waited: the latest window and verdict
            verdict, measured = watch.verdict, watch.measured
        figures: dict[str, Any] = {
            "weight": weight,
            "instances": weights,
            "verified_in_s": verified_s,
            "verdict": str(verdict.verdict),
            "reasons": list(verdict.reasons),
            "evaluations": watch.evaluations,
            "dwell_s": self.stage.dwell_s,
            "dwelt_s": round(watch.waited, 1),
            "engines": _engine_counts(tags_before, _load_tags(ctx)),
            "window": window_json(measured) if measured is not None else None,
        }
        approved = ""
        if approval is not None:
            figures["approval"] = approval
            approved = f", approved by {approval['by']}"
        return StepResult(
            f"{weight}% held {watch.waited:.0f}s, {watch.evaluations} judgements, "
            f"{verdict.verdict}{approved}",
            figures,
        )

    def undo(self, ctx: StepContext) -> str | None:
        flag = flag_for(ctx)
        weights = flag.read_weights()
        # The store too: a weight it accepted that no instance has seen yet would reach them
        # later (a stalled stream, a slow kubelet) if it were left there.
        stored = flag.stored_weights().get(flag.key, 0)
        settled = stored <= self.previous_weight
        if weights and settled and all(w <= self.previous_weight for w in weights.values()):
            rolled = [
                e
                for e in ctx.journal.events()
                if e["event"] == TRAFFIC_ROLLED_BACK and e.get("step") == self.name
            ]
            if rolled and rolled[-1].get("verified"):
                return (
                    f"flag {flag.key} {rolled[-1]['from']}% -> {rolled[-1]['to']}% by the failed "
                    f"gate, verified on {len(rolled[-1]['instances'])} instance(s) "
                    f"{rolled[-1]['after_fail_s']:.2f}s after the verdict"
                )
            return None
        flag.set_weight(self.previous_weight)
        verify_weight(flag, self.previous_weight, ctx.plan.traffic.verify_timeout_s)
        return f"flag {flag.key} back to {self.previous_weight}%"

    def expected_s(self, plan: Plan) -> float:
        return self.stage.dwell_s

    def manual(self, plan: Plan) -> list[str]:
        commands = [
            *_set_by_hand(plan, self.stage.weight),
            "# wait until every pod's GET /flags reports the new flagSetVersion and weight",
            f"# then judge error rate, latency and decision mismatch (new vs legacy) every "
            f"{plan.traffic.interval_s:g}s for {self.stage.dwell_s / 3600:g} h before the next "
            "stage; on a breach set the weights back to [0, 100]",
        ]
        if self.stage.approval == "manual":
            commands += [
                f"# approval: manual — once the gates pass at the end of the dwell, golive "
                f"holds {self.stage.weight}% (still judging) until a person approves:",
                approve_command(plan),
            ]
        return commands


def _set_by_hand(plan: Plan, weight: int) -> list[str]:
    """The command that sets the stage's weight by hand, for the plan's flag provider."""
    key = plan.traffic.flag_key
    ld = plan.traffic.launchdarkly
    if plan.traffic.flag_provider == "launchdarkly" and ld is not None:
        serve = "fallthrough" if ld.rule is None else f"rules/{ld.rule}"
        weights = f"/environments/{ld.environment}/{serve}/rollout/variations"
        patch = (
            f'{{"patch": [{{"op": "replace", "path": "{weights}/0/weight", "value": '
            f'{weight * 1000}}}, {{"op": "replace", "path": "{weights}/1/weight", "value": '
            f'{(100 - weight) * 1000}}}, {{"op": "replace", "path": '
            f'"/environments/{ld.environment}/on", "value": true}}]}}'
        )
        return [
            f"# LaunchDarkly: rule rollout of `{key}` to {weight}% (weights in thousandths)",
            f'curl -sSf -X PATCH "{ld.api_url}/api/v2/flags/{ld.project}/{key}" '
            f'-H "Authorization: ${ld.api_token_env}" -H "Content-Type: application/json" '
            f"-d '{patch}'",
        ]
    return [
        f"# set the `{key}` fractional weights to [{weight}, {100 - weight}] (new, legacy)",
        f"kubectl -n {plan.target.namespace} edit configmap credit-assessment-flags",
    ]


class _Watch:
    """The dwell of one stage: measure, judge, fold, decide."""

    def __init__(
        self,
        ctx: StepContext,
        step: TrafficStage,
        gates: Gates,
        flag: TrafficFlag,
        baseline: WindowMetrics | None,
    ) -> None:
        self.ctx, self.step, self.gates, self.flag, self.baseline = ctx, step, gates, flag, baseline
        self.weight = step.stage.weight
        self.interval_s = ctx.plan.traffic.interval_s
        self.analysis = Analysis(gates.required(self.weight), gates.limits)
        self.evaluations = 0
        self.waited = elapsed_since_first_start(ctx, step.name)
        self.shown: dict[str, Any] = {}
        self.measured: WindowMetrics | None = None
        self.verdict = self.analysis.verdict()
        self.next_look = self.interval_s

    def run(self) -> tuple[StageVerdict, WindowMetrics | None]:
        stage = self.step.stage
        deadline_s = deadline_of(stage, self.interval_s)
        self.source = metric_source(self.ctx)
        self.window = self.source.open_window(self.step.name, since=self._weight_in_place_since())
        while True:
            if not self._tick():
                continue
            verdict = self.verdict
            if verdict.passed and self.waited >= stage.dwell_s:
                return verdict, self.measured
            if self.waited >= deadline_s:
                self._fail(verdict, f"deadline {deadline_s:g}s passed while {verdict.verdict}")

    def _weight_in_place_since(self) -> float | None:
        """When an earlier attempt of this stage verified its weight (a resumed stage: judged
        on everything since then, the dead runner's time too); None on a first attempt."""
        ctx, name = self.ctx, self.step.name
        record = ctx.state.steps.get(name)
        if record is None or record.attempts <= 1:
            return None
        for event in ctx.journal.events():
            if event["event"] == TRAFFIC_SHIFTED and event.get("step") == name:
                with contextlib.suppress(ValueError):
                    return datetime.fromisoformat(str(event["ts"])).timestamp()
        return None

    def await_approval(self) -> dict[str, Any]:
        """The gates passed at the end of the dwell: hold the weight, still judging every
        interval (a FAIL rolls back; pause and rollback are honoured), until a person approves
        with the gates passing. No deadline: the wait is the person's."""
        ctx, name = self.ctx, self.step.name
        journaled = approved_before(ctx, name)
        if journaled is not None:
            return _approval_figures(journaled)
        if approval_given(ctx, name) is None:
            ctx.journal.append(j.APPROVAL_REQUESTED, step=name, weight=self.weight)
            ctx.observer.message(
                f"  {self.weight}% passed its gates: waiting for a person to approve the next "
                f"stage (the gates are still judged every {self.interval_s:g}s). Run: "
                f"{approve_command(ctx.plan)}"
            )
        asked = ctx.clock.monotonic()
        while True:
            given = approval_given(ctx, name)
            if given is not None and self.verdict.passed:
                break
            self._tick()
        waited_s = round(ctx.clock.monotonic() - asked, 1)
        record = ctx.journal.append(
            j.APPROVED,
            step=name,
            weight=self.weight,
            by=given.get("by"),
            note=given.get("note") or "",
            at=given.get("at"),
            waited_s=waited_s,
        )
        ctx.control.write(approval=None)
        ctx.observer.message(f"  approved by {given.get('by')}: the next stage starts")
        return _approval_figures(record)

    def _tick(self) -> bool:
        """Sleep one tick, honouring pause and rollback; judge when an interval is up (True)."""
        ctx, stage = self.ctx, self.step.stage
        before = ctx.clock.monotonic()
        ctx.clock.sleep(min(TICK_S, self.next_look))
        if not ctx.checkpoint():  # a pause freezes the countdown
            self.waited += ctx.clock.monotonic() - before
        self.next_look -= ctx.clock.monotonic() - before
        ctx.observer.dwell(self.step.name, max(0.0, stage.dwell_s - self.waited), self.shown)
        if self.next_look > 0:
            return False
        self.next_look = self.interval_s
        self._look()
        return True

    def _look(self) -> None:
        """Measure the window, judge it, fold the verdict; FAIL rolls back."""
        try:
            self.measured = self.source.measure(self.window)
            judged = judge(
                self.gates, self.measured, weight_percent=self.weight, baseline=self.baseline
            )
            self.analysis = self.analysis.record(*judged)
        except MetricSourceError as exc:
            self.analysis = self.analysis.record_error(exc.message)
        verdict = self.verdict = self.analysis.verdict()
        self.evaluations += 1
        self._journal(verdict, self.measured)
        if verdict.failed:
            self._fail(verdict, "gate failed")
        if verdict.inconclusive_limit_reached:
            self._pause_for_a_person(verdict)

    def _journal(self, verdict: StageVerdict, measured: WindowMetrics | None) -> None:
        latest = {s.metric: s.last for s in verdict.metrics if s.last is not None}
        gates = {
            name: {"verdict": str(j.verdict), "reason": j.reason, "figures": _clean(j.figures)}
            for name, j in latest.items()
        }
        counts = _window_counts(measured)
        self.ctx.journal.append(
            STAGE_MEASURED,
            step=self.step.name,
            weight=self.weight,
            look=self.evaluations,
            elapsed_s=round(self.waited, 2),
            verdict=str(verdict.verdict),
            reasons=list(verdict.reasons),
            gates=gates,
            counts=counts,
            source=measured.source if measured is not None else None,
        )
        self.shown = {"verdict": str(verdict.verdict), **counts}
        self.ctx.observer.dwell(
            self.step.name, max(0.0, self.step.stage.dwell_s - self.waited), self.shown
        )

    def _pause_for_a_person(self, verdict: StageVerdict) -> None:
        self.ctx.journal.append(
            j.NOTE,
            step=self.step.name,
            text="inconclusive limit reached: paused for a person; " + "; ".join(verdict.reasons),
        )
        self.ctx.control.write(pause=True, by="golive (inconclusive gates)")
        self.ctx.checkpoint()

    def _fail(self, verdict: StageVerdict, why: str) -> None:
        failed_at = time.monotonic()
        outcome = "flag could not be set back"
        try:
            self.flag.set_weight(0)
            instances = verify_weight(self.flag, 0, self.ctx.plan.traffic.verify_timeout_s)
            verified = True
            outcome = f"traffic back to 0% on {len(instances)} instance(s)"
        except Exception as exc:  # noqa: BLE001 - the runner's undo tries again; say so
            instances, verified = {}, False
            outcome = f"setting the flag back to 0% failed ({exc}); the rollback retries it"
        after_s = round(time.monotonic() - failed_at, 3)
        self.ctx.journal.append(
            TRAFFIC_ROLLED_BACK,
            step=self.step.name,
            **{"from": self.weight, "to": 0},
            why=why,
            reasons=list(verdict.reasons),
            instances=instances,
            verified=verified,
            after_fail_s=after_s,
        )
        raise GateBreached(
            f"traffic stage {self.weight}%: {why}: " + "; ".join(verdict.reasons) + f"; {outcome}"
        )


# --- figures ------------------------------------------------------------------------------


def _approval_figures(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("by", "note", "at", "waited_s")
    return {"approved": event.get("ts"), **{k: event.get(k) for k in keys}}


def _load_tags(ctx: StepContext) -> Counter[str]:
    if ctx.load is None:
        return Counter()
    for _ in range(5):  # the load's thread may be adding a tag right now
        with contextlib.suppress(RuntimeError):
            return Counter(dict(ctx.load.by_tag))
    return Counter()


def _engine_counts(before: Counter[str], after: Counter[str]) -> dict[str, Any]:
    """Requests the background load saw decided by each engine during the stage."""
    engines: Counter[str] = Counter()
    for tag, count in (after - before).items():
        engines[tag.split("/")[-1] if "/" in tag else tag] += count
    total = engines.get("new", 0) + engines.get("legacy", 0)
    return {
        **dict(sorted(engines.items())),
        "share_new": round(engines.get("new", 0) / total, 4) if total else None,
    }


def _window_counts(w: WindowMetrics | None) -> dict[str, Any]:
    if w is None:
        return {}
    return {
        "new": w.requests("new"),
        "legacy": w.requests("legacy"),
        "new_errors": w.errors.get("new", 0),
        "legacy_errors": w.errors.get("legacy", 0),
        "shadowed": sum(s.total for s in w.shadow.values()) // max(1, len(w.shadow)),
    }


def _clean(figures: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, float):
            out[key] = None if math.isnan(value) else round(value, 6)
        else:
            out[key] = value
    return out


def window_json(w: WindowMetrics) -> dict[str, Any]:
    """A window's counts for the journal (enough to judge against it again)."""
    return {
        "duration_s": round(w.duration_s, 3),
        "decisions": dict(w.decisions),
        "errors": dict(w.errors),
        "latency": {
            engine: [["+Inf" if math.isinf(le) else le, count] for le, count in h.buckets]
            for engine, h in w.latency.items()
        },
        "shadow": {name: [s.match, s.mismatch] for name, s in w.shadow.items()},
        "bureau_calls": dict(w.bureau_calls),
        "legacy_calls": dict(w.legacy_calls),
        "source": w.source,
    }


def window_from_json(data: dict[str, Any]) -> WindowMetrics:
    return WindowMetrics(
        duration_s=float(data.get("duration_s", 0.0)),
        decisions={k: int(v) for k, v in data.get("decisions", {}).items()},
        errors={k: int(v) for k, v in data.get("errors", {}).items()},
        latency={
            engine: Histogram.from_cumulative((float(le), float(c)) for le, c in buckets)
            for engine, buckets in data.get("latency", {}).items()
        },
        shadow={k: ShadowCounts(int(m), int(x)) for k, (m, x) in data.get("shadow", {}).items()},
        bureau_calls={k: int(v) for k, v in data.get("bureau_calls", {}).items()},
        legacy_calls={k: int(v) for k, v in data.get("legacy_calls", {}).items()},
        source=str(data.get("source", "")),
    )


def _baseline(ctx: StepContext, previous_weight: int) -> WindowMetrics | None:
    """The previous stage's window, as its step journaled it (the legacy side at 100%)."""
    if previous_weight <= 0:
        return None
    data = ctx.figures(f"traffic-{previous_weight}").get("window")
    if not data:
        return None
    try:
        baseline = window_from_json(data)
    except (TypeError, ValueError):
        return None
    return dataclasses.replace(baseline, source=f"traffic-{previous_weight}")
