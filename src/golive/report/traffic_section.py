"""The go-live report's traffic section: the weight timeline and every stage's verdict.

Rendered from the journal alone (``traffic_shifted``, ``stage_measured``,
``traffic_rolled_back``, ``approval_requested``, ``approved`` and the stages' ``step_finished``
figures): per stage the weight asked for next to the share of the background load each engine
actually decided, the verdict, and per gate the figures behind it (samples, rates, p-value, the
judge's sentence); who approved each stage with ``approval: manual``, when, and why; on a
rollback, which gate failed, with what figures, and how fast the flag was back at 0%.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

TRAFFIC_SHIFTED = "traffic_shifted"
STAGE_MEASURED = "stage_measured"
TRAFFIC_ROLLED_BACK = "traffic_rolled_back"
APPROVAL_REQUESTED = "approval_requested"
APPROVED = "approved"


def _clock(text: str | None) -> str:
    return datetime.fromisoformat(text).strftime("%H:%M:%S") if text else "—"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * float(value):.{digits}f}%"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def gate_figures(metric: str, figures: dict[str, Any]) -> str:
    """The figures a reader needs to check one gate's verdict."""
    f = figures
    if metric == "error_rate":
        return (
            f"new {f.get('new_errors')}/{f.get('new_total')} ({_pct(f.get('new_ratio'), 2)}) vs "
            f"legacy {f.get('base_errors')}/{f.get('base_total')} "
            f"({_pct(f.get('base_ratio'), 2)}); p {_num(f.get('p_value'))}"
        )
    if metric == "latency":
        return (
            f"new n {_num(f.get('new_count'))}, median {_ms(f.get('new_median_s'))}, p99 "
            f"{_ms(f.get('new_p99_s'))} vs legacy n {_num(f.get('base_count'))}, median "
            f"{_ms(f.get('base_median_s'))}, p99 {_ms(f.get('base_p99_s'))}; median ratio "
            f"{_num(f.get('median_ratio'), 3)}; p {_num(f.get('p_value'))}"
        )
    if metric == "decision_mismatch":
        return (
            f"{f.get('mismatches')}/{f.get('total')} mismatched ({_pct(f.get('ratio'))}), "
            f"tolerance {_pct(f.get('tolerance'))}"
        )
    if "samples" in f:
        return f"{_pct(f.get('value'), 2)} of {f.get('samples')} calls failed"
    return ", ".join(f"{k} {_num(v)}" for k, v in f.items())


def _ms(seconds: Any) -> str:
    return "—" if seconds is None else f"{float(seconds) * 1000:.1f} ms"


def _timeline(events: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Weight timeline (every change read back from every serving instance):",
        "",
        "| time | by | weight | verified on | in |",
        "|---|---|---|---|---|",
    ]
    for e in events:
        if e["event"] == TRAFFIC_SHIFTED:
            lines.append(
                f"| {_clock(e['ts'])} | `{e['step']}` | {e['previous']}% → **{e['weight']}%** | "
                f"{len(e.get('instances') or {})} instance(s) | {e.get('verified_in_s')} s |"
            )
        elif e["event"] == TRAFFIC_ROLLED_BACK:
            where = f"{len(e.get('instances') or {})} instance(s)" if e.get("verified") else "—"
            lines.append(
                f"| {_clock(e['ts'])} | gate of `{e['step']}` | {e['from']}% → **{e['to']}%** "
                f"(rollback) | {where} | {e.get('after_fail_s')} s after the verdict |"
            )
        elif (
            e["event"] == "undo_finished"
            and str(e.get("step", "")).startswith("traffic-")
            and e.get("what")
        ):
            lines.append(f"| {_clock(e['ts'])} | undo `{e['step']}` | {e['what']} | | |")
    return [*lines, ""]


def _stages(events: list[dict[str, Any]]) -> list[str]:
    finished = {
        e["step"]: e.get("figures", {})
        for e in events
        if e["event"] == "step_finished" and str(e.get("step", "")).startswith("traffic-")
    }
    measured: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["event"] == STAGE_MEASURED:
            measured.setdefault(e["step"], []).append(e)
    lines = [
        "| stage | weight asked | decided by the new engine (load) | legacy (load) | "
        "judgements | verdict | dwelt |",
        "|---|---|---|---|---|---|---|",
    ]
    for step, looks in measured.items():
        figures = finished.get(step, {})
        engines = figures.get("engines") or {}
        verdict = figures.get("verdict") or looks[-1]["verdict"]
        if step not in finished:
            verdict = f"{looks[-1]['verdict']} (stage did not finish)"
        lines.append(
            f"| `{step}` | {looks[-1]['weight']}% | "
            f"{engines.get('new', '—')} ({_pct(engines.get('share_new'))}) | "
            f"{engines.get('legacy', '—')} | {len(looks)} | **{verdict}** | "
            f"{figures.get('dwelt_s', looks[-1].get('elapsed_s'))} s |"
        )
    lines.append("")
    for step, looks in measured.items():
        last = looks[-1]
        lines += [
            f"`{step}` — last judgement ({last['verdict']}, look {last['look']} at "
            f"{last['elapsed_s']} s):",
            "",
            "| gate | verdict | figures | reason |",
            "|---|---|---|---|",
        ]
        for metric, g in (last.get("gates") or {}).items():
            lines.append(
                f"| {metric} | {g['verdict']} | {_cell(gate_figures(metric, g['figures']))} | "
                f"{_cell(g['reason'])} |"
            )
        lines.append("")
    return lines


def _approvals(events: list[dict[str, Any]]) -> list[str]:
    """Each request for a person's approval, and who gave it (or that none came)."""
    asked: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    for e in events:
        if e["event"] == APPROVAL_REQUESTED:
            asked.setdefault(e["step"], e)
        elif e["event"] == APPROVED:
            request = asked.pop(e["step"], None)
            since = f", asked at {_clock(request['ts'])}" if request else ""
            note = f" — “{_cell(e['note'])}”" if e.get("note") else ""
            lines.append(
                f"- `{e['step']}` ({e.get('weight')}%): **approved by {_cell(e.get('by'))}** at "
                f"{_clock(e.get('at'))}{since}, held {e.get('waited_s')} s for it{note}"
            )
    for step, request in asked.items():
        lines.append(
            f"- `{step}` ({request.get('weight')}%): approval asked at {_clock(request['ts'])}, "
            "**not given** in this run"
        )
    if not lines:
        return []
    return ["Approvals (stages with `approval: manual` wait for a person):", "", *lines, ""]


def render_traffic(events: list[dict[str, Any]]) -> list[str]:
    lines = ["## Traffic migration (legacy → new engine)", ""]
    if not any(e["event"] == TRAFFIC_SHIFTED for e in events):
        return [*lines, "No traffic stage ran in this run.", ""]
    lines += _timeline(events)
    lines += _stages(events)
    lines += _approvals(events)
    for e in events:
        if e["event"] == TRAFFIC_ROLLED_BACK:
            state = (
                f"flag back at 0%, verified {e.get('after_fail_s')} s after the verdict"
                if e.get("verified")
                else "the flag could NOT be verified at 0% by the stage: see the rollback below"
            )
            lines += [
                f"**Rolled back during `{e['step']}`** ({e['why']}): {state}.",
                "",
                *(f"- {_cell(reason)}" for reason in e.get("reasons") or []),
                "",
            ]
    return lines
