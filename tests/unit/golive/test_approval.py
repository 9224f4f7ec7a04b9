"""`approval: manual` on a traffic stage, and `golive approve`: the stage waits for a person once
its gates pass at the end of its dwell, keeps judging while it waits, honours pause and
rollback, and takes the approval as its last act; the approval is journaled, shown by
`golive status` and in the report. The stage runs on the fake target and a fake clock, with
scripted metric windows and an in-memory traffic flag (fakes at the ports)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import cli, control
from golive import journal as j
from golive.errors import ApprovalRefused, GateRolledBack, RolledBack
from golive.journal import Control
from golive.metrics import Window
from golive.metrics.fake import FakeSource, Traffic, synthetic_stage
from golive.plan import Plan, load
from golive.report.golive_report import render
from golive.runner import Runner
from golive.steps import shift
from golive.steps.base import Clock, QuietObserver
from golive.targets.fake import FakeTarget
from golive.traffic.base import InstanceFlags

REPO = Path(__file__).resolve().parents[3]
HEALTHY = synthetic_stage(Traffic(), seed=1, intervals=400)
BROKEN = synthetic_stage(Traffic(new_error_ratio=0.2), seed=2, intervals=4)[-1]


class MemoryFlag:
    """The traffic flag port in memory: one instance that evaluates what was set at once."""

    key = "new-credit-assessment-enabled"

    def __init__(self) -> None:
        self.weight = 0
        self.history: list[int] = []

    def set_weight(self, percent: int) -> None:
        self.weight = percent
        self.history.append(percent)

    def verify(
        self, instances: Any = None, percent: int | None = None, timeout_s: float = 30.0
    ) -> dict[str, InstanceFlags]:
        return {"http://fake-green": InstanceFlags("http://fake-green", "v", self.weight)}

    def read_weights(self) -> dict[str, int]:
        return {"http://fake-green": self.weight}

    def stored_weights(self) -> dict[str, int]:
        return {self.key: self.weight}


class OperatorClock(Clock):
    """Virtual time; after each sleep the operator (the test) may act on what the run did."""

    def __init__(self, state_dir: Path, operator: Callable[[OperatorClock], None]) -> None:
        self.now = 0.0
        self.state_dir = state_dir.resolve()
        self.operator = operator

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.operator(self)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        journal = j.latest_run(self.state_dir)
        found = journal.events() if journal else []
        return [e for e in found if kind is None or e["event"] == kind]


class Messages(QuietObserver):
    def __init__(self) -> None:
        self.said: list[str] = []

    def message(self, text: str) -> None:
        self.said.append(text)


class Crash(BaseException):
    """The process dying where it stands (kill -9): nothing of the runner's runs after it."""


def write_plan(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data["traffic"]["interval_s"] = 5
    data["traffic"]["stages"] = [
        {"weight": 10, "dwell_s": 10, "deadline_s": 60, "approval": "manual"},
        {"weight": 50, "dwell_s": 10, "deadline_s": 60},
        {"weight": 100, "dwell_s": 10, "deadline_s": 60},
    ]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Scene:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.plan_path = write_plan(tmp_path)
        self.plan: Plan = load(self.plan_path)
        self.flag = MemoryFlag()
        self.windows: list[Any] = list(HEALTHY)
        self.looks = itertools.count()
        self.observer = Messages()
        self.source = FakeSource(self._window, clock=lambda: 0.0)
        monkeypatch.setattr(shift, "flag_for", lambda ctx: self.flag)
        monkeypatch.setattr(shift, "metric_source", lambda ctx: self.source)

    def _window(self, window: Window) -> Any:
        return self.windows[min(next(self.looks), len(self.windows) - 1)]

    def run(self, operator: Callable[[OperatorClock], None], *, resume: bool = False) -> Runner:
        """The plan's first two stages, run by the real runner (journal, lock, rollback)."""
        first, second = self.plan.traffic.stages[:2]
        steps = [shift.TrafficStage(first, 0), shift.TrafficStage(second, first.weight)]
        clock = OperatorClock(self.plan.state_dir, operator)
        runner = Runner(self.plan, FakeTarget(), steps=steps, clock=clock, observer=self.observer)
        runner.run(resume=resume)
        return runner

    def approve(self, by: str = "Chanda Mwale", note: str = "") -> str:
        return control.approve(self.plan_path, by, note, wait_s=0)

    def events(self, kind: str) -> list[dict[str, Any]]:
        journal = j.latest_run(self.plan.state_dir.resolve())
        assert journal is not None
        return [e for e in journal.events() if e["event"] == kind]


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scene:
    return Scene(tmp_path, monkeypatch)


def approve_after(looks: int, scene: Scene, **approval: str) -> Callable[[OperatorClock], None]:
    """An operator who approves once the stage has been judged ``looks`` times while waiting."""

    def operator(clock: OperatorClock) -> None:
        kinds = [e["event"] for e in clock.events()]
        if j.APPROVAL_REQUESTED not in kinds or j.APPROVED in kinds:
            return
        asked = len(kinds) - 1 - kinds[::-1].index(j.APPROVAL_REQUESTED)
        judged = kinds[asked:].count(shift.STAGE_MEASURED)
        if judged >= looks and not Control(scene.plan.state_dir).read()["approval"]:
            scene.approve(**approval)

    return operator


def test_a_manual_stage_waits_judging_until_a_person_approves(scene: Scene) -> None:
    runner = scene.run(approve_after(3, scene, by="Chanda Mwale", note="10% clean for a day"))
    events = runner.journal.events()  # type: ignore[union-attr]
    kinds = [e["event"] for e in events]
    asked, approved = kinds.index(j.APPROVAL_REQUESTED), kinds.index(j.APPROVED)
    # Judged at the end of the dwell (PASS), then three more times while waiting.
    assert kinds[:asked].count(shift.STAGE_MEASURED) == 2
    assert kinds[asked:approved].count(shift.STAGE_MEASURED) == 3
    request = events[asked]
    assert (request["step"], request["weight"]) == ("traffic-10", 10)
    record = events[approved]
    assert (record["step"], record["by"], record["note"]) == (
        "traffic-10",
        "Chanda Mwale",
        "10% clean for a day",
    )
    assert record["waited_s"] == 15.5  # approved in the tick after the third look
    # Approval is the stage's last act: the next stage raises the weight only after it.
    first_finished = kinds.index(j.STEP_FINISHED)
    assert approved < first_finished < kinds.index(shift.TRAFFIC_SHIFTED, first_finished)
    assert scene.flag.history == [10, 50]
    figures = runner.journal.state().figures("traffic-10")  # type: ignore[union-attr]
    assert figures["approval"]["by"] == "Chanda Mwale" and figures["verdict"] == "PASS"
    assert "traffic-50" not in [e["step"] for e in scene.events(j.APPROVAL_REQUESTED)]
    said = "\n".join(scene.observer.said)
    assert f"golive approve --plan {scene.plan_path} --by NAME [--note TEXT]" in said
    assert Control(scene.plan.state_dir).read()["approval"] is None  # taken


def test_an_approval_is_taken_only_while_the_gates_pass(scene: Scene) -> None:
    # PASS at the dwell's end; then two windows too small to judge (INCONCLUSIVE), then PASS.
    quiet = HEALTHY[0]  # 100 new-path requests: fewer than the 200 the error-rate gate needs
    scene.windows = [HEALTHY[1], HEALTHY[2], quiet, quiet, *HEALTHY[3:]]
    runner = scene.run(approve_after(1, scene))  # approves after the first INCONCLUSIVE look
    events = runner.journal.events()  # type: ignore[union-attr]
    kinds = [e["event"] for e in events]
    asked, approved = kinds.index(j.APPROVAL_REQUESTED), kinds.index(j.APPROVED)
    waiting = [e["verdict"] for e in events[asked:approved] if e["event"] == shift.STAGE_MEASURED]
    assert waiting == ["INCONCLUSIVE", "INCONCLUSIVE", "PASS"]
    assert events[approved]["waited_s"] == 15.0  # taken at the PASS, not when it was given


def test_a_stage_that_goes_bad_while_waiting_rolls_back(scene: Scene) -> None:
    scene.windows = [HEALTHY[1], HEALTHY[2], BROKEN]
    with pytest.raises(GateRolledBack) as caught:
        scene.run(lambda clock: None)  # nobody approves
    assert caught.value.exit_code == 13 and caught.value.step == "traffic-10"
    assert scene.events(j.APPROVAL_REQUESTED) and not scene.events(j.APPROVED)
    rolled = scene.events(shift.TRAFFIC_ROLLED_BACK)
    assert rolled and rolled[0]["to"] == 0 and rolled[0]["verified"]
    assert scene.flag.weight == 0
    with pytest.raises(ApprovalRefused, match="no stage is waiting for approval"):
        scene.approve()


def test_rollback_while_waiting_for_approval_rolls_back(scene: Scene) -> None:
    def operator(clock: OperatorClock) -> None:
        if clock.events(j.APPROVAL_REQUESTED):
            Control(scene.plan.state_dir).write(rollback=True)  # what `golive rollback` asks

    with pytest.raises(RolledBack) as caught:
        scene.run(operator)
    assert caught.value.exit_code == 9
    assert scene.flag.weight == 0 and not scene.events(j.APPROVED)
    outcome = scene.events(j.RUN_FINISHED)[-1]
    assert outcome["outcome"] == "rolled_back"


def test_pause_while_waiting_holds_then_the_approval_still_counts(scene: Scene) -> None:
    state = {"paused": False}

    def operator(clock: OperatorClock) -> None:
        ctl = Control(scene.plan.state_dir)
        if not clock.events(j.APPROVAL_REQUESTED):
            return
        if not state["paused"]:
            state["paused"] = True
            ctl.write(pause=True)
        elif clock.events(j.PAUSED) and ctl.read()["pause"]:
            ctl.write(pause=False)
        elif (
            clock.events(j.RESUMED) and not clock.events(j.APPROVED) and not ctl.read()["approval"]
        ):
            scene.approve()

    scene.run(operator)
    kinds = [e["event"] for e in scene.events(j.PAUSED) + scene.events(j.RESUMED)]
    assert kinds == [j.PAUSED, j.RESUMED]
    assert scene.events(j.APPROVED)[0]["by"] == "Chanda Mwale"


def test_approve_refuses_when_nothing_waits_and_when_already_approved(scene: Scene) -> None:
    with pytest.raises(ApprovalRefused, match="no go-live has run here") as caught:
        scene.approve()
    assert caught.value.exit_code == 20
    answers: list[str] = []
    refused: list[str] = []

    def operator(clock: OperatorClock) -> None:
        if clock.events(j.APPROVAL_REQUESTED) and not answers:
            answers.append(scene.approve(by="Chanda Mwale"))
            with pytest.raises(ApprovalRefused) as twice:  # before the run took the first one
                scene.approve(by="Mutale Banda")
            refused.append(twice.value.message)

    scene.run(operator)
    assert "approval of traffic-10 recorded" in answers[0]
    assert len(refused) == 1 and "traffic-10 is already approved by Chanda Mwale" in refused[0]
    approvals = scene.events(j.APPROVED)
    assert [a["by"] for a in approvals] == ["Chanda Mwale"]
    with pytest.raises(
        ApprovalRefused, match=r"no stage is waiting for approval \(run .* succeeded"
    ):
        scene.approve(by="Mutale Banda")  # after the run took it


def test_resume_after_a_crash_while_waiting_takes_an_approval_given_meanwhile(
    scene: Scene,
) -> None:
    def crash(clock: OperatorClock) -> None:
        if clock.events(j.APPROVAL_REQUESTED):
            raise Crash

    with pytest.raises(Crash):
        scene.run(crash)
    state = j.latest_run(scene.plan.state_dir.resolve()).state()  # type: ignore[union-attr]
    assert state.outcome == "running" and state.awaiting_approval is not None
    assert "waiting for approval: traffic-10 (10%)" in control.status(scene.plan_path)

    said = scene.approve(by="Natasha Phiri", note="given while golive was down")
    assert "no go-live is running" in said and "--resume" in said
    scene.run(lambda clock: None, resume=True)  # nobody else approves: the one given counts
    assert len(scene.events(j.APPROVAL_REQUESTED)) == 1  # not asked again
    approved = scene.events(j.APPROVED)
    assert [(a["by"], a["note"]) for a in approved] == [
        ("Natasha Phiri", "given while golive was down")
    ]
    assert scene.events(j.RUN_FINISHED)[-1]["outcome"] == "succeeded"


def test_resume_after_a_crash_while_waiting_keeps_waiting(scene: Scene) -> None:
    def crash(clock: OperatorClock) -> None:
        if clock.events(j.APPROVAL_REQUESTED):
            raise Crash

    with pytest.raises(Crash):
        scene.run(crash)
    scene.run(approve_after(2, scene, by="Mwila Tembo"), resume=True)
    assert len(scene.events(j.APPROVAL_REQUESTED)) == 2  # asked again by the resumed stage
    assert [a["by"] for a in scene.events(j.APPROVED)] == ["Mwila Tembo"]


def test_status_and_report_show_the_approval(scene: Scene) -> None:
    runner = scene.run(approve_after(1, scene, by="Chanda Mwale", note="go"))
    status = control.status(scene.plan_path)
    assert "approved: traffic-10 (10%) by Chanda Mwale at " in status and "— go" in status
    assert "waiting for approval" not in status
    report = render(runner.journal, scene.plan)  # type: ignore[arg-type]
    assert "`traffic-10` (10%): **approved by Chanda Mwale** at " in report
    assert "held 5.5 s for it — “go”" in report


def test_the_cli_needs_a_name_and_refuses_with_its_exit_code(
    scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["approve", "--plan", str(scene.plan_path)], ["approve", "--by", "  "]):
        with pytest.raises(SystemExit) as exit:
            cli.main(argv)
        assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --by" in err
    assert "a name is required: who approves" in err
    assert cli.main(["approve", "--plan", str(scene.plan_path), "--by", "Chanda Mwale"]) == 20
    err = capsys.readouterr().err
    assert "error: no stage is waiting for approval" in err and "hint: nothing was recorded" in err


def test_the_production_plan_asks_before_50_and_before_100() -> None:
    plan = load(REPO / "deploy/golive/production.yaml")
    assert [(s.weight, s.approval) for s in plan.traffic.stages] == [
        (10, "manual"),
        (50, "manual"),
        (100, "auto"),
    ]
    manual = shift.TrafficStage(plan.traffic.stages[0], 0).manual(plan)
    assert manual[-1] == ("golive approve --plan " + str(plan.source) + " --by NAME [--note TEXT]")
