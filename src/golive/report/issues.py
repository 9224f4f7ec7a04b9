"""What went wrong or waited during a run, and what it teaches, from the journal alone (pure).

``issues`` lists every failed check, retry, INCONCLUSIVE verdict, pause, approval wait, rollback
and alert that fired, each with its time and what was done about it; the review pack turns each
into an incident with an action item. ``lessons`` fills the report's prompts with what the run
measured: the slowest step against its expected time, and the gates that came within 20% of
their threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from golive import journal as j
from golive.journal import RunState
from golive.report.series import GateSeries, epoch

NEAR_THRESHOLD = 0.2  # a gate whose figure came within 20% of its threshold is a lesson


@dataclass(frozen=True)
class Issue:
    ts: str
    kind: str  # failed check | retry | inconclusive | pause | approval wait | rollback | alert
    what: str
    done: str
    step: str | None = None

    @property
    def clock(self) -> str:
        return datetime.fromisoformat(self.ts).strftime("%H:%M:%S") if self.ts else "—"


def _checks(e: dict[str, Any]) -> list[Issue]:
    """Failed checks inside a finished step's figures (smoke, monitoring, database)."""
    step, figures = e.get("step"), e.get("figures") or {}
    found: list[Issue] = []
    for check in figures.get("checks") or []:
        if check.get("status") == "failed" or check.get("ok") is False:
            what = f"{step}: check {check.get('name')} failed ({check.get('detail', '')})"
            found.append(Issue(e["ts"], "failed check", what, "recorded; the step went on", step))
    for finding in figures.get("findings") or []:
        if finding.get("passed") is False:
            detail = str(finding.get("detail", ""))
            kind = "alert" if "alert" in detail and "firing" in detail else "failed check"
            what = f"{step}: {finding.get('check')} — {detail}"
            found.append(Issue(e["ts"], kind, what, "recorded by verify-monitoring", step))
    return found


def _inconclusive(events: list[dict[str, Any]]) -> list[Issue]:
    """Consecutive INCONCLUSIVE judgements of one step, as one issue each run of them."""
    found: list[Issue] = []
    streak: list[dict[str, Any]] = []

    def close() -> None:
        if streak:
            first, last = streak[0], streak[-1]
            reasons = "; ".join(last.get("reasons") or []) or "not enough data"
            what = (
                f"{first['step']}: {len(streak)} inconclusive judgement(s) until "
                f"{datetime.fromisoformat(last['ts']).strftime('%H:%M:%S')} — {reasons}"
            )
            found.append(
                Issue(first["ts"], "inconclusive", what, "the stage held and kept judging", None)
            )
            streak.clear()

    for e in events:
        if e["event"] not in ("stage_measured", j.GATE_EVALUATED):
            continue
        if str(e.get("verdict", "")).lower() == "inconclusive":
            if streak and streak[-1]["step"] != e["step"]:
                close()
            streak.append(e)
        else:
            close()
    close()
    return found


def _step_failed(e: dict[str, Any]) -> Issue:
    outcome, step = e.get("outcome", "failed"), e.get("step")
    done = "undone, then the run was rolled back" if outcome == "failed" else "step undone"
    return Issue(e["ts"], "failed check", f"{step} {outcome}: {e.get('error')}", done, step)


def _paused(e: dict[str, Any]) -> Issue:
    return Issue(e["ts"], "pause", f"paused by {e.get('by', 'an operator')}", "waited", None)


def _note(e: dict[str, Any]) -> Issue | None:
    if "paused" not in str(e.get("text", "")):
        return None
    return Issue(e["ts"], "pause", str(e.get("text")), "paused for a person", e.get("step"))


def _approval(e: dict[str, Any]) -> Issue:
    step = e.get("step")
    if e["event"] == j.APPROVAL_REQUESTED:
        what = f"{step} ({e.get('weight')}%) waited for a person's approval"
        return Issue(e["ts"], "approval wait", what, "asked with `golive approve`", step)
    what = f"{step} approved by {e.get('by')} after {e.get('waited_s')} s"
    return Issue(e["ts"], "approval wait", what, "the next stage started", step)


def _traffic_rolled_back(e: dict[str, Any]) -> Issue:
    what = f"{e.get('step')}: {e.get('why')} — " + "; ".join(e.get("reasons") or [])
    done = f"flag back from {e.get('from')}% to {e.get('to')}% in {e.get('after_fail_s')} s"
    return Issue(e["ts"], "rollback", what, done, e.get("step"))


def _undo(e: dict[str, Any]) -> Issue:
    what = f"undo of {e.get('step')} FAILED: {e.get('error')}"
    return Issue(e["ts"], "rollback", what, "act by hand (see Rollback)", e.get("step"))


def _run_finished(e: dict[str, Any]) -> Issue | None:
    if e.get("outcome") not in ("rolled_back", "rollback_failed"):
        return None
    what = f"run rolled back: {e.get('failed_step')}: {e.get('reason')}"
    undone = ", ".join(e.get("undone") or []) or "nothing"
    return Issue(e["ts"], "rollback", what, f"undone: {undone}", e.get("failed_step"))


def _resumed(e: dict[str, Any]) -> Issue:
    return Issue(e["ts"], "retry", "run resumed after an interruption", "resumed", None)


_BY_EVENT: dict[str, Callable[[dict[str, Any]], Issue | None]] = {
    j.STEP_FAILED: _step_failed,
    j.RUN_RESUMED: _resumed,
    j.PAUSED: _paused,
    j.NOTE: _note,
    j.APPROVAL_REQUESTED: _approval,
    j.APPROVED: _approval,
    "traffic_rolled_back": _traffic_rolled_back,
    j.UNDO_FAILED: _undo,
    j.RUN_FINISHED: _run_finished,
}


def _event_issue(e: dict[str, Any]) -> Issue | None:
    handler = _BY_EVENT.get(e["event"])
    return handler(e) if handler is not None else None


def issues(events: list[dict[str, Any]], state: RunState) -> list[Issue]:
    found: list[Issue] = []
    attempts: set[str] = set()
    for e in events:
        if e["event"] == j.STEP_STARTED and e["step"] in attempts:
            what = f"{e['step']} started again (attempt {state.steps[e['step']].attempts})"
            found.append(Issue(e["ts"], "retry", what, "ran the step again", e["step"]))
        if e["event"] == j.STEP_STARTED:
            attempts.add(e["step"])
        if e["event"] == j.STEP_FINISHED:
            found += _checks(e)
        issue = _event_issue(e)
        if issue is not None:
            found.append(issue)
    found += _inconclusive(events)
    return sorted(found, key=lambda i: epoch(i.ts) or 0.0)


def lessons(state: RunState, expected_s: dict[str, float], gates: list[GateSeries]) -> list[str]:
    """Prompts for the lessons learned, filled with what the run measured."""
    took: list[tuple[float, str]] = []
    for name in state.order:
        record = state.steps[name]
        start, end = epoch(record.started), epoch(record.finished)
        if start is not None and end is not None:
            took.append((end - start, name))
    found: list[str] = []
    if took:
        seconds, name = max(took, key=lambda item: item[0])  # the first of equals
        expected = expected_s.get(name) or None
        versus = (
            f"expected {expected:g} s ({seconds / expected:.1f}× that)"
            if expected
            else "no expected time in the plan"
        )
        found.append(
            f"Slowest step: `{name}` took {seconds:.1f} s, {versus}. Is the plan's timing "
            "right, or did something slow it down?"
        )
    near = [s for s in gates if (m := s.closest_margin()) is not None and m <= NEAR_THRESHOLD]
    for series in near:
        margin = series.closest_margin() or 0.0
        worst = max(value for _, value, _ in series.points)
        closeness = (
            "went over its threshold"
            if margin < 0
            else f"came within {margin:.0%} of its threshold"
        )
        found.append(
            f"Gate {series.label} {closeness} "
            f"(worst {worst:.3g} {series.unit} against {series.threshold:g} "
            f"{series.unit}). Is the threshold right, or is the release close to the line?"
        )
    if not near:
        found.append("No gate came within 20% of its threshold.")
    found.append("What would we do differently next time? (to be filled in at the review)")
    return found
