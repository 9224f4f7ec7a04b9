"""Every go-live of a state directory, one row each, folded from the runs' journals (pure).

A row says when the run started, which version, its outcome, how long it took, how many times
the router switched, the traffic stages it reached, each rollback with its cause, and the time
from the fault (the first FAIL: a gate's verdict or a failed step) to the rollback (the flag back
at 0%, or the run's end once everything was undone).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from golive import journal as j
from golive.journal import RunState
from golive.report.series import epoch

FAIL_VERDICTS = ("fail", "failed")


@dataclass(frozen=True)
class HistoryRow:
    run_id: str
    started: str | None
    version: str | None
    outcome: str
    duration_s: float | None
    switches: int
    stages: list[int]
    rollbacks: list[str]
    fault_to_rollback_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first_fault(events: list[dict[str, Any]]) -> float | None:
    for e in events:
        failed_verdict = e["event"] in ("stage_measured", j.GATE_EVALUATED) and (
            str(e.get("verdict", "")).lower() in FAIL_VERDICTS
        )
        failed_step = e["event"] == j.STEP_FAILED and e.get("outcome", "failed") == "failed"
        if failed_verdict or failed_step:
            return epoch(e["ts"])
    return None


def _rollbacks(events: list[dict[str, Any]]) -> tuple[list[str], float | None]:
    causes: list[str] = []
    back_at: float | None = None
    for e in events:
        if e["event"] == "traffic_rolled_back":
            causes.append(f"{e.get('step')}: {'; '.join(e.get('reasons') or []) or e.get('why')}")
            back_at = back_at or epoch(e["ts"])
        elif e["event"] == j.RUN_FINISHED and e.get("outcome") in (
            "rolled_back",
            "rollback_failed",
        ):
            causes.append(f"{e.get('failed_step') or 'operator'}: {e.get('reason')}")
            back_at = back_at or epoch(e["ts"])
    return list(dict.fromkeys(causes)), back_at


def row(run_id: str, events: list[dict[str, Any]], *, torn: bool = False) -> HistoryRow:
    state = RunState.fold(events)
    last = state.finished or (events[-1]["ts"] if events else None)
    start, end = epoch(state.started), epoch(last)
    fault = _first_fault(events)
    causes, back_at = _rollbacks(events)
    # Each stage once, in the order reached (a resumed run verifies its stage's weight again).
    stages = list(
        dict.fromkeys(int(e["weight"]) for e in events if e["event"] == "traffic_shifted")
    )
    outcome = "interrupted" if torn and not state.final else state.outcome
    return HistoryRow(
        run_id=run_id,  # the directory: what `golive report RUN` takes
        started=state.started,
        version=state.release,
        outcome=outcome,
        duration_s=round(end - start, 1) if start is not None and end is not None else None,
        switches=len(state.switches),
        stages=stages,
        rollbacks=causes,
        fault_to_rollback_s=(
            round(back_at - fault, 1) if fault is not None and back_at is not None else None
        ),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _when(text: str | None) -> str:
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M") if text else "—"


def table(rows: list[HistoryRow]) -> str:
    """A plain-text table, oldest first; rollbacks on the lines under their run."""
    if not rows:
        return "no go-live has run from this state directory"
    head = (
        "when (UTC)",
        "run",
        "version",
        "outcome",
        "duration",
        "switches",
        "stages",
        "fault→back",
    )
    lines = [
        (
            _when(r.started),
            r.run_id,
            r.version or "—",
            r.outcome,
            _duration(r.duration_s),
            str(r.switches),
            "→".join(str(w) for w in r.stages) or "—",
            "—" if r.fault_to_rollback_s is None else f"{r.fault_to_rollback_s:g} s",
        )
        for r in rows
    ]
    widths = [max(len(col[i]) for col in [head, *lines]) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(head, widths, strict=True)).rstrip()]
    for r, cells in zip(rows, lines, strict=True):
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        out += [f"    rolled back: {cause}" for cause in r.rollbacks]
    return "\n".join(out)
