"""Go-live runs as their journals, written with the real ``golive.journal`` writer.

Each event is given its own time (``ts``) so the report's charts have a time axis: a run that
starts at ``start`` (a fixed instant, never the clock) and takes a few minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from golive import journal as j
from golive.journal import Journal

RUN_ID = "20261205T200000Z-2.0.0-ab12"


def _start() -> datetime:
    return datetime(2026, 12, 4, 20, 0, tzinfo=UTC)  # a Friday


class Writer:
    def __init__(self, path: Path, start: datetime | None = None) -> None:
        self.journal = Journal(path)
        self.start = start or _start()
        self.at_s = 0.0

    def ts(self, at_s: float | None = None) -> str:
        if at_s is not None:
            self.at_s = at_s
        return (self.start + timedelta(seconds=self.at_s)).isoformat(timespec="milliseconds")

    def add(self, event: str, at_s: float | None = None, **fields: Any) -> None:
        self.journal.append(event, ts=self.ts(at_s), **fields)

    def step(self, name: str, start_s: float, end_s: float, **figures: Any) -> None:
        self.add(j.STEP_STARTED, start_s, step=name, title=name)
        self.add(j.STEP_FINISHED, end_s, step=name, summary=f"{name} done", figures=figures)


def _gates(look: int, failing: bool) -> dict[str, Any]:
    difference = 0.2 * look if not failing else 4.5
    return {
        "error_rate": {
            "verdict": "FAIL" if failing else "PASS",
            "reason": "new path error ratio",
            "figures": {
                "new_errors": 2,
                "new_total": 400,
                "base_errors": 1,
                "base_total": 900,
                "difference_pp": difference,
                "tolerance_pp": 1.0,
                "p_value": 0.2,
            },
        },
        "latency": {
            "verdict": "PASS",
            "reason": "not significantly slower",
            "figures": {"median_ratio": 1.05, "tolerance_ratio": 1.25, "new_count": 400},
        },
    }


def _stage(w: Writer, name: str, weight: int, previous: int, t: float, *, fail: bool) -> float:
    w.add(j.STEP_STARTED, t, step=name, title=name)
    w.add("traffic_shifted", t + 1, step=name, weight=weight, previous=previous, instances={})
    verdicts = ["INCONCLUSIVE", "PASS", "FAIL" if fail else "PASS"]
    for look, verdict in enumerate(verdicts, 1):
        w.add(
            "stage_measured",
            t + 1 + 10 * look,
            step=name,
            weight=weight,
            look=look,
            elapsed_s=10.0 * look,
            verdict=verdict,
            reasons=["only 40 new-path requests so far"] if verdict == "INCONCLUSIVE" else [],
            gates=_gates(look, failing=verdict == "FAIL"),
            counts={},
        )
    end = t + 35
    if fail:
        w.add(
            "traffic_rolled_back",
            end,
            step=name,
            why="gate failed",
            reasons=["error_rate: new path error ratio 4.5 pp higher"],
            instances={},
            verified=True,
            after_fail_s=0.4,
            **{"from": weight, "to": 0},
        )
        w.add(j.STEP_FAILED, end, step=name, outcome="failed", error="gate failed: error_rate")
    else:
        figures = {"verdict": "PASS", "dwelt_s": 30.0, "engines": {"new": 300, "legacy": 700}}
        w.add(j.STEP_FINISHED, end, step=name, summary="passed", figures=figures)
    return end + 1


def load_figures(start: datetime, seconds: float) -> dict[str, Any]:
    windows = []
    for index in range(int(seconds // 10)):
        slot = "blue" if index < 6 else "green"
        windows.append(
            {
                "start": start.timestamp() + 10 * index,
                "width_s": 10.0,
                "requests": 1500,
                "failed": 0,
                "p50_ms": 4.0,
                "p99_ms": 30.0 + index,
                "max_ms": 60.0,
                "steps": [],
                "by_tag": {
                    f"{slot}/legacy": {
                        "requests": 1000,
                        "failed": 0,
                        "p50_ms": 4.0,
                        "p99_ms": 28.0,
                    },
                    f"{slot}/new": {"requests": 500, "failed": 0, "p50_ms": 3.5, "p99_ms": 31.0},
                },
            }
        )
    return {
        "requests": 1500 * len(windows),
        "failed": 0,
        "rate_per_s": 150,
        "elapsed_s": seconds,
        "p50_ms": 4.0,
        "p99_ms": 35.0,
        "by_tag": {"blue/legacy": {"requests": 9000, "failed": 0}},
        "switch_windows": [],
        "window_s": 10.0,
        "max_window_p99_ms": 1000.0,
        "windows": windows,
        "slow_windows": [],
    }


def write_run(
    run_dir: Path, *, rolled_back: bool = False, load: bool = True, stages: bool = True
) -> Journal:
    """A go-live from preflight to the hold (or to a failed 50% stage, rolled back)."""
    w = Writer(run_dir / "journal.jsonl")
    run_id = run_dir.name
    w.add(j.RUN_STARTED, 0, run_id=run_id, plan="deploy/golive/rehearsal.yaml", release="2.0.0")
    w.step("preflight", 0, 2)
    w.step("backup", 2, 14, path="/b/x.dump", bytes=2048, sha256="ab" * 32, duration_s=11.0)
    applied = [{"revision": "0007", "phase": "expand", "duration_ms": 3400}]
    w.step("migrate", 14, 20, applied=applied, revision_before="0006", revision_after="0007")
    w.step("deploy-green", 20, 40)
    w.add(j.STEP_STARTED, 40, step="switch-to-green")
    w.add(j.ROUTER_SWITCHED, 41, step="switch-to-green", to="green", before="blue", command="set")
    w.add(j.STEP_FINISHED, 42, step="switch-to-green", summary="on green", figures={})
    t = 60.0
    if stages:
        t = _stage(w, "traffic-10", 10, 0, t, fail=False)
        t = _stage(w, "traffic-50", 50, 10, t, fail=rolled_back)
    if rolled_back:
        w.add(j.UNDO_STARTED, t, step="traffic-50")
        w.add(j.UNDO_FINISHED, t + 1, step="traffic-50", what="flag back to 10%")
        w.add(j.UNDO_FINISHED, t + 2, step="switch-to-green", what="router back to blue")
        w.add(
            j.RUN_FINISHED,
            t + 3,
            outcome="rolled_back",
            failed_step="traffic-50",
            reason="gate failed: error_rate",
            undone=["traffic-50", "switch-to-green"],
        )
    else:
        if stages:
            t = _stage(w, "traffic-100", 100, 50, t, fail=False)
        w.step("hold", t, t + 30)
        w.add(j.RUN_FINISHED, t + 31, outcome="succeeded")
    if load:
        w.add(j.BACKGROUND_LOAD, w.at_s + 1, figures=load_figures(w.start, w.at_s), series="x")
    return w.journal
