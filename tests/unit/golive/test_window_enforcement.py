"""The maintenance window in a run: the runner on the fake target, with a clock at a given
instant. Outside the window the first database step refuses before it touches anything (exit 21,
nothing changed); ``--outside-window --reason`` runs it and journals the reason; the report shows
the window with its evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import cli
from golive import journal as j
from golive.errors import OutsideMaintenanceWindow
from golive.plan import Plan, parse
from golive.runner import Runner
from golive.steps.backup import Backup, VerifyBackup
from golive.steps.base import Clock, StepContext, StepResult
from golive.steps.deploy import DeployGreen
from golive.steps.migrate import CloneTest, Migrate, VerifyDatabase
from golive.targets.fake import FakeTarget

REPO = Path(__file__).resolve().parents[3]
WINDOW = {  # Saturday 22:00 to Sunday 02:00 in Lusaka (UTC+2)
    "start": "2026-12-05T22:00:00+02:00",
    "end": "2026-12-06T02:00:00+02:00",
    "timezone": "Africa/Lusaka",
}


class WallClock(Clock):
    """The real clock's waits, at a wall instant the test chooses."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def sleep(self, seconds: float) -> None:
        pass

    def wall(self) -> datetime:
        return self.instant


def inside() -> WallClock:
    return WallClock(datetime(2026, 12, 5, 21, 0, tzinfo=UTC))  # 23:00 in Lusaka


def outside() -> WallClock:
    return WallClock(datetime(2026, 12, 6, 9, 0, tzinfo=UTC))  # 11:00 on Sunday


def plan_file(tmp_path: Path, window: dict[str, Any] = WINDOW) -> Path:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data["maintenance_window"] = window
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return source


def make_plan(tmp_path: Path, window: dict[str, Any] = WINDOW) -> Plan:
    source = plan_file(tmp_path, window)
    return parse(source.read_text(encoding="utf-8"), str(source))


class Preflight:
    """Reads only, as the real preflight."""

    name = "preflight"
    title = "preflight"

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult("read")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 0

    def manual(self, plan: Plan) -> list[str]:
        return []


class DatabaseStandIn(Preflight):
    """A database step whose work needs no database: the window check, then a record."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = self.title = name
        self.log = log

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        self.log.append(self.name)
        return StepResult(f"{self.name} done")


@pytest.mark.parametrize("step", [Backup, VerifyBackup, CloneTest, Migrate, VerifyDatabase])
def test_every_database_step_refuses_outside_the_window_before_it_acts(tmp_path, step):
    target = FakeTarget()
    runner = Runner(make_plan(tmp_path), target, steps=[Preflight(), step()], clock=outside())
    with pytest.raises(OutsideMaintenanceWindow) as caught:
        runner.run()
    error = caught.value
    assert error.exit_code == 21
    assert f"{step.name} is a database step and the maintenance window is closed" in str(error)
    assert "2026-12-05T22:00:00+02:00 – 2026-12-06T02:00:00+02:00" in str(error)
    assert "nothing was changed" in error.hint and "--outside-window" in error.hint
    assert target.calls == []  # not even the database URL was asked for
    assert not (tmp_path / "backups").exists()
    assert runner.journal is not None
    events = runner.journal.events()
    assert not [e for e in events if e["event"] == j.OUTSIDE_WINDOW]
    refused = [e for e in events if e["event"] == j.WINDOW_REFUSED]
    assert [(e["step"], e["at"]) for e in refused] == [(step.name, "2026-12-06T09:00:00+00:00")]
    assert [e["step"] for e in events if e["event"] == j.STEP_FAILED] == [step.name]
    report = (runner.journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Pre-deployment checklist" in report
    assert "❌ | Maintenance window" in report and "refused to start" in report


def test_a_step_before_the_database_steps_is_undone_as_on_any_failure(tmp_path):
    target = FakeTarget()
    steps = [DeployGreen(), Backup()]
    runner = Runner(make_plan(tmp_path), target, steps=steps, clock=outside())
    with pytest.raises(Exception) as caught:
        runner.run()
    assert caught.value.exit_code == 8  # something was changed and undone: a failed step
    assert "green stopped" in " ".join(caught.value.undone)


def test_inside_the_window_the_database_steps_run_and_nothing_is_journaled_about_it(tmp_path):
    log: list[str] = []
    steps = [Preflight(), DatabaseStandIn("backup", log), DatabaseStandIn("migrate", log)]
    journal = Runner(make_plan(tmp_path), FakeTarget(), steps=steps, clock=inside()).run()
    assert log == ["backup", "migrate"] and journal.state().outcome == "succeeded"
    assert not [e for e in journal.events() if e["event"] == j.OUTSIDE_WINDOW]
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "✅ | Maintenance window" in report and "ran inside it" in report


def test_the_override_runs_them_and_journals_the_reason(tmp_path):
    log: list[str] = []
    steps = [Preflight(), DatabaseStandIn("backup", log), DatabaseStandIn("migrate", log)]
    reason = "incident INC-4711: the fix cannot wait for Saturday"
    runner = Runner(
        make_plan(tmp_path),
        FakeTarget(),
        steps=steps,
        clock=outside(),
        outside_window_reason=reason,
    )
    journal = runner.run()
    assert log == ["backup", "migrate"] and journal.state().outcome == "succeeded"
    events = journal.events()
    started = next(e for e in events if e["event"] == j.RUN_STARTED)
    assert started["outside_window_reason"] == reason and started["by"]
    overridden = [e for e in events if e["event"] == j.OUTSIDE_WINDOW]
    assert [e["step"] for e in overridden] == ["backup", "migrate"]
    assert all(e["reason"] == reason and e["at"] == "2026-12-06T09:00:00+00:00" for e in overridden)
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "⚠️ | Maintenance window" in report and reason in report


def test_a_rehearsal_window_is_always_open(tmp_path):
    log: list[str] = []
    plan = make_plan(tmp_path, {"always": True})
    Runner(plan, FakeTarget(), steps=[DatabaseStandIn("backup", log)], clock=outside()).run()
    assert log == ["backup"]


def test_the_shipped_rehearsal_plan_has_no_window():
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    assert data["maintenance_window"]["always"] is True


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--outside-window"], "--outside-window needs --reason TEXT"),
        (["--outside-window", "--reason", "  "], "--outside-window needs --reason TEXT"),
        (["--reason", "why"], "--reason goes with --outside-window"),
    ],
)
def test_the_flags_go_together(tmp_path, capsys, flags, says):
    code = cli.main(["run", str(plan_file(tmp_path)), "--plain", *flags])
    assert code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "state" / "runs").exists()


def test_golive_run_passes_the_reason_to_the_runner(tmp_path, monkeypatch, capsys):
    log: list[str] = []
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    monkeypatch.setattr("golive.targets.create", lambda plan: FakeTarget())
    monkeypatch.setattr("golive.runner.build_steps", lambda plan: [DatabaseStandIn("backup", log)])
    monkeypatch.setattr("golive.runner.Clock", outside)
    source = plan_file(tmp_path)
    assert cli.main(["run", str(source), "--plain"]) == 21
    assert "the maintenance window is closed" in capsys.readouterr().err and log == []
    reason = "regulator deadline"
    assert cli.main(["run", str(source), "--plain", "--outside-window", "--reason", reason]) == 0
    assert log == ["backup"]
    latest = j.latest_run((tmp_path / "state").resolve())
    assert latest is not None
    assert [e["reason"] for e in latest.events() if e["event"] == j.OUTSIDE_WINDOW] == [reason]
