"""The report's closing sections in Markdown — issues encountered, post-switch figures against
the SLOs, lessons learned, sign-off — and the masking of client ids in every section.

Client ids are masked as the validation register masks them (``Masker``, a keyed hash per
rendering): the smoke test's client is the one a report can name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from golive import journal as j
from golive.plan import Plan
from golive.report.issues import Issue
from golive.report.model import Section
from golive.validation.register import Masker


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def issue_lines(found: list[Issue]) -> list[str]:
    lines = ["## Issues encountered", ""]
    if not found:
        return [
            *lines,
            "None: no check failed, nothing was retried, paused, waited for approval or rolled "
            "back, no verdict was inconclusive and no alert fired.",
            "",
        ]
    lines += ["| time | kind | what happened | what was done |", "|---|---|---|---|"]
    lines += [f"| {i.clock} | {i.kind} | {_cell(i.what)} | {_cell(i.done)} |" for i in found]
    return [*lines, ""]


def hold_slo_lines(events: list[dict[str, Any]], plan: Plan) -> list[str]:
    """The worst post-switch figures the hold judged, against the plan's gates."""
    judged = [e.get("figures") or {} for e in events if e["event"] == j.GATE_EVALUATED]
    p99 = [f["green_p99_ms"] for f in judged if f.get("green_p99_ms") is not None]
    ratios = [
        f.get("green_errors", 0) / f["green_requests"] for f in judged if f.get("green_requests")
    ]
    if not p99 and not ratios:
        return []
    gates = plan.gates
    lines = [
        f"After the switch (the hold's {len(judged)} judgements, worst value):",
        "",
        "| figure | worst measured | SLO |",
        "|---|---|---|",
    ]
    if p99:
        lines.append(f"| green p99 | {max(p99):g} ms | ≤ {gates.max_p99_ms:g} ms |")
    if ratios:
        lines.append(f"| green error ratio | {max(ratios):.4%} | ≤ {gates.max_error_ratio:.2%} |")
    return [*lines, ""]


def lesson_lines(lessons: list[str]) -> list[str]:
    return ["## Lessons learned", "", *(f"- {lesson}" for lesson in lessons), ""]


def signoff_lines(plan: Plan) -> list[str]:
    lines = [
        "## Sign-off",
        "",
        "| role | name | decision (accept / accept with actions / reject) | signature | date |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {_cell(c.role)} | {_cell(c.name)} | | | |" for c in plan.escalation]
    return [*lines, ""]


def client_ids(plan: Plan) -> list[str]:
    return [plan.smoke.client_id] if plan.smoke.client_id else []


def mask_text(text: str, secrets_: list[str], masker: Masker) -> str:
    for raw in secrets_:
        text = text.replace(raw, masker.token("client", raw))
    return text


def mask_section(section: Section, plan: Plan, masker: Masker | None = None) -> Section:
    ids = client_ids(plan)
    if not ids:
        return section
    masker = masker or Masker.per_run()
    return replace(section, lines=[mask_text(line, ids, masker) for line in section.lines])
