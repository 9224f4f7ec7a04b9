"""The journal: append-only, fsynced, torn lines ignored; state rebuilt from events; the lock."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from golive import journal as j
from golive.errors import GoLiveBusyError
from golive.journal import Control, Journal, RunLock, RunState


def test_state_is_rebuilt_from_the_events(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(j.RUN_STARTED, run_id="r1", plan="p.yaml", release="2.0.0")
    journal.append(j.STEP_STARTED, step="backup")
    journal.append(j.STEP_FINISHED, step="backup", figures={"bytes": 10})
    journal.append(j.STEP_STARTED, step="switch-to-green")
    journal.append(j.ROUTER_SWITCHED, step="switch-to-green", to="green")
    state = journal.state()
    assert state.run_id == "r1" and state.outcome == "running"
    assert state.completed == ["backup"]
    assert state.current == "switch-to-green"
    assert state.figures("backup") == {"bytes": 10}
    assert [s["to"] for s in state.switches] == ["green"]

    journal.append(j.UNDO_FINISHED, step="backup", what=None)
    journal.append(j.RUN_FINISHED, outcome="rolled_back")
    state = journal.state()
    assert state.completed == [] and state.final and state.undone == ["backup"]


def test_a_torn_last_line_is_ignored(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(j.RUN_STARTED, run_id="r1")
    journal.append(j.STEP_STARTED, step="hold")
    with journal.path.open("a", encoding="utf-8") as fh:
        fh.write('{"ts": "2026-01-01T00:00:00+00:00", "event": "step_fini')  # kill -9 mid-write
    assert [e["event"] for e in journal.events()] == [j.RUN_STARTED, j.STEP_STARTED]
    assert journal.state().current == "hold"


def test_a_step_started_twice_keeps_its_first_start(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(j.STEP_STARTED, step="hold")
    first = journal.state().steps["hold"].started
    time.sleep(0.01)
    journal.append(j.RUN_RESUMED)
    journal.append(j.STEP_STARTED, step="hold")
    record = journal.state().steps["hold"]
    assert record.started == first and record.attempts == 2


def test_journal_is_append_only_lines(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    for index in range(5):
        journal.append(j.NOTE, text=f"n{index}")
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 5 and all(line.startswith('{"ts": ') for line in lines)


def test_latest_run_and_run_ids(tmp_path):
    assert j.latest_run(tmp_path) is None
    a = j.open_run(tmp_path, j.new_run_id("2.0.0"))
    a.append(j.RUN_STARTED, run_id=a.run_dir.name)
    b = j.open_run(tmp_path, j.new_run_id("2.0.0"))
    b.append(j.RUN_STARTED, run_id=b.run_dir.name)
    assert a.run_dir != b.run_dir
    latest = j.latest_run(tmp_path)
    assert latest is not None and latest.path == b.path


def test_lock_is_exclusive_and_released(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(GoLiveBusyError, match="pid"):
            RunLock(tmp_path).acquire()
        assert RunLock(tmp_path).held_elsewhere()
    assert not RunLock(tmp_path).held_elsewhere()
    RunLock(tmp_path).acquire().release()


def test_lock_survives_a_crash_of_its_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from golive.journal import RunLock; "
            "RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(GoLiveBusyError, match=str(holder.pid)):
            RunLock(tmp_path).acquire()
        holder.kill()  # kill -9: no cleanup code runs
        holder.wait(10)
        lock = RunLock(tmp_path).acquire()  # the kernel released it
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_control_file_round_trip(tmp_path):
    control = Control(tmp_path)
    nothing = {"by": "an operator", "pause": False, "rollback": False, "approval": None}
    assert control.read() == nothing
    assert control.write(pause=True, by="alice")["pause"] is True
    assert control.write(rollback=True) == {
        "by": "alice",  # who asked last: journaled with the pause, resume or rollback it takes
        "pause": True,
        "rollback": True,
        "approval": None,
    }
    approval = {"run_id": "r", "step": "traffic-10", "by": "Chanda Mwale", "note": "", "at": "t"}
    assert control.write(approval=approval)["approval"] == approval
    assert control.write(pause=False)["approval"] == approval  # one request keeps the others
    control.reset()
    assert control.read() == nothing


def test_empty_state():
    state = RunState.fold([])
    assert state.outcome == "not_started" and state.current is None and not state.final
