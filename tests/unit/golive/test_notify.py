"""Notifications: the notices folded from a journal (pure), the at-most-once bookkeeping across a
resume, the backoff schedule, and the plan's notify section."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import journal as j
from golive.errors import PlanError
from golive.notify import delivery
from golive.notify.delivery import Dispatcher, Ledger, backoff_schedule, resolve_url
from golive.notify.messages import Links, Notice, notices, record_id
from golive.plan import NotifyTarget, Plan, parse

REPO = Path(__file__).resolve().parents[3]
LINKS = Links(plan="deploy/golive/production.yaml", live="http://127.0.0.1:9464/live")


def make_plan(tmp_path: Path, notify: dict[str, Any] | None = None) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    if notify is not None:
        data["notify"] = notify
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


def ev(event: str, second: int, **fields: Any) -> dict[str, Any]:
    return {"ts": f"2026-01-01T00:00:{second:02d}.000+00:00", "event": event, **fields}


STARTED = ev("run_started", 0, run_id="r1", release="2.0.0", target="local", steps=["a", "b"])
MEASURED_FAIL = ev(
    "stage_measured",
    5,
    step="traffic-50",
    weight=50,
    verdict="FAIL",
    reasons=["error rate: new 5% vs legacy 0.1%"],
    gates={
        "error_rate": {
            "verdict": "FAIL",
            "reason": "new path worse",
            "figures": {"new_ratio": 0.05, "legacy_ratio": 0.001},
        }
    },
    counts={"new_requests": 400},
)
STEP_FAILED = ev("step_failed", 6, step="traffic-50", outcome="failed", error="gate failed")
FINISHED = ev(
    "run_finished",
    9,
    outcome="rolled_back",
    reason="traffic-50: gate failed",
    undone=["traffic-50: flag back to 10%", "switch-to-green: router back to blue"],
)


def test_a_gate_fail_says_what_happened_the_figures_what_golive_does_and_what_to_run() -> None:
    found = notices([STARTED, MEASURED_FAIL, STEP_FAILED, FINISHED], LINKS)
    assert [n.kind for n in found] == [
        "run_started",
        "gate_failed",
        "step_failed",
        "rollback_started",
        "rollback_finished",
        "run_finished",
    ]
    fail = found[1]
    assert "gate FAIL in traffic-50 at 50%" in fail.title
    assert "new_ratio=0.05" in fail.body and "legacy_ratio=0.001" in fail.body
    assert "new_requests=400" in fail.body
    assert "rolls the go-live back" in fail.body
    assert "golive status --plan deploy/golive/production.yaml" in fail.body
    assert "http://127.0.0.1:9464/live" in fail.body
    assert fail.severity == "failure"
    rollback = found[3]
    assert "traffic-50 failed: gate failed" in rollback.body
    assert rollback.status == "degraded"
    finished = found[4]
    assert "flag back to 10%" in finished.body and finished.status == "operational"
    assert found[5].status is None  # a rolled-back run's end: the rollback set the status


def test_approval_inconclusive_and_operator_actions_name_the_next_command_and_who() -> None:
    events = [
        STARTED,
        ev("step_started", 1, step="migrate"),
        ev(
            "gate_evaluated",
            2,
            step="hold",
            verdict="inconclusive",
            figures={"requests": 3},
            thresholds={"min_requests": 100},
        ),
        ev("note", 3, step="hold", text="inconclusive: paused for a human"),
        ev("paused", 3, by="golive (inconclusive gates)"),
        ev("resumed", 4, by="alice"),
        ev("approval_requested", 5, step="traffic-10", weight=10),
        ev("approved", 6, step="traffic-10", weight=10, by="bob", note="ok", waited_s=12.0),
        ev("run_finished", 9, outcome="succeeded"),
    ]
    found = {n.kind + n.title: n for n in notices(events, LINKS)}
    kinds = [n.kind for n in notices(events, LINKS)]
    assert kinds == [
        "run_started",
        "maintenance_started",
        "inconclusive",
        "operator_action",
        "operator_action",
        "approval_needed",
        "operator_action",
        "run_finished",
    ]
    inconclusive = next(n for n in found.values() if n.kind == "inconclusive")
    assert "requests: 3" in inconclusive.body and "threshold min_requests: 100" in inconclusive.body
    assert "golive resume --plan" in inconclusive.body
    approval = next(n for n in found.values() if n.kind == "approval_needed")
    assert "golive approve --plan deploy/golive/production.yaml --by NAME" in approval.body
    assert any("resumed by alice" in n.title for n in found.values())
    assert any("approved by bob" in n.title for n in found.values())
    statuses = [n.status for n in notices(events, LINKS) if n.status]
    assert statuses == ["maintenance", "operational"]


def test_ids_are_the_same_for_a_record_as_appended_and_as_read_back(tmp_path: Path) -> None:
    journal = j.Journal(tmp_path / "journal.jsonl")
    appended = journal.append("note", text="x", path=tmp_path, figure=0.1 + 0.2)
    assert record_id(appended, "k") == record_id(journal.events()[0], "k")
    again = notices([STARTED, MEASURED_FAIL], LINKS)
    assert [n.id for n in again] == [n.id for n in notices([STARTED, MEASURED_FAIL], LINKS)]


def test_the_backoff_doubles_and_is_capped() -> None:
    assert backoff_schedule(6, 1.0, 10.0) == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff_schedule(1, 1.0, 10.0) == []


class RecordingChannel:
    """An in-tree channel: records what it was sent."""

    def __init__(self, name: str, fail_first: int = 0) -> None:
        self.name = name
        self.sent: list[Notice] = []
        self.fail_first = fail_first
        self.calls = 0

    def wants(self, notice: Notice) -> bool:
        return True

    def send(self, notice: Notice) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise delivery.DeliveryError(f"notify target {self.name}: answered 500")
        self.sent.append(notice)


def _settled(journal: j.Journal, dispatcher: Dispatcher) -> None:
    dispatcher.stop(drain_s=10)


def test_a_resume_never_sends_again_what_a_dead_golive_may_have_sent(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, {"targets": [{"name": "chat", "url": "json://127.0.0.1:9/"}]})
    journal = j.Journal(tmp_path / "run" / "journal.jsonl")
    for record in (STARTED, MEASURED_FAIL, STEP_FAILED):
        journal.append(record["event"], **{k: v for k, v in record.items() if k != "event"})
    events = journal.events()
    first, fail = notices(events, LINKS)[:2]
    # The dead golive: it sent run_started, and was sending the FAIL when it was killed.
    journal.append(delivery.SENDING, id=first.id, target="chat", kind=first.kind)
    journal.append(delivery.SENT, id=first.id, target="chat", attempts=1)
    journal.append(delivery.SENDING, id=fail.id, target="chat", kind=fail.kind)

    channel = RecordingChannel("chat")
    dispatcher = Dispatcher(plan, journal, LINKS, [channel]).start()
    journal.append("run_finished", outcome="rolled_back", reason="r", undone=[])
    _settled(journal, dispatcher)

    sent = [n.kind for n in channel.sent]
    assert sent == ["step_failed", "rollback_started", "rollback_finished", "run_finished"]
    ledger = Ledger.fold(journal.events())
    assert ledger.unconfirmed == {(fail.id, "chat")}
    assert len(ledger.sent) == 5  # run_started before, four now

    # A second resume: nothing more is sent, the unconfirmed one is not journaled again.
    again = RecordingChannel("chat")
    Dispatcher(plan, journal, LINKS, [again]).start().stop(drain_s=10)
    assert again.sent == []
    assert sum(e["event"] == delivery.UNCONFIRMED for e in journal.events()) == 1


def test_failures_are_retried_counted_and_never_raise(tmp_path: Path) -> None:
    plan = make_plan(
        tmp_path,
        {
            "targets": [{"name": "chat", "url": "json://127.0.0.1:9/"}],
            "attempts": 3,
            "backoff_s": 0.01,
        },
    )
    journal = j.Journal(tmp_path / "run" / "journal.jsonl")
    flaky, down = RecordingChannel("flaky", fail_first=2), RecordingChannel("down", fail_first=99)
    dispatcher = Dispatcher(plan, journal, LINKS, [flaky, down]).start()
    journal.append("run_started", run_id="r1", release="2.0.0", steps=[])
    dispatcher.stop(drain_s=10)
    assert [n.kind for n in flaky.sent] == ["run_started"]
    assert down.sent == [] and down.calls == 3
    ledger = Ledger.fold(journal.events())
    assert ledger.retries == 2 + 2
    failed = next(e for e in journal.events() if e["event"] == delivery.FAILED)
    assert failed["target"] == "down" and failed["attempts"] == 3
    assert "answered 500" in failed["error"]


def test_the_listener_never_waits_for_a_target(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, {"targets": [{"name": "slow", "url": "json://127.0.0.1:9/"}]})
    journal = j.Journal(tmp_path / "run" / "journal.jsonl")
    release = threading.Event()

    class Stuck(RecordingChannel):
        def send(self, notice: Notice) -> None:
            release.wait(30)
            super().send(notice)

    stuck = Stuck("slow")
    dispatcher = Dispatcher(plan, journal, LINKS, [stuck]).start()
    for second in range(5):
        journal.append("run_started", run_id=f"r{second}", release="2", steps=[])
    assert stuck.sent == []  # every append returned while the target held the first one
    release.set()
    dispatcher.stop(drain_s=10)
    assert len(stuck.sent) == 5


def test_a_url_with_a_token_comes_from_a_secret_never_the_plan(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="url_env"):
        make_plan(tmp_path, {"targets": [{"name": "m", "url": "mailto://user:pw@example.com"}]})
    with pytest.raises(PlanError, match="exactly one of url, url_env"):
        make_plan(tmp_path, {"targets": [{"name": "m"}]})
    target = NotifyTarget(name="slack", url_env="SLACK_URL")
    assert resolve_url(target, {"SLACK_URL": "slack://a/b/c\n"}) == "slack://a/b/c"
    secret = tmp_path / "slack-url"
    secret.write_text("slack://x/y/z\n", encoding="utf-8")
    assert resolve_url(target, {"SLACK_URL_FILE": str(secret)}) == "slack://x/y/z"
    with pytest.raises(delivery.DeliveryError) as caught:
        resolve_url(target, {})
    assert "SLACK_URL" in str(caught.value)


def test_the_report_counts_each_targets_sent_failed_retried_unconfirmed_and_unsent(
    tmp_path: Path,
) -> None:
    from golive.report import notifications

    plan = make_plan(
        tmp_path,
        {
            "targets": [
                {"name": "chat", "url": "json://127.0.0.1:9/"},
                {"name": "pager", "url_env": "PAGER_URL", "events": ["gate_failed"]},
            ]
        },
    )
    events = [STARTED, MEASURED_FAIL]
    first, fail = notices(events)
    events += [
        ev(delivery.SENDING, 10, id=first.id, target="chat"),
        ev(delivery.SENT, 11, id=first.id, target="chat", attempts=3),
        ev(delivery.SENDING, 12, id=fail.id, target="chat"),
        ev(delivery.SENDING, 13, id=fail.id, target="pager"),
        ev(
            delivery.FAILED,
            14,
            id=fail.id,
            target="pager",
            kind="gate_failed",
            attempts=6,
            error="notify target pager: answered 500",
        ),
    ]
    rows = {row.target: row for row in notifications.counts(events, plan)}
    assert rows["chat"] == notifications.TargetCounts("chat", 1, 0, 2, 1, 0)
    assert rows["pager"] == notifications.TargetCounts("pager", 0, 1, 5, 0, 0)
    text = "\n".join(notifications.lines(events, plan))
    assert "| chat | apprise | 1 | 0 | 2 | 1 | 0 |" in text
    assert "gate_failed to pager after 6 attempts: notify target pager: answered 500" in text


def test_an_operators_rollback_says_who_asked() -> None:
    failed = ev(
        "step_failed",
        7,
        step="traffic-10",
        outcome="failed",
        error="rollback requested by an operator (golive rollback by alice)",
    )
    found = notices([STARTED, failed], LINKS)
    assert [n.kind for n in found] == [
        "run_started",
        "operator_action",
        "step_failed",
        "rollback_started",
    ]
    assert "golive rollback by alice" in found[1].body
