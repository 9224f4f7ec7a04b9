"""The committed go-live alerts evaluated by a real Prometheus on golive's real exporter.

golive's exporter (``golive.exporter.RunExporter``) folds a real journal: a run whose backup
was verified 51 hours ago and whose stage is past its deadline, as a resumed multi-day go-live
would show. Prometheus scrapes it every second with the committed rules, every alert's ``for``
set to 0 s (the real durations, 1 m and 5 m, are covered by ``promtool test rules``), so the
alerts' real expressions decide, on real figures, within seconds. Nothing here is a stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.integration.monitoring.conftest import REPO, MonitoringStack, wait_until

from golive import journal as j
from golive.exporter import RunExporter
from golive.journal import Control
from golive.monitoring import PrometheusMonitoring
from golive.plan import Plan, parse
from golive.steps.backup import VerifyBackup
from golive.steps.base import StepContext
from golive.steps.monitoring import VerifyMonitoring, check_golive_scraped
from golive.steps.shift import TRAFFIC_SHIFTED
from golive.targets.fake import FakeTarget

RUN_ID = "20261205T200000Z-2.0.0-c0de"


def plan_in(directory: Path) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(directory / "state")
    return parse(yaml.safe_dump(data), str(directory / "plan.yaml"))


def past(hours_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds")


def write_earlier_events(journal: j.Journal, backup_hours_ago: float) -> None:
    """What the run journaled before it stopped: started, backup verified ``hours_ago``."""
    earlier = [
        {"ts": past(backup_hours_ago + 1), "event": j.RUN_STARTED, "run_id": RUN_ID},
        {"ts": past(backup_hours_ago + 0.5), "event": j.STEP_STARTED, "step": VerifyBackup.name},
        {"ts": past(backup_hours_ago), "event": j.STEP_FINISHED, "step": VerifyBackup.name},
    ]
    journal.path.parent.mkdir(parents=True, exist_ok=True)
    journal.path.write_text("".join(json.dumps(e) + "\n" for e in earlier), encoding="utf-8")


def start_stage(journal: j.Journal, weight: int, previous: int, deadline_s: float) -> None:
    step = f"traffic-{weight}"
    journal.append(j.STEP_STARTED, step=step, title=f"Traffic stage: {weight}%", index=1)
    journal.append(
        TRAFFIC_SHIFTED, step=step, weight=weight, previous=previous, deadline_s=deadline_s
    )


def context(plan: Plan, journal: j.Journal) -> StepContext:
    return StepContext(
        plan=plan, target=FakeTarget(), journal=journal, control=Control(plan.state_dir)
    )


def alerts(stack: MonitoringStack, name: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{stack.prometheus_url}/api/v1/alerts", timeout=5.0).json()
    return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]


@pytest.fixture
def resumed_run(tmp_path: Path) -> Iterator[tuple[j.Journal, RunExporter]]:
    """golive's exporter following a resumed run: backup verified 51 h ago."""
    plan = plan_in(tmp_path)
    journal = j.open_run(plan.state_dir.resolve(), RUN_ID)
    write_earlier_events(journal, backup_hours_ago=51)
    settings = plan.monitoring.exporter
    assert settings is not None and settings.port == 0
    exporter = RunExporter(settings, plan).start()
    try:
        exporter.follow(journal)
        journal.append(j.RUN_RESUMED, pid=1, after_step=VerifyBackup.name)
        yield journal, exporter
    finally:
        exporter.stop()


def test_stage_overdue_and_backup_too_old_fire_on_golives_real_figures(
    stack_factory: Callable[..., Any],
    resumed_run: tuple[j.Journal, RunExporter],
    tmp_path: Path,
) -> None:
    journal, exporter = resumed_run
    start_stage(journal, 10, 0, deadline_s=1)  # a stage whose deadline passes at once
    with stack_factory(tmp_path / "stack", golive_target=exporter.address) as stack:
        stack.wait_for_samples('golive_traffic_weight_percent{job="golive"} == 10')

        def overdue() -> list[dict[str, Any]]:
            return [a for a in alerts(stack, "GoLiveStageOverdue") if a["state"] == "firing"]

        (firing,) = wait_until(overdue, timeout_s=30, what="GoLiveStageOverdue firing")
        assert firing["labels"]["stage"] == "traffic-10"
        assert firing["labels"]["instance"] == exporter.address
        assert firing["annotations"]["summary"] == "Go-live stage traffic-10 is past its deadline"

        def backup_alerts() -> set[str]:
            found = alerts(stack, "GoLiveBackupTooOld")
            return {a["labels"]["severity"] for a in found if a["state"] == "firing"}

        wait_until(
            lambda: backup_alerts() == {"warning", "critical"},
            timeout_s=30,
            what="GoLiveBackupTooOld warning and critical (51 h)",
        )

        # The stage ends and the next one starts within its deadline: the alert resolves.
        journal.append(j.STEP_FINISHED, step="traffic-10", summary="", figures={}, elapsed_s=2)
        start_stage(journal, 50, 10, deadline_s=3600)
        stack.wait_for_samples('golive_traffic_weight_percent{job="golive"} == 50')
        wait_until(
            lambda: not alerts(stack, "GoLiveStageOverdue"),
            timeout_s=30,
            what="GoLiveStageOverdue resolved once the next stage runs",
        )
        deadline = stack.query('golive_stage_deadline_timestamp_seconds{job="golive"}')
        assert [r["metric"]["stage"] for r in deadline] == ["traffic-50"]


def test_a_freshly_verified_backup_and_a_stage_in_time_stay_quiet(
    stack_factory: Callable[..., Any], tmp_path: Path
) -> None:
    plan = plan_in(tmp_path)
    journal = j.open_run(plan.state_dir.resolve(), RUN_ID)
    write_earlier_events(journal, backup_hours_ago=0.1)
    settings = plan.monitoring.exporter
    assert settings is not None
    exporter = RunExporter(settings, plan).start()
    try:
        exporter.follow(journal)
        start_stage(journal, 10, 0, deadline_s=3600)
        with stack_factory(tmp_path / "stack", golive_target=exporter.address) as stack:
            stack.wait_for_samples('golive_stage_deadline_timestamp_seconds{job="golive"}')
            # Several evaluations on these figures (1 s each), and nothing is active.
            stack.wait_for_samples('count_over_time(golive_run_info{job="golive"}[1m]) >= 5')
            assert alerts(stack, "GoLiveStageOverdue") == []
            assert alerts(stack, "GoLiveBackupTooOld") == []
            age = stack.query(
                'time() - golive_backup_last_verified_timestamp_seconds{job="golive"}'
            )
            assert 0 < float(age[0]["value"][1]) < 3600

            # verify-monitoring's finding: this run's metrics, with its step running, arrived.
            step = VerifyMonitoring.name
            journal.append(j.STEP_STARTED, step=step, title=VerifyMonitoring.title, index=13)
            with PrometheusMonitoring(stack.prometheus_url) as prometheus:
                check = check_golive_scraped(context(plan, journal), prometheus, step, 20)
            assert check.passed, check.detail
            assert check.detail.startswith(f"this run's metrics scraped from {exporter.address}")
    finally:
        exporter.stop()


def test_verify_monitoring_fails_when_this_runs_metrics_are_not_scraped(
    monitoring_stack: MonitoringStack, tmp_path: Path
) -> None:
    """The stack scrapes a stand-in as job golive, not this run: the finding fails, naming
    what to scrape; with the exporter off in the plan it says so and passes."""
    plan = plan_in(tmp_path)
    journal = j.open_run(plan.state_dir.resolve(), RUN_ID)
    write_earlier_events(journal, backup_hours_ago=1)
    monitoring_stack.wait_for_samples('up{job="golive"} == 1')
    with PrometheusMonitoring(monitoring_stack.prometheus_url) as prometheus:
        check = check_golive_scraped(context(plan, journal), prometheus, "verify-monitoring", 2)
        assert not check.passed
        assert check.detail.startswith(
            f"golive's metrics of run {RUN_ID} are not in Prometheus after 2 s: scrape job golive"
        )
        off = plan.model_copy(
            update={"monitoring": plan.monitoring.model_copy(update={"exporter": None})}
        )
        skipped = check_golive_scraped(context(off, journal), prometheus, "verify-monitoring", 2)
    assert skipped.passed and "monitoring.exporter: null" in skipped.detail
