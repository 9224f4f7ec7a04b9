"""The runner with the in-tree fake target: order, journal, resume, undo order, idempotent undo,
the lock, interrupts, operator requests — and real steps on the fake where they need no I/O."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from golive import journal as j
from golive.errors import (
    GoLiveBusyError,
    Interrupted,
    RollbackFailed,
    RolledBack,
    StepFailed,
    TargetUnreachableError,
    UsageError,
)
from golive.journal import Control, RunLock
from golive.plan import Plan, parse
from golive.runner import Runner
from golive.steps.base import Clock, StepContext, StepResult
from golive.steps.deploy import DeployGreen, WaitGreenReady
from golive.steps.preflight import Preflight
from golive.steps.switch import SwitchToGreen
from golive.targets.fake import FakeTarget

REPO = Path(__file__).resolve().parents[3]


def make_plan(tmp_path: Path) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []


class RecordingStep:
    """A step that records its runs and undos; its undo is idempotent (a second one is a no-op)."""

    def __init__(
        self,
        name: str,
        log: Log,
        *,
        fail: Exception | None = None,
        interrupt: bool = False,
        undo_fails: bool = False,
        on_run=None,
    ) -> None:
        self.name = name
        self.title = f"step {name}"
        self.log = log
        self.fail = fail
        self.interrupt = interrupt
        self.undo_fails = undo_fails
        self.on_run = on_run
        self.done = False

    def run(self, ctx: StepContext) -> StepResult:
        self.log.events.append(f"run:{self.name}")
        if self.on_run is not None:
            self.on_run(ctx)
        if self.interrupt:
            self.interrupt = False  # only the first time
            raise KeyboardInterrupt
        if self.fail is not None:
            raise self.fail
        self.done = True
        return StepResult(f"{self.name} done", {"figure": self.name})

    def undo(self, ctx: StepContext) -> str | None:
        self.log.events.append(f"undo:{self.name}")
        if self.undo_fails:
            raise RuntimeError(f"cannot undo {self.name}")
        if not self.done and self.name != "c":
            return None
        self.done = False
        return f"{self.name} undone"

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


def steps(log: Log, **overrides) -> list[RecordingStep]:
    return [RecordingStep(n, log, **overrides.get(n, {})) for n in ("a", "b", "c", "d")]


def test_runs_every_step_in_order_and_journals_it(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    journal = Runner(plan, FakeTarget(), steps=steps(log)).run()
    assert log.events == ["run:a", "run:b", "run:c", "run:d"]
    state = journal.state()
    assert state.outcome == "succeeded" and state.completed == ["a", "b", "c", "d"]
    assert state.figures("c") == {"figure": "c"}
    kinds = [e["event"] for e in journal.events()]
    assert kinds[0] == j.RUN_STARTED and kinds[-1] == j.RUN_FINISHED
    assert kinds.count(j.STEP_STARTED) == 4 == kinds.count(j.STEP_FINISHED)
    assert (journal.run_dir / "report.md").read_text().startswith("# Go-live report")


def test_a_failure_undoes_the_failing_step_then_the_completed_ones_in_reverse(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    runner = Runner(plan, FakeTarget(), steps=steps(log, c={"fail": RuntimeError("boom")}))
    with pytest.raises(StepFailed) as caught:
        runner.run()
    assert log.events == ["run:a", "run:b", "run:c", "undo:c", "undo:b", "undo:a"]
    error = caught.value
    assert error.exit_code == 8 and error.step == "c" and "boom" in error.reason
    assert error.undone == ["c: c undone", "b: b undone", "a: a undone"]
    assert "step 'c' failed" in error.message and "rolled back:" in error.message
    state = runner.journal.state()
    assert state.outcome == "rolled_back" and state.undone == ["c", "b", "a"]
    report = (runner.journal.run_dir / "report.md").read_text()
    assert "Rolled back" in report and "b undone" in report


def test_an_undo_that_fails_does_not_stop_the_others_and_is_reported(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    runner = Runner(
        plan, FakeTarget(), steps=steps(log, b={"undo_fails": True}, c={"fail": RuntimeError("x")})
    )
    with pytest.raises(RollbackFailed, match="cannot undo b"):
        runner.run()
    assert log.events[-3:] == ["undo:c", "undo:b", "undo:a"]
    assert runner.journal.state().outcome == "rollback_failed"


def test_resume_after_a_crash_skips_completed_steps_and_reruns_the_interrupted_one(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    state_dir = plan.state_dir.resolve()
    journal = j.open_run(state_dir, "crashed-run")
    journal.append(j.RUN_STARTED, run_id="crashed-run", plan=str(plan.source))
    for name in ("a", "b"):
        journal.append(j.STEP_STARTED, step=name)
        journal.append(j.STEP_FINISHED, step=name, figures={})
    journal.append(j.STEP_STARTED, step="c")  # then kill -9

    with pytest.raises(GoLiveBusyError, match="unfinished"):
        Runner(plan, FakeTarget(), steps=steps(log)).run()
    resumed = Runner(plan, FakeTarget(), steps=steps(log)).run(resume=True)
    assert log.events == ["run:c", "run:d"]
    state = resumed.state()
    assert state.outcome == "succeeded" and state.steps["c"].attempts == 2
    with pytest.raises(UsageError, match="nothing to resume"):
        Runner(plan, FakeTarget(), steps=steps(log)).run(resume=True)


def test_an_interrupt_undoes_the_current_step_and_leaves_the_run_resumable(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    plan_steps = steps(log, c={"interrupt": True})
    runner = Runner(plan, FakeTarget(), steps=plan_steps)
    with pytest.raises(Interrupted) as caught:
        runner.run()
    assert caught.value.exit_code == 130
    assert log.events == ["run:a", "run:b", "run:c", "undo:c"]
    state = runner.journal.state()
    assert state.outcome == "interrupted" and state.completed == ["a", "b"]
    assert "--resume" in caught.value.hint

    Runner(plan, FakeTarget(), steps=plan_steps).run(resume=True)
    assert log.events[-2:] == ["run:c", "run:d"]


def test_one_go_live_at_a_time(tmp_path):
    plan = make_plan(tmp_path)
    with RunLock(plan.state_dir.resolve()), pytest.raises(GoLiveBusyError) as caught:
        Runner(plan, FakeTarget(), steps=steps(Log())).run()
    assert caught.value.exit_code == 7


def test_an_operator_rollback_request_rolls_back_at_the_next_checkpoint(tmp_path):
    plan, log = make_plan(tmp_path), Log()

    def request(ctx: StepContext) -> None:
        Control(ctx.plan.state_dir.resolve()).write(rollback=True)

    runner = Runner(plan, FakeTarget(), steps=steps(log, b={"on_run": request}))
    with pytest.raises(RolledBack) as caught:
        runner.run()
    assert caught.value.exit_code == 9 and caught.value.step == "c"
    assert log.events == ["run:a", "run:b", "undo:c", "undo:b", "undo:a"]


class FakeClock(Clock):
    def __init__(self, on_sleep) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        self.on_sleep(self)


def test_pause_holds_the_run_until_resumed(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    control = Control(plan.state_dir.resolve())

    def pause(ctx: StepContext) -> None:
        control.write(pause=True)

    def resume_after_three(clock: FakeClock) -> None:
        if clock.sleeps == 3:
            control.write(pause=False)

    clock = FakeClock(resume_after_three)
    journal = Runner(plan, FakeTarget(), steps=steps(log, a={"on_run": pause}), clock=clock).run()
    assert clock.sleeps == 3 and log.events == ["run:a", "run:b", "run:c", "run:d"]
    kinds = [e["event"] for e in journal.events()]
    assert (
        kinds.index(j.PAUSED)
        < kinds.index(j.RESUMED)
        < kinds.index(j.STEP_FINISHED, kinds.index(j.RESUMED))
    )


def test_rollback_of_a_finished_run_is_idempotent(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    plan_steps = steps(log)
    Runner(plan, FakeTarget(), steps=plan_steps).run()
    journal, undone = Runner(plan, FakeTarget(), steps=plan_steps).rollback_latest()
    assert undone == ["d: d undone", "c: c undone", "b: b undone", "a: a undone"]
    assert journal is not None and journal.state().outcome == "rolled_back"
    again, undone_again = Runner(plan, FakeTarget(), steps=plan_steps).rollback_latest()
    assert undone_again == [] and again is not None


# --- real steps on the fake target ----------------------------------------------------------


def no_database(url: str) -> tuple[str, int]:
    return "credit_assessment", 1_000_000


def test_an_unreachable_target_stops_the_run_with_nothing_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    plan = make_plan(tmp_path)
    target = FakeTarget(reachable=False)
    real = [Preflight(probe=no_database), DeployGreen(), WaitGreenReady(), SwitchToGreen()]
    runner = Runner(plan, target, steps=real)
    with pytest.raises(TargetUnreachableError) as caught:
        runner.run()
    assert caught.value.exit_code == 6
    assert "nothing was changed" in caught.value.message and "unreachable" in caught.value.message
    assert target.calls == ["preflight"]
    assert target.active == "blue" and set(target.running) == {"blue"}


def test_a_green_that_never_gets_ready_is_torn_down_and_blue_is_untouched(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    plan = make_plan(tmp_path)
    target = FakeTarget(never_ready={"green"})
    real = [Preflight(probe=no_database), DeployGreen(), WaitGreenReady(), SwitchToGreen()]
    runner = Runner(plan, target, steps=real)
    with pytest.raises(StepFailed) as caught:
        runner.run()
    assert caught.value.step == "wait-green-ready"
    assert "not ready within 60s" in caught.value.reason
    assert caught.value.undone == ["deploy-green: green stopped"]
    assert target.calls == ["preflight", "deploy:green", "wait_ready:green", "stop:green"]
    assert target.active == "blue" and target.running == {"blue": "1.9.0"}


def test_a_token_source_that_cannot_answer_stops_the_preflight_with_nothing_changed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    monkeypatch.delenv("GOLIVE_TEST_TOKEN", raising=False)
    data = make_plan(tmp_path).model_dump(mode="json")
    data["auth"] = {"token_env": "GOLIVE_TEST_TOKEN"}
    source = tmp_path / "with-auth.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    plan = parse(source.read_text(encoding="utf-8"), str(source))
    target = FakeTarget()
    real = [Preflight(probe=no_database), DeployGreen(), WaitGreenReady(), SwitchToGreen()]
    with pytest.raises(TargetUnreachableError, match=r"bearer token.*GOLIVE_TEST_TOKEN"):
        Runner(plan, target, steps=real).run()
    assert target.calls == ["preflight"] and set(target.running) == {"blue"}

    monkeypatch.setenv("GOLIVE_TEST_TOKEN", "a-token-that-must-not-be-shown")
    journal = Runner(plan, FakeTarget(), steps=real[:1]).run()
    text = journal.path.read_text(encoding="utf-8")
    assert '"name": "bearer token", "passed": true' in text
    assert "a-token-that-must-not-be-shown" not in text


def test_a_run_killed_while_rolling_back_finishes_the_rollback_on_resume(tmp_path):
    plan, log = make_plan(tmp_path), Log()
    journal = j.open_run(plan.state_dir.resolve(), "killed-rolling-back")
    journal.append(j.RUN_STARTED, run_id="killed-rolling-back", plan=str(plan.source))
    for name in ("a", "b"):
        journal.append(j.STEP_STARTED, step=name)
        journal.append(j.STEP_FINISHED, step=name, figures={})
    journal.append(j.STEP_STARTED, step="c")
    journal.append(
        j.STEP_FAILED, step="c", outcome="failed", error="gate", rolls_back_as="GateRolledBack"
    )
    journal.append(j.UNDO_STARTED, step="c")  # then kill -9

    with pytest.raises(StepFailed) as caught:
        Runner(plan, FakeTarget(), steps=steps(log)).run(resume=True)
    assert caught.value.exit_code == 13 and caught.value.step == "c"
    assert log.events == ["undo:c", "undo:b", "undo:a"]  # c is never run again
    assert journal.state().outcome == "rolled_back"


def test_a_flag_already_serving_clients_stops_the_preflight_naming_it(tmp_path, monkeypatch):
    from golive.traffic.document import flag_definition, write_disabled
    from golive.traffic.flagd import flag_file

    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    plan = make_plan(tmp_path)
    path = flag_file(plan)
    write_disabled(path)  # what `golive up` writes: every client on legacy
    real = [Preflight(probe=no_database)]
    journal = Runner(plan, FakeTarget(), steps=real).run()
    assert '"name": "flags", "passed": true' in journal.path.read_text(encoding="utf-8")

    document = {
        "flags": {
            "new-credit-assessment-enabled": flag_definition(0),  # enabled at 0%: fine
            "instant-payouts": flag_definition(10),
            "dark-mode": {"state": "DISABLED", "variants": {"on": True}, "defaultVariant": "on"},
        }
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    target = FakeTarget()
    with pytest.raises(TargetUnreachableError) as caught:
        Runner(plan, target, steps=[*real, DeployGreen()]).run()
    assert "flags: not disabled or at 0%: instant-payouts at 10%" in caught.value.message
    assert "dark-mode" not in caught.value.message
    assert target.calls == ["preflight"]
