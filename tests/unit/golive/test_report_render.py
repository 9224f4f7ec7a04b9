"""The go-live report renders from a journal alone: outcome, timeline, switches, zero-downtime
figures, smoke, performance, gates and what was rolled back."""

from __future__ import annotations

from pathlib import Path

from golive import journal as j
from golive.journal import Journal
from golive.plan import load
from golive.report.golive_report import render, write_report

REPO = Path(__file__).resolve().parents[3]


def sample_journal(tmp_path: Path, *, rolled_back: bool) -> Journal:
    journal = Journal(tmp_path / "run" / "journal.jsonl")
    journal.append(j.RUN_STARTED, run_id="r1", plan="deploy/golive/rehearsal.yaml", release="2.0.0")
    journal.append(j.STEP_STARTED, step="backup")
    journal.append(
        j.STEP_FINISHED,
        step="backup",
        summary="b.dump",
        figures={"path": "/b.dump", "bytes": 10, "sha256": "ab" * 32},
    )
    journal.append(j.STEP_STARTED, step="performance-green")
    journal.append(
        j.STEP_FINISHED,
        step="performance-green",
        summary="ok",
        figures={
            "requests": 3000,
            "failed": 0,
            "rps": 300.0,
            "p50_ms": 3.1,
            "p99_ms": 20.5,
            "error_ratio": 0.0,
        },
    )
    journal.append(j.STEP_STARTED, step="switch-to-green")
    journal.append(
        j.ROUTER_SWITCHED,
        step="switch-to-green",
        to="green",
        before="blue",
        command="set server be/green state ready; set server be/blue state drain",
        elapsed_ms=0.2,
    )
    journal.append(j.STEP_FINISHED, step="switch-to-green", summary="on green", figures={})
    journal.append(j.STEP_STARTED, step="hold")
    journal.append(
        j.GATE_EVALUATED,
        step="hold",
        verdict="failed" if rolled_back else "passed",
        figures={"green_requests": 500},
        reasons=["green: p99 900 ms > 500 ms"] if rolled_back else [],
    )
    if rolled_back:
        journal.append(
            j.STEP_FAILED, step="hold", outcome="failed", error="gate failed during hold"
        )
        journal.append(j.UNDO_FINISHED, step="hold", what=None)
        journal.append(j.UNDO_FINISHED, step="switch-to-green", what="router back to blue")
        journal.append(j.RUN_FINISHED, outcome="rolled_back")
    else:
        journal.append(j.STEP_FINISHED, step="hold", summary="held", figures={})
        journal.append(j.RUN_FINISHED, outcome="succeeded")
    journal.append(
        j.BACKGROUND_LOAD,
        figures={
            "requests": 12000,
            "failed": 0,
            "rate_per_s": 250,
            "elapsed_s": 48.0,
            "p50_ms": 3.0,
            "p99_ms": 17.0,
            "by_tag": {
                "blue/new": {"requests": 5000, "failed": 0},
                "green/new": {"requests": 7000, "failed": 0},
            },
            "switch_windows": [
                {
                    "ts": journal.events()[6]["ts"],
                    "to": "green",
                    "requests": 1500,
                    "failed": 0,
                    "by_slot": {"blue": 1000, "green": 500},
                }
            ],
        },
    )
    return journal


def test_report_of_a_successful_run(tmp_path):
    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    text = render(sample_journal(tmp_path, rolled_back=False), plan)
    assert "**Succeeded**" in text
    assert "| 1 | `backup` |" in text and "| 4 | `hold` |" in text
    assert "`set server be/green state ready; set server be/blue state drain`" in text
    assert "12000 requests at 250 req/s" in text and "**0 failed requests**" in text
    assert "| green/new | 7000 | 0 |" in text
    assert "| p99 | 20.5 ms | ≤ 250 ms |" in text
    assert "Nothing was rolled back." in text
    assert "sha256 `" + "ab" * 32 in text


def test_report_of_a_rollback_says_what_was_undone(tmp_path):
    plan = load(REPO / "deploy/golive/rehearsal.yaml")
    journal = sample_journal(tmp_path, rolled_back=True)
    path = write_report(journal, plan)
    text = path.read_text(encoding="utf-8")
    assert path == journal.run_dir / "report.md"
    assert "**Rolled back**" in text
    assert "Failed step: `hold: gate failed during hold`" in text
    assert "- `switch-to-green`: router back to blue" in text
    assert "breach: green: p99 900 ms > 500 ms" in text
