"""Notifications through the real Apprise to a real webhook receiver on 127.0.0.1, from the real
runner on the fake target: every event delivered once and in order; a receiver answering 500 for
a while (its first attempts, or its first seconds), or taking 10 s an answer, delays no step and
gets every message once; a golive killed with SIGKILL after a gate FAIL
and resumed sends the FAIL and the rollback once each; the status page webhook's JSON body."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import journal as j
from golive.errors import GateRolledBack
from golive.notify import delivery
from golive.plan import Plan, load
from golive.runner import Runner
from golive.targets.fake import FakeTarget
from tests.integration.golive.notify_run import FailingStage, Switch
from tests.integration.golive.webhook import Receiver

REPO = Path(__file__).resolve().parents[3]
TITLES = [
    "started",
    "gate FAIL in traffic-50 at 50%",
    "step traffic-50 failed",
    "Rollback of go-live 2.0.0 started",
    "Rollback of go-live 2.0.0 finished",
    "finished: rolled_back",
]


def write_plan(tmp_path: Path, notify: dict[str, Any]) -> Path:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data["notify"] = notify
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def plan_for(tmp_path: Path, receiver: Receiver, **settings: Any) -> Plan:
    notify = {"targets": [{"name": "oncall", "url": receiver.url()}], **settings}
    return load(write_plan(tmp_path, notify))


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def start(**behaviour: Any) -> Receiver:
        made.append(Receiver(**behaviour).start())
        return made[-1]

    yield start
    for one in made:
        one.stop()


def run_failing(plan: Plan) -> j.Journal:
    runner = Runner(plan, FakeTarget(), steps=[Switch(hang_on_undo=False), FailingStage()])
    with pytest.raises(GateRolledBack):
        runner.run(report=False)
    assert runner.journal is not None
    return runner.journal


def finished_at(journal: j.Journal) -> float:
    """When the run's last step was over (its run_finished record), on the wall clock."""
    end = next(e for e in journal.events() if e["event"] == j.RUN_FINISHED)
    return datetime.fromisoformat(end["ts"]).timestamp()


def in_order(titles: list[str]) -> None:
    assert len(titles) == len(TITLES), titles
    for title, expected in zip(titles, TITLES, strict=True):
        assert expected in title, (expected, titles)


def test_every_event_is_delivered_once_in_order_with_its_figures(tmp_path, receiver):
    hook = receiver()
    journal = run_failing(plan_for(tmp_path, hook))
    in_order(hook.titles())
    fail = hook.accepted()[1].body
    assert "new_ratio=0.05" in fail["message"] and "golive status --plan" in fail["message"]
    assert fail["type"] == "failure"
    sent = [e for e in journal.events() if e["event"] == delivery.SENT]
    assert len(sent) == 6 and {e["target"] for e in sent} == {"oncall"}
    assert str(hook.port) not in journal.path.read_text()  # the URL is never journaled


def test_a_receiver_answering_500_for_a_while_gets_everything_and_delays_no_step(
    tmp_path, receiver
):
    hook = receiver(fail_first=3)
    journal = run_failing(plan_for(tmp_path, hook, backoff_s=0.3, attempts=6, drain_s=30))
    in_order(hook.titles())
    first_accepted = hook.accepted()[0].received
    assert finished_at(journal) < first_accepted  # the steps were over before it took one
    ledger = delivery.Ledger.fold(journal.events())
    assert ledger.retries == 3 and not ledger.failed


def test_a_receiver_answering_500_for_its_first_seconds_gets_each_message_once_in_order(
    tmp_path, receiver
):
    # Down for the first 3 s of wall time, however many attempts that is: the waits (0.3 s
    # doubling to 1 s, 10 attempts) outlast it, and golive waits up to 30 s at the end.
    hook = receiver(fail_for_s=3)
    settings = {"backoff_s": 0.3, "max_backoff_s": 1, "attempts": 10, "drain_s": 30}
    journal = run_failing(plan_for(tmp_path, hook, **settings))
    refused = [d for d in hook.deliveries if d.status == 500]
    assert refused and max(d.received for d in refused) < hook.accepted()[0].received
    in_order(hook.titles())  # each accepted once, in the order of the journal
    ledger = delivery.Ledger.fold(journal.events())
    assert ledger.retries == len(refused) and not ledger.failed and not ledger.unconfirmed
    assert len(ledger.sent) == len(TITLES)


def test_a_receiver_taking_10_s_an_answer_delays_no_step(tmp_path, receiver):
    hook = receiver(delay_s=10)
    journal = run_failing(plan_for(tmp_path, hook, timeout_s=30, drain_s=0.5))
    delivered = hook.wait_for(1, timeout_s=30)[0]
    while delivered.answered is None:
        time.sleep(0.05)
    assert finished_at(journal) < delivered.answered


def events_of(state: Path) -> list[dict[str, Any]]:
    latest = state / "runs" / "latest"
    if not latest.exists():
        return []
    return j.Journal(state / "runs" / latest.read_text().strip() / "journal.jsonl").events()


def golive(plan: Path, phase: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.golive.notify_run", str(plan), phase],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_after_a_gate_fail_then_resumed_sends_the_fail_and_the_rollback_once(
    tmp_path, receiver
):
    hook = receiver(hold_matching="gate FAIL", hold_s=20)
    plan = write_plan(tmp_path, {"targets": [{"name": "oncall", "url": hook.url()}]})
    state = tmp_path / "state"
    first = golive(plan, "first")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            holding = any("gate FAIL" in json.dumps(d.body) for d in hook.deliveries)
            undoing = any(e["event"] == j.UNDO_STARTED for e in events_of(state))
            if holding and undoing:
                break
            assert first.poll() is None, first.communicate()[0]
            time.sleep(0.05)
        else:
            raise AssertionError("the FAIL never reached the receiver")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

    resumed = golive(plan, "resume")
    output, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 13, output  # the gate's rollback, finished by the resume

    titles = [str(d.body.get("title")) for d in hook.deliveries]
    assert sum("gate FAIL" in t for t in titles) == 1
    assert sum("Rollback of go-live 2.0.0 started" in t for t in titles) == 1
    assert sum("Rollback of go-live 2.0.0 finished" in t for t in titles) == 1
    events = events_of(state)
    assert [e["target"] for e in events if e["event"] == delivery.UNCONFIRMED] == ["oncall"]
    assert sum(e["event"] == j.STEP_STARTED and e["step"] == "traffic-50" for e in events) == 1


def test_the_status_page_webhook_gets_maintenance_degraded_then_operational(tmp_path, receiver):
    hook = receiver()
    page = {"name": "statuspage", "kind": "status_page", "url": hook.http_url()}
    plan = load(write_plan(tmp_path, {"targets": [page]}))
    journal = run_failing(plan)
    bodies = [d.body for d in hook.accepted()]
    assert [b["status"] for b in bodies] == ["degraded", "operational"]
    assert set(bodies[0]) == {"status", "release", "message", "run_id"}
    assert bodies[0]["release"] == "2.0.0" and bodies[0]["run_id"] == journal.run_dir.name
    assert "Rollback" in bodies[0]["message"]
