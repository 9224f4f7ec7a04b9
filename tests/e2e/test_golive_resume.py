"""Interrupt and crash a real go-live, then resume it: SIGTERM mid-step undoes that step and
leaves the run resumable; `kill -9` during the hold leaves the router on green; `--resume`
finishes the go-live with exactly one switch to green in the journal."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from golive.plan import load
from golive.rehearsal import environment
from tests.conftest import VENV_BIN
from tests.integration.golive.plans import needs_haproxy, write_plan

pytestmark = [needs_haproxy, pytest.mark.slow]


def events(state: Path) -> list[dict]:
    runs = state / "runs"
    latest = runs / "latest"
    if not latest.exists():
        return []
    path = runs / latest.read_text().strip() / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_run(plan: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV_BIN / "golive"), "run", str(plan), "--plain", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_step(
    state: Path, step: str, process: subprocess.Popen[str], timeout_s: float = 90
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(e["event"] == "step_started" and e.get("step") == step for e in events(state)):
            return
        if process.poll() is not None:
            raise AssertionError(f"golive run ended early:\n{process.communicate()[0]}")
        time.sleep(0.1)
    raise AssertionError(f"step {step} never started")


def test_sigterm_then_kill_9_then_resume_switches_exactly_once(tmp_path):
    plan_path = write_plan(
        tmp_path,
        rollback_drill=False,
        # No traffic stages: `golive run` sends no load of its own, and stages need live traffic
        # to judge (they are tested with load in test_golive_traffic*.py).
        traffic={"stages": []},
        hold={"post_switch_s": 15, "keep_blue_s": 0},
        gates={"min_requests": 0},
        performance={"duration_s": 5},
    )
    plan = load(plan_path)
    state = tmp_path / "state"
    target = environment.up(plan)
    try:
        # 1. SIGTERM in the middle of a step: undone, resumable, router untouched.
        first = start_run(plan_path)
        wait_for_step(state, "performance-green", first)
        time.sleep(1)
        first.send_signal(signal.SIGTERM)
        out = first.communicate(timeout=60)[0]
        assert first.returncode == 130, out
        assert "--resume" in out
        assert target.router_state().active == "blue"
        assert [e for e in events(state) if e["event"] == "run_interrupted"]

        # 2. Resume, then kill -9 during the hold (after the switch).
        second = start_run(plan_path, "--resume")
        wait_for_step(state, "hold", second)
        time.sleep(2)
        second.kill()
        second.wait(10)
        assert target.router_state().active == "green"  # the switch stands; blue still up
        assert target.slot_status("blue").running
        status = subprocess.run(
            [str(VENV_BIN / "golive"), "status", "--plan", str(plan_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "running, at step hold" in status

        # 3. Resume again: it finishes without repeating the switch.
        third = start_run(plan_path, "--resume")
        out = third.communicate(timeout=120)[0]
        assert third.returncode == 0, out
        assert "skip switch-to-green" in out

        journal = events(state)
        switches = [e for e in journal if e["event"] == "router_switched"]
        assert [s["to"] for s in switches] == ["green"]
        assert sum(1 for e in journal if e["event"] == "run_resumed") == 2
        assert journal[-1]["event"] == "run_finished" and journal[-1]["outcome"] == "succeeded"
        assert target.router_state().active == "green"
        assert not target.slot_status("blue").running
    finally:
        environment.stop_everything(target)
