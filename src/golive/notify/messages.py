"""What the people on call are told: notices folded from the journal, pure.

The journal is the source of truth. ``NoticeFold.apply(record)`` turns one journal record into
the notices it causes (none for most), using what came before it (the latest gate figures of a
step, the step that failed); ``notices(events)`` folds a whole journal. Each notice says what
happened, the figures, what golive is doing about it and the command (or link) for the next
action. Its ``id`` derives from the journal record and the kind only, so the same journal always
yields the same ids: delivery bookkeeping (``golive.notify.delivery``) counts on it across a
crash and a resume.

Kinds (a plan's ``notify.targets[].events``): ``run_started``, ``run_finished``,
``step_failed``, ``gate_failed``, ``inconclusive``, ``approval_needed``, ``rollback_started``,
``rollback_finished``, ``operator_action``, ``maintenance_started``. A notice may also carry a
status for the status page: ``maintenance`` (the migration starts), ``degraded`` (a rollback
runs), ``operational`` (the go-live ended, or the rollback did).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

STAGE_MEASURED = "stage_measured"  # golive.steps.shift
TRAFFIC_SHIFTED = "traffic_shifted"
NOTIFICATION_EVENTS = (
    "notification_sending",
    "notification_sent",
    "notification_failed",
    "notification_unconfirmed",
    "notification_target_off",
)
MIGRATION_STEP = "migrate"
OPERATOR_ROLLBACK = "rollback requested by an operator"


@dataclass(frozen=True)
class Notice:
    id: str
    kind: str
    title: str
    body: str
    severity: str = "info"  # info | success | warning | failure (Apprise's notify types)
    status: str | None = None  # the status page's: maintenance | degraded | operational
    ts: str = ""


@dataclass(frozen=True)
class Links:
    """How the reader acts: the plan to name in commands, and the live page."""

    plan: str = "PLAN"
    live: str | None = None

    def command(self, verb: str) -> str:
        return f"golive {verb} --plan {self.plan}"

    def next(self, *commands: str) -> str:
        lines = [f"Next: {' | '.join(f'`{c}`' for c in commands)}"] if commands else []
        if self.live:
            lines.append(f"Live page: {self.live}")
        return "\n".join(lines)


def record_id(record: dict[str, Any], kind: str) -> str:
    """The same for the record as appended and as read back from the journal file."""
    canonical = json.dumps(record, default=str, sort_keys=True)
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _figures(gates: Any) -> str:
    """``gate: verdict (figure=value, ...)`` per gate of a stage_measured or gate_evaluated."""
    if not isinstance(gates, dict):
        return ""
    parts = []
    for name, gate in gates.items():
        if isinstance(gate, dict):
            figures = gate.get("figures") or {}
            shown = ", ".join(f"{k}={_num(v)}" for k, v in figures.items() if _scalar(v))
            parts.append(f"- {name}: {gate.get('verdict', '')} ({shown}) {gate.get('reason', '')}")
        elif _scalar(gate):
            parts.append(f"- {name}: {_num(gate)}")
    return "\n".join(parts)


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@dataclass
class NoticeFold:
    """The fold: what earlier records said, so a later one can be explained with figures."""

    links: Links = field(default_factory=Links)
    release: str = ""
    run_id: str = ""
    latest: dict[str, str] = field(default_factory=dict)  # step -> its latest figures, as text
    failed: str | None = None  # the reason of the step that failed, once one did

    def apply(self, e: dict[str, Any]) -> list[Notice]:
        kind = e.get("event")
        if kind in NOTIFICATION_EVENTS:
            return []
        handler = getattr(self, f"_{kind}", None)
        return list(handler(e)) if handler is not None else []

    def _notice(self, e: dict[str, Any], kind: str, title: str, *lines: str, **kw: Any) -> Notice:
        body = "\n".join(line for line in lines if line)
        return Notice(record_id(e, kind), kind, title, body, ts=str(e.get("ts", "")), **kw)

    # --- the records that say something to a person -------------------------------------------

    def _run_started(self, e: dict[str, Any]) -> list[Notice]:
        self.release, self.run_id = str(e.get("release", "")), str(e.get("run_id", ""))
        steps = e.get("steps") or []
        return [
            self._notice(
                e,
                "run_started",
                f"Go-live {self.release} started (run {self.run_id})",
                f"golive runs {len(steps)} steps on target {e.get('target')}: "
                + ", ".join(map(str, steps)),
                "golive is running them one by one; a failure rolls back by itself.",
                self.links.next(self.links.command("status"), self.links.command("pause")),
            )
        ]

    def _run_resumed(self, e: dict[str, Any]) -> list[Notice]:
        return [
            self._notice(
                e,
                "run_started",
                f"Go-live {self.release} resumed (run {self.run_id})",
                f"After {e.get('after_step') or 'the start'}; pid {e.get('pid')}.",
                "golive continues with the step that was interrupted.",
                self.links.next(self.links.command("status")),
            )
        ]

    def _step_started(self, e: dict[str, Any]) -> list[Notice]:
        if e.get("step") != MIGRATION_STEP:
            return []
        return [
            self._notice(
                e,
                "maintenance_started",
                f"Maintenance in progress: go-live {self.release} migrates the database",
                "The expand migration runs on the live database (backward compatible).",
                "golive goes on with the deploy once it is verified.",
                self.links.next(self.links.command("status")),
                status="maintenance",
            )
        ]

    def _step_failed(self, e: dict[str, Any]) -> list[Notice]:
        if e.get("outcome", "failed") != "failed":
            return []
        step, error = e.get("step"), str(e.get("error", ""))
        self.failed = f"{step}: {error}"
        figures = self.latest.get(str(step), "")
        notices = []
        if OPERATOR_ROLLBACK in error:
            notices.append(
                self._notice(
                    e,
                    "operator_action",
                    "An operator asked for a rollback",
                    f"{error}, during {step}.",
                )
            )
        notices.append(
            self._notice(
                e,
                "step_failed",
                f"Go-live {self.release}: step {step} failed",
                error,
                f"Latest figures:\n{figures}" if figures else "",
                "golive is rolling back now (every completed step undone in reverse order).",
                self.links.next(self.links.command("status")),
                severity="failure",
            )
        )
        notices.append(self._rollback_started(e, f"{step} failed: {error}"))
        return notices

    def _rollback_started(self, e: dict[str, Any], cause: str) -> Notice:
        return self._notice(
            e,
            "rollback_started",
            f"Rollback of go-live {self.release} started",
            f"Cause: {cause}",
            "golive is undoing the completed steps: traffic back to 0%, router back to blue.",
            self.links.next(self.links.command("status")),
            severity="warning",
            status="degraded",
        )

    def _note(self, e: dict[str, Any]) -> list[Notice]:
        text, step = str(e.get("text", "")), e.get("step")
        if text.startswith("rollback requested by an operator"):
            self.failed = "an operator's golive rollback"
            return [
                self._notice(
                    e,
                    "operator_action",
                    "An operator rolled back the go-live",
                    text,
                ),
                self._rollback_started(e, "golive rollback by an operator"),
            ]
        if "inconclusive" not in text or "paused for a" not in text:
            return []
        figures = self.latest.get(str(step), "")
        return [
            self._notice(
                e,
                "inconclusive",
                f"Go-live {self.release}: {step} inconclusive past its limit — a person is needed",
                text,
                f"Latest figures:\n{figures}" if figures else "",
                "golive has paused the go-live and holds the weight; it judges nothing more "
                "until resumed.",
                self.links.next(self.links.command("resume"), self.links.command("rollback")),
                severity="warning",
            )
        ]

    def _stage_measured(self, e: dict[str, Any]) -> list[Notice]:
        step = str(e.get("step"))
        counts = e.get("counts") or {}
        figures = _figures(e.get("gates"))
        if counts:
            figures += "\n- window: " + ", ".join(f"{k}={_num(v)}" for k, v in counts.items())
        self.latest[step] = figures.strip()
        if str(e.get("verdict", "")).upper() != "FAIL":
            return []
        return [self._gate_failed(e, step, f"at {e.get('weight')}%", e.get("reasons"))]

    def _gate_evaluated(self, e: dict[str, Any]) -> list[Notice]:
        step = str(e.get("step"))
        figures = e.get("figures") or {}
        thresholds = e.get("thresholds") or {}
        self.latest[step] = "\n".join(
            [f"- {k}: {_num(v)}" for k, v in figures.items() if _scalar(v)]
            + [f"- threshold {k}: {_num(v)}" for k, v in thresholds.items() if _scalar(v)]
        )
        if str(e.get("verdict", "")).lower() not in ("failed", "fail"):
            return []
        return [self._gate_failed(e, step, "", e.get("reasons"))]

    def _gate_failed(self, e: dict[str, Any], step: str, where: str, reasons: Any) -> Notice:
        reasons = "; ".join(map(str, reasons or [])) or "gate failed"
        return self._notice(
            e,
            "gate_failed",
            f"Go-live {self.release}: gate FAIL in {step} {where}".strip(),
            f"Why: {reasons}",
            f"Figures:\n{self.latest.get(step, '')}",
            "golive sets the traffic back and rolls the go-live back.",
            self.links.next(self.links.command("status")),
            severity="failure",
        )

    def _approval_requested(self, e: dict[str, Any]) -> list[Notice]:
        step = str(e.get("step"))
        figures = self.latest.get(step, "")
        return [
            self._notice(
                e,
                "approval_needed",
                f"Go-live {self.release}: approval needed to close {step} ({e.get('weight')}%)",
                "The stage passed its gates; the next stage waits for a person.",
                f"Latest figures:\n{figures}" if figures else "",
                "golive holds the weight and keeps judging the gates while it waits.",
                self.links.next(self.links.command("approve") + " --by NAME"),
                severity="warning",
            )
        ]

    def _approved(self, e: dict[str, Any]) -> list[Notice]:
        return [
            self._notice(
                e,
                "operator_action",
                f"{e.get('step')} approved by {e.get('by')}",
                f"Note: {e.get('note')}" if e.get("note") else "",
                f"Waited {e.get('waited_s')} s; golive starts the next stage.",
            )
        ]

    def _paused(self, e: dict[str, Any]) -> list[Notice]:
        return [
            self._notice(
                e,
                "operator_action",
                f"Go-live {self.release} paused by {e.get('by', 'an operator')}",
                "golive holds where it is (a dwell's countdown is frozen).",
                self.links.next(self.links.command("resume")),
            )
        ]

    def _resumed(self, e: dict[str, Any]) -> list[Notice]:
        return [
            self._notice(
                e,
                "operator_action",
                f"Go-live {self.release} resumed by {e.get('by', 'an operator')}",
                "golive continues where it paused.",
            )
        ]

    def _run_interrupted(self, e: dict[str, Any]) -> list[Notice]:
        return [
            self._notice(
                e,
                "run_finished",
                f"Go-live {self.release} interrupted",
                f"Reason: {e.get('reason')}; undone: {'; '.join(e.get('undone') or []) or '-'}",
                "golive stopped; completed steps stay in place.",
                self.links.next("golive run PLAN --resume", self.links.command("rollback")),
                severity="warning",
            )
        ]

    def _run_finished(self, e: dict[str, Any]) -> list[Notice]:
        outcome = str(e.get("outcome"))
        notices = []
        if outcome in ("rolled_back", "rollback_failed"):
            failed = outcome == "rollback_failed"
            undone = "; ".join(e.get("undone") or []) or "nothing needed undoing"
            notices.append(
                self._notice(
                    e,
                    "rollback_finished",
                    f"Rollback of go-live {self.release} "
                    + ("INCOMPLETE: act by hand now" if failed else "finished"),
                    f"Cause: {e.get('reason') or self.failed}",
                    f"Undone: {undone}",
                    "An undo failed: see the runbook's rollback section."
                    if failed
                    else "The service is back on blue.",
                    self.links.next(self.links.command("status")),
                    severity="failure" if failed else "warning",
                    status="degraded" if failed else "operational",
                )
            )
        ok = outcome == "succeeded"
        notices.append(
            self._notice(
                e,
                "run_finished",
                f"Go-live {self.release} finished: {outcome}",
                "The release serves all traffic." if ok else f"Cause: {e.get('reason')}",
                "golive writes the report and the review pack.",
                self.links.next(f"golive report {self.run_id}"),
                severity="success" if ok else "failure",
                status="operational" if ok else None,
            )
        )
        return notices


def notices(events: list[dict[str, Any]], links: Links | None = None) -> list[Notice]:
    """Every notice of a journal, in its order."""
    fold = NoticeFold(links or Links())
    return [notice for event in events for notice in fold.apply(event)]
