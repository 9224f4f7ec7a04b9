"""The live page's state, folded from the journal so far (pure): step, weight, dwell's end,
latest gate figures, the banner when a person is needed, the charts; the page fetches nothing
from anywhere else."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from golive.plan import load
from golive.report.live import PAGE, live_state

REPO = Path(__file__).resolve().parents[3]


def ev(event: str, second: int, **fields: Any) -> dict[str, Any]:
    return {"ts": f"2026-01-01T00:00:{second:02d}.000+00:00", "event": event, **fields}


STARTED = ev("run_started", 0, run_id="r1", release="2.0.0", steps=["traffic-10", "traffic-50"])
STAGE = [
    STARTED,
    ev("step_started", 1, step="traffic-10", title="Traffic stage: 10%"),
    ev("traffic_shifted", 2, step="traffic-10", weight=10, previous=0, deadline_s=60),
    ev(
        "stage_measured",
        4,
        step="traffic-10",
        weight=10,
        verdict="PASS",
        reasons=[],
        gates={"error_rate": {"verdict": "PASS", "figures": {"new_ratio": 0.001}}},
        counts={"new_requests": 120},
    ),
]


def test_a_stage_shows_its_weight_dwell_end_and_latest_figures() -> None:
    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    state = live_state(STAGE, plan)
    assert state["step"] == "traffic-10" and state["action"] == "run"
    assert state["weight"] == 10.0
    shifted = datetime.fromisoformat(STAGE[2]["ts"]).timestamp()
    assert state["dwell_ends"] == shifted + 25  # the rehearsal's dwell
    assert state["gates"]["verdict"] == "PASS"
    assert state["gates"]["figures"] == {"error_rate.new_ratio": 0.001, "new_requests": 120}
    assert state["banner"] is None
    assert "<svg" in state["charts"]


def test_a_banner_when_an_approval_waits_or_the_run_is_paused() -> None:
    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    waiting = [*STAGE, ev("approval_requested", 30, step="traffic-10", weight=10)]
    banner = live_state(waiting, plan, with_charts=False)["banner"]
    assert "Approval needed" in banner and "golive approve --plan" in banner
    paused = [*STAGE, ev("paused", 31, by="golive (inconclusive gates)")]
    assert "golive resume" in live_state(paused, plan, with_charts=False)["banner"]
    undone = [
        *STAGE,
        ev("step_failed", 40, step="traffic-10", outcome="failed", error="gate failed"),
        ev("undo_started", 41, step="traffic-10"),
        ev("undo_finished", 42, step="traffic-10", what="flag back to 0%"),
    ]
    assert live_state(undone, plan, with_charts=False)["weight"] == 0.0


def test_the_page_loads_nothing_from_elsewhere_and_changes_nothing() -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", PAGE)
    assert "<form" not in PAGE and "method" not in PAGE.lower().replace("method not", "")
    assert 'fetch("live.json"' in PAGE
