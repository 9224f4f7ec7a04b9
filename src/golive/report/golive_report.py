"""The go-live report's sections, built from a run's journal alone into one model.

Written at the end of every run — succeeded, rolled back or interrupted — as
``<run dir>/report.md`` and ``report.html`` (``golive.report.publish``): outcome, timeline of
steps with durations, every router switch, the issues encountered, performance against the
plan's SLOs, smoke results, zero-downtime figures (requests sent and failed during the run and
around each switch, by slot and engine, when a background load ran), the database steps, the
gate verdicts, the traffic stages, monitoring, validation, what was rolled back, the lessons
learned and the sign-off. ``build_model`` is pure; ``render`` prints the Markdown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.journal import Journal, RunState
from golive.plan import Plan
from golive.report import checklist, issues, model, notifications, verification_sections
from golive.report.closing import (
    hold_slo_lines,
    issue_lines,
    lesson_lines,
    mask_section,
    signoff_lines,
)
from golive.report.model import ReportModel
from golive.report.traffic_section import render_traffic
from golive.steps import build_steps
from golive.validation.register import Masker

OUTCOME_TEXT = {
    "succeeded": "**Succeeded** — the release serves all traffic",
    "rolled_back": "**Rolled back** — the service is back on blue",
    "rollback_failed": "**Rollback incomplete** — an undo failed; see below and act now",
    "interrupted": "**Interrupted** — resumable with `golive run PLAN --resume`",
    "running": "**In progress** (or the process died: resume with `--resume`)",
    "abandoned": "**Abandoned** — a new rehearsal replaced its environment",
}


def _ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _duration(start: str | None, end: str | None) -> str:
    a, b = _ts(start), _ts(end)
    if a is None or b is None:
        return "—"
    seconds = (b - a).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _clock(text: str | None) -> str:
    stamp = _ts(text)
    return stamp.strftime("%H:%M:%S") if stamp else "—"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _timeline(state: RunState, events: list[dict[str, Any]]) -> list[str]:
    lines = ["## Timeline", "", "| # | step | started | duration | outcome | summary |"]
    lines.append("|---|---|---|---|---|---|")
    summaries = {e["step"]: e.get("summary", "") for e in events if e["event"] == j.STEP_FINISHED}
    for index, name in enumerate(state.order, 1):
        record = state.steps[name]
        outcome = record.outcome + (" (undone)" if name in state.undone else "")
        if record.attempts > 1:
            outcome += f", {record.attempts} attempts"
        summary = summaries.get(name) or record.error or ""
        lines.append(
            f"| {index} | `{name}` | {_clock(record.started)} | "
            f"{_duration(record.started, record.finished)} | {outcome} | {_cell(summary)} |"
        )
    return [*lines, ""]


def _switches(state: RunState) -> list[str]:
    lines = ["## Router switches", ""]
    if not state.switches:
        return [*lines, "The router was not switched in this run.", ""]
    lines += [
        "| time | by step | from | to | runtime-API command | applied in |",
        "|---|---|---|---|---|---|",
    ]
    for e in state.switches:
        lines.append(
            f"| {_clock(e['ts'])} | `{e.get('step')}` | {e.get('before')} | **{e.get('to')}** | "
            f"`{_cell(e.get('command'))}` | {e.get('elapsed_ms')} ms |"
        )
    return [*lines, ""]


def _load(events: list[dict[str, Any]]) -> list[str]:
    lines = ["## Zero downtime", ""]
    found = [e for e in events if e["event"] == j.BACKGROUND_LOAD]
    if not found:
        return [
            *lines,
            "No background load ran in this run (it runs in `golive rehearse`); the gate "
            "figures below are green's own request metrics.",
            "",
        ]
    load = found[-1]["figures"]
    verdict = (
        "**0 failed requests**" if load["failed"] == 0 else f"**{load['failed']} FAILED requests**"
    )
    slow = load.get("slow_windows")
    if slow:
        verdict += (
            f", **{len(slow)} {load['window_s']:g} s windows with p99 over "
            f"{load['max_window_p99_ms']:g} ms**"
        )
    elif "windows" in load:
        verdict += (
            f", every {load['window_s']:g} s window within p99 {load['max_window_p99_ms']:g} ms"
        )
    lines += [
        f"Background load through the router: {load['requests']} requests at "
        f"{load['rate_per_s']:g} req/s over {load['elapsed_s']:.0f} s — {verdict}; "
        f"p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms.",
        "",
        "| answered by (slot/engine) | requests | failed |",
        "|---|---|---|",
    ]
    lines += [f"| {tag} | {v['requests']} | {v['failed']} |" for tag, v in load["by_tag"].items()]
    if load.get("switch_windows"):
        lines += [
            "",
            "Around each switch (from 1 s before to 5 s after the runtime-API command):",
            "",
            "| switch | to | requests | failed | answered by |",
            "|---|---|---|---|---|",
        ]
        for index, w in enumerate(load["switch_windows"], 1):
            lines.append(
                f"| {index} ({_clock(w['ts'])}) | {w['to']} | {w['requests']} | {w['failed']} | "
                f"{_cell(w['by_slot'])} |"
            )
    return [*lines, "", *_load_windows(load)]


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _load_windows(load: dict[str, Any]) -> list[str]:
    """The background load per window: latency as clients saw it, and the steps running then."""
    windows = load.get("windows")
    if not windows:
        return []
    limit = load["max_window_p99_ms"]
    lines = [
        f"Latency per {load['window_s']:g} s window, from each request's scheduled start "
        f"(limit: p99 ≤ {limit:g} ms in every window; windows over it are in bold):",
        "",
        "| window (UTC) | steps running | requests | failed | p50 ms | p99 ms | max ms "
        "| p99 ms by slot/engine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in windows:
        start = datetime.fromtimestamp(w["start"], UTC).strftime("%H:%M:%S")
        p99 = _ms(w["p99_ms"])
        if (w["p99_ms"] or 0) > limit:
            start, p99 = f"**{start}**", f"**{p99}**"
        tags = ", ".join(f"{tag} {_ms(f['p99_ms'])}" for tag, f in w["by_tag"].items())
        lines.append(
            f"| {start} | {_cell(', '.join(w['steps']) or '—')} | {w['requests']} | "
            f"{w['failed']} | {_ms(w['p50_ms'])} | {p99} | {_ms(w['max_ms'])} | {_cell(tags)} |"
        )
    return [*lines, ""]


def _smoke(state: RunState) -> list[str]:
    lines = ["## Smoke tests", ""]
    runs = [("green, directly", state.figures("smoke-green"))]
    runs.append(
        ("the service, through the router", state.figures("verify-switch").get("smoke", {}))
    )
    any_run = False
    for label, figures in runs:
        if not figures.get("checks"):
            continue
        any_run = True
        lines += [f"Against {label} ({figures.get('url')}):", "", "| check | result | detail |"]
        lines.append("|---|---|---|")
        lines += [
            f"| {c['name']} | {c['status']} | {_cell(c['detail'])} |" for c in figures["checks"]
        ]
        lines.append("")
    return lines if any_run else [*lines, "Not reached in this run.", ""]


def _performance(state: RunState, plan: Plan) -> list[str]:
    lines = ["## Performance of green (before the switch)", ""]
    f = state.figures("performance-green")
    if not f:
        failure = state.steps.get("performance-green")
        return [
            *lines,
            failure.error if failure and failure.error else "Not reached in this run.",
            "",
        ]
    slo = plan.performance.slo
    lines += [
        "| figure | measured | SLO |",
        "|---|---|---|",
        f"| requests | {f['requests']} at {f['rps']} req/s | {plan.performance.rate_per_s:g} req/s "
        f"for {plan.performance.duration_s:g} s |",
        f"| p50 | {f['p50_ms']} ms | — |",
        f"| p99 | {f['p99_ms']} ms | ≤ {slo.p99_ms:g} ms |",
        f"| error ratio | {f['error_ratio']:.4%} ({f['failed']} failed) "
        f"| ≤ {slo.max_error_ratio:.2%} |",
    ]
    return [*lines, ""]


def _gates(events: list[dict[str, Any]]) -> list[str]:
    evaluated = [e for e in events if e["event"] == j.GATE_EVALUATED]
    lines = ["## Gates", ""]
    if not evaluated:
        return [
            *lines,
            "The hold judged no gate in this run; the traffic stages' judgements are under "
            "Traffic migration.",
            "",
        ]
    by_step: dict[str, list[dict[str, Any]]] = {}
    for e in evaluated:
        by_step.setdefault(e["step"], []).append(e)
    lines += ["| during | evaluations | verdicts | last figures |", "|---|---|---|---|"]
    for step, items in by_step.items():
        verdicts: dict[str, int] = {}
        for e in items:
            verdicts[e["verdict"]] = verdicts.get(e["verdict"], 0) + 1
        last = items[-1]["figures"]
        shown = ", ".join(f"{k} {v}" for k, v in last.items() if k != "verdict")
        lines.append(f"| `{step}` | {len(items)} | {verdicts} | {_cell(shown)} |")
    breaches = [e for e in evaluated if e["verdict"] == "failed"]
    lines += ["", *(f"- breach: {'; '.join(e['reasons'])}" for e in breaches)]
    return [*lines, ""]


def _rollback(state: RunState, events: list[dict[str, Any]]) -> list[str]:
    lines = ["## Rollback", ""]
    undo = [e for e in events if e["event"] in (j.UNDO_FINISHED, j.UNDO_FAILED)]
    if not undo:
        return [*lines, "Nothing was rolled back.", ""]
    if state.failure:
        lines += [f"Failed step: `{state.failure}`", ""]
    for e in undo:
        if e["event"] == j.UNDO_FAILED:
            lines.append(f"- `{e['step']}`: **undo FAILED** — {e.get('error')}")
        elif e.get("what"):
            lines.append(f"- `{e['step']}`: {e['what']}")
    lines.append(
        "- the other steps had nothing to undo (the backup is kept; the schema is expand-only)"
    )
    return [*lines, ""]


def _header(state: RunState, plan: Plan, torn: bool) -> list[str]:
    backup = state.figures("backup")
    outcome = "interrupted" if torn and not state.final else state.outcome
    lines = [
        "## Outcome",
        "",
        f"- Run: `{state.run_id}` — plan `{state.plan}` ({plan.target.kind} target)",
        f"- Outcome: {OUTCOME_TEXT.get(outcome, outcome)}",
        f"- Started {state.started or '—'}, finished {state.finished or '—'} "
        f"({_duration(state.started, state.finished)})",
        f"- Release: {plan.release.image} (green {plan.slots.green.version}, "
        f"blue {plan.slots.blue.version})",
        f"- Router switches: {len(state.switches)} "
        f"({', '.join(str(s.get('to')) for s in state.switches) or 'none'})",
    ]
    if backup:
        lines.append(
            f"- Backup: `{backup['path']}` — {backup['bytes']} bytes, sha256 `{backup['sha256']}`"
        )
    if state.failure:
        lines.append(f"- Failure: {state.failure}")
    if torn:
        lines.append(
            "- **The run was interrupted**: the journal ends in a line torn mid-write (the "
            "process was killed); this report shows what was journaled before it."
        )
    elif not state.final and state.outcome in ("running", "interrupted"):
        lines.append("- **The run was interrupted** or is still running: it has no final outcome.")
    return [*lines, ""]


def build_model(
    events: list[dict[str, Any]], plan: Plan, *, source: str, torn: bool = False
) -> ReportModel:
    """Every section of the report, from the journal's events (and the files the run wrote)."""
    state = RunState.fold(events)
    drawn = model.charts(events, state, plan)
    expected = {step.name: step.expected_s(plan) for step in build_steps(plan)}
    found = issues.issues(events, state)
    gate_series = [c.data for c in drawn.gates if c.data is not None]
    sections = [
        model.section("outcome", _header(state, plan, torn)),
        model.section(
            "checklist",
            checklist.lines(events, plan, checklist.checked_items(events)),
        ),
        model.section("timeline", _timeline(state, events)),
        model.section("switches", _switches(state)),
        model.section("issues", issue_lines(found)),
        model.section("performance", _performance(state, plan) + hold_slo_lines(events, plan)),
        model.section("smoke", _smoke(state)),
        model.section("zero_downtime", _load(events), drawn.load),
        model.section("database", verification_sections.database(state), [drawn.timings]),
        model.section("gates", _gates(events), drawn.gates),
        model.section("traffic", render_traffic(events), [drawn.weight]),
        model.section("monitoring", verification_sections.monitoring(state)),
        model.section("validation", verification_sections.validation(state)),
        model.section("rollback", _rollback(state, events)),
        model.section("notifications", notifications.lines(events, plan)),
        model.section("lessons", lesson_lines(issues.lessons(state, expected, gate_series))),
        model.section("signoff", signoff_lines(plan)),
    ]
    masker = Masker.per_run()
    masked = [mask_section(part, plan, masker) for part in sections]
    return ReportModel(
        title=f"Go-live report — credit assessment {plan.release.version}",
        run_id=state.run_id,
        outcome="interrupted" if torn and not state.final else state.outcome,
        sections=masked,
        spans=drawn.spans,
        end_s=drawn.end_s,
        footer=f"_Rendered from `{source}`._",
    )


def render(journal: Journal, plan: Plan) -> str:
    report = build_model(journal.events(), plan, source=str(journal.path), torn=journal.torn_tail())
    return model.markdown(report)


def write_report(journal: Journal, plan: Plan) -> Path:
    path = journal.run_dir / "report.md"
    path.write_text(render(journal, plan), encoding="utf-8")
    return path
