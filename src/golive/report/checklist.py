"""The report's pre-deployment checklist: each item with the evidence golive journaled.

The maintenance window comes from the plan and the journal: the window itself, every database
step that ran outside it with the operator's reason (``outside_window``, given as
``golive run --outside-window --reason TEXT``), or the step refused because it was closed.
The items the preflight checked (``golive.checklist``) are its ``checklist_checked`` event:
journaled before the preflight passes or fails, so a refused run shows them too.
"""

from __future__ import annotations

from typing import Any

from golive import journal as j
from golive import schedule
from golive.plan import Plan

MARK = {"ok": "✅", "fail": "❌", "warn": "⚠️", "skip": "➖"}


def _window(events: list[dict[str, Any]], plan: Plan) -> list[str]:
    described = schedule.describe(plan.maintenance_window)
    overrides = [e for e in events if e["event"] == j.OUTSIDE_WINDOW]
    started = next((e for e in events if e["event"] == j.RUN_STARTED), {})
    refused = [e for e in events if e["event"] == j.WINDOW_REFUSED]
    if refused:
        last = refused[-1]
        return [
            f"| ❌ | Maintenance window | {described}; closed at {last.get('at')}: "
            f"{last.get('step')} refused to start, nothing was changed |"
        ]
    if overrides:
        steps = ", ".join(str(e.get("step")) for e in overrides)
        reason = started.get("outside_window_reason") or overrides[-1].get("reason", "")
        by = started.get("by")
        return [
            f"| ⚠️ | Maintenance window | {described}; run outside it ({steps}) with "
            f"`--outside-window`{f' by {by}' if by else ''}: {reason} |"
        ]
    return [f"| ✅ | Maintenance window | {described}; the database steps ran inside it |"]


def checked_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of the last ``checklist_checked`` (a resumed run may check them again)."""
    checked = [e for e in events if e["event"] == j.CHECKLIST_CHECKED]
    return list(checked[-1].get("items", [])) if checked else []


def lines(events: list[dict[str, Any]], plan: Plan, items: list[dict[str, Any]]) -> list[str]:
    """The ``## Pre-deployment checklist`` section; ``items``: the preflight's checked items."""
    out = ["## Pre-deployment checklist", "", "| | item | evidence |", "|---|---|---|"]
    for item in items:
        mark = MARK.get(str(item.get("status")), "?")
        required = "" if item.get("required", True) else " (not required)"
        evidence = str(item.get("evidence", "")).replace("|", "\\|")
        out.append(f"| {mark} | {item.get('name', '')}{required} | {evidence} |")
    out += _window(events, plan)
    return [*out, ""]
