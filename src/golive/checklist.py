"""The pre-deployment checklist, each item checked with its evidence (the preflight's).

    security scan    ``<summaries>/<version>/summary.json`` of ``make audit``: this version, at
                     most ``max_age_days`` old, complete, no blocking finding (critical, high or
                     unknown, not ignored)
    staging tests    the JUnit XML of the staging run of this version: tests ran, 0 failures,
                     0 errors
    rollback tested  a run of this version in the rehearsals' state directory (what
                     ``golive history`` lists) that succeeded and completed ``rollback-drill``
    on-call notified the notice of this run's start (``run_started``) delivered to the on-call
                     notify target: journaled ``notification_sent``. Notifications are sent
                     beside the steps once the run has started, so this item is checked after
                     ``run_started``, by the preflight (the first step), which waits
                     ``within_s`` at most for the delivery

Each item is a ``ChecklistResult``: its name, ``ok``/``fail`` (``warn`` for a failure of an item
the plan marks ``required: false``), whether it is required, and the evidence seen. The files
are read here; the verdicts are plain functions of what was read and the instant given.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # nosec B405 - the staging run's own report, a local file
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.plan import (
    OncallNotifiedItem,
    Plan,
    RollbackTestedItem,
    SecurityScanItem,
    StagingTestsItem,
)

# golive.notify.delivery's event names (the notify package sits above the steps).
NOTIFICATION_SENDING = "notification_sending"
NOTIFICATION_SENT = "notification_sent"
NOTIFICATION_FAILED = "notification_failed"
NOTIFICATION_TARGET_OFF = "notification_target_off"
BLOCKING = ("critical", "high", "unknown")
DRILL_STEP = "rollback-drill"


@dataclass(frozen=True)
class ChecklistResult:
    name: str
    passed: bool
    required: bool
    evidence: str

    @property
    def status(self) -> str:
        if self.passed:
            return "ok"
        return "fail" if self.required else "warn"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}

    def __str__(self) -> str:
        mark = {"ok": "ok", "fail": "FAIL", "warn": "warn"}[self.status]
        return f"[{mark}] checklist: {self.name}: {self.evidence}"


def _scan_problem(
    summary: dict[str, Any], seen: str, age: timedelta, item: SecurityScanItem
) -> str | None:
    if age > timedelta(days=item.max_age_days):
        return f"{seen}; older than {item.max_age_days} days: run `make audit`"
    if int(summary.get("blocking", 0)):
        ids = [
            f"{f.get('id')} ({f.get('severity')})"
            for f in summary.get("findings", [])
            if f.get("severity") in BLOCKING and not f.get("ignored")
        ]
        return f"{seen}; blocking: {', '.join(ids[:5])}"
    if not summary.get("complete", True):
        missing = len(summary.get("dependencies_not_audited", []))
        return f"{seen}; incomplete: {missing} dependencies not audited"
    return None


def security_scan(
    item: SecurityScanItem, version: str, now: datetime, base: Path = Path()
) -> ChecklistResult:
    name = "Security scan"
    path = (base / item.summaries / version / "summary.json").resolve()

    def result(passed: bool, evidence: str) -> ChecklistResult:
        return ChecklistResult(name, passed, item.required, evidence)

    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        scanned = datetime.fromisoformat(str(summary["scanned_at"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return result(False, f"no scan summary for {version} at {path} ({exc}): run `make audit`")
    if summary.get("version") != version:
        return result(False, f"{path} is the scan of {summary.get('version')}, not {version}")
    age = now - scanned
    open_counts = summary.get("open", {})
    counts = ", ".join(f"{open_counts.get(s, 0)} {s}" for s in BLOCKING)
    seen = f"{path}: scanned {summary['scanned_at']} ({age.days} d ago), open {counts}"
    problem = _scan_problem(summary, seen, age, item)
    if problem is not None:
        return result(False, problem)
    return result(True, f"{seen}; {summary.get('ignored', 0)} ignored (reviewed)")


def junit_counts(path: Path) -> dict[str, int]:
    """tests, failures, errors, skipped: summed over every test suite of a JUnit XML file."""
    # The staging run's own report, a local file (nosec: bandit B314).
    root = ET.parse(path).getroot()  # noqa: S314  # nosec B314
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0) or 0)
    return totals


def staging_tests(item: StagingTestsItem, version: str, base: Path = Path()) -> ChecklistResult:
    name = "Staging tests"
    path = (base / item.junit.replace("{version}", version)).resolve()
    try:
        counts = junit_counts(path)
    except (OSError, ET.ParseError, ValueError) as exc:
        return ChecklistResult(
            name, False, item.required, f"no JUnit XML for {version} at {path} ({exc})"
        )
    seen = (
        f"{path}: {counts['tests']} tests, {counts['failures']} failures, "
        f"{counts['errors']} errors, {counts['skipped']} skipped"
    )
    passed = counts["tests"] > 0 and counts["failures"] == 0 and counts["errors"] == 0
    return ChecklistResult(
        name, passed, item.required, seen if passed or counts["tests"] else seen + "; no test ran"
    )


def _runs(state_dir: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    for journal_path in sorted(j.runs_dir(state_dir).glob("*/journal.jsonl")):
        found.append((journal_path.parent.name, j.Journal(journal_path).events()))
    return found


def rollback_tested(
    item: RollbackTestedItem, version: str, plan_state_dir: Path, current_run: str = ""
) -> ChecklistResult:
    name = "Rollback tested"
    state_dir = (item.state_dir or plan_state_dir).resolve()
    drilled = []
    for run_id, events in _runs(state_dir):
        if run_id == current_run:
            continue
        started = next((e for e in events if e["event"] == j.RUN_STARTED), {})
        state = j.RunState.fold(events)
        if (
            started.get("release") == version
            and state.outcome == "succeeded"
            and DRILL_STEP in state.completed
        ):
            drilled.append((run_id, state.finished))
    if not drilled:
        return ChecklistResult(
            name,
            False,
            item.required,
            f"no succeeded run of {version} with the rollback drill in {state_dir} "
            "(`golive history`): rehearse it (`make run`)",
        )
    run_id, finished = drilled[-1]
    return ChecklistResult(
        name,
        True,
        item.required,
        f"run {run_id} of {version} in {state_dir} succeeded at {finished} with the rollback "
        f"drill ({len(drilled)} such run(s))",
    )


def oncall_delivery(item: OncallNotifiedItem, events: list[dict[str, Any]]) -> tuple[bool, str]:
    """(settled, evidence-or-empty): whether the on-call notice of the run's start is decided."""
    target = item.target
    off = next(
        (e for e in events if e["event"] == NOTIFICATION_TARGET_OFF and e.get("target") == target),
        None,
    )
    if off is not None:
        return True, f"target {target} is off: {off.get('error')}"
    sending = next(
        (
            e
            for e in events
            if e["event"] == NOTIFICATION_SENDING
            and e.get("target") == target
            and e.get("kind") == "run_started"
        ),
        None,
    )
    if sending is None:
        return False, ""
    for e in events:
        if e.get("id") == sending.get("id") and e.get("target") == target:
            if e["event"] == NOTIFICATION_SENT:
                return True, ""
            if e["event"] == NOTIFICATION_FAILED:
                return True, f"delivery to {target} failed: {e.get('error')}"
    return False, ""


def oncall_notified(
    item: OncallNotifiedItem,
    read_events: Callable[[], list[dict[str, Any]]],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> ChecklistResult:
    name = "On-call notified"
    deadline = monotonic() + (item.within_s if item.required else 0)
    while True:
        events = read_events()
        settled, problem = oncall_delivery(item, events)
        if settled and not problem:
            sent = next(
                e
                for e in events
                if e["event"] == NOTIFICATION_SENT and e.get("target") == item.target
            )
            return ChecklistResult(
                name,
                True,
                item.required,
                f"the start of this run delivered to {item.target} at {sent.get('ts')} "
                f"(attempt {sent.get('attempts')})",
            )
        if settled or monotonic() >= deadline:
            return ChecklistResult(
                name,
                False,
                item.required,
                problem
                or f"the start of this run not delivered to {item.target} "
                f"within {item.within_s:g} s",
            )
        sleep(0.25)


def check(
    plan: Plan,
    *,
    now: datetime,
    read_events: Callable[[], list[dict[str, Any]]],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
    current_run: str = "",
) -> list[ChecklistResult]:
    """Every item of the plan's checklist (none without one)."""
    if plan.checklist is None:
        return []
    items = plan.checklist
    version = plan.release.version
    oncall = items.oncall_notified
    if oncall.target in {t.name for t in plan.notify.targets}:
        notified = oncall_notified(oncall, read_events, sleep, monotonic)
    else:
        notified = ChecklistResult(
            "On-call notified", False, oncall.required, f"no notify target named {oncall.target}"
        )
    return [
        security_scan(items.security_scan, version, now),
        staging_tests(items.staging_tests, version),
        rollback_tested(items.rollback_tested, version, plan.state_dir, current_run),
        notified,
    ]
