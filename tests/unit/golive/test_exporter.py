"""golive's own metrics: the exporter's fold (what the metrics say after a sequence of journal
events), the plan's setting, and where Prometheus is told to find them.

Events are written as the runner and the steps journal them (names from ``golive.journal`` and
``golive.steps.shift``), with explicit timestamps, so a three-day go-live is a table here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import journal as j
from golive.exporter import RunCollector, RunFigures, discovery_file
from golive.plan import PlanError, parse
from golive.rehearsal.prometheus import prometheus_config
from golive.steps.backup import VerifyBackup
from golive.steps.shift import TRAFFIC_ROLLED_BACK, TRAFFIC_SHIFTED

REPO = Path(__file__).resolve().parents[3]
START = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
HOUR = 3600.0


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat(timespec="milliseconds")


def unix(hours: float) -> float:
    return (START + timedelta(hours=hours)).timestamp()


def ev(hours: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"ts": at(hours), "event": event, **fields}


def stage(hours: float, weight: int, previous: int, deadline_s: float) -> list[dict[str, Any]]:
    name = f"traffic-{weight}"
    return [
        ev(hours, j.STEP_STARTED, step=name, title=f"Traffic stage: {weight}%", index=1),
        ev(hours + 0.01, TRAFFIC_SHIFTED, step=name, weight=weight, previous=previous,
           instances={"a": weight}, verified_in_s=36.0, deadline_s=deadline_s),
    ]  # fmt: skip


def finished(hours: float, step: str) -> dict[str, Any]:
    return ev(hours, j.STEP_FINISHED, step=step, summary="", figures={}, elapsed_s=1.0)


BEFORE_TRAFFIC = [
    ev(0, j.RUN_STARTED, run_id="20261205T200000Z-2.0.0-ab12", release="2.0.0"),
    ev(0, j.STEP_STARTED, step="backup", title="Back up the database", index=2),
    finished(0.2, "backup"),
    ev(0.2, j.STEP_STARTED, step=VerifyBackup.name, title=VerifyBackup.title, index=3),
    finished(0.5, VerifyBackup.name),
]


def test_before_any_traffic_stage_the_weight_is_absent_not_zero() -> None:
    figures = RunFigures.fold(BEFORE_TRAFFIC)
    assert figures.weight is None and figures.stages == {}
    assert figures.backup_verified_at == unix(0.5)
    assert figures.outcomes == {"backup": "succeeded", "verify-backup": "succeeded"}
    assert figures.step is None and figures.run == "20261205T200000Z-2.0.0-ab12"


def test_weights_stage_starts_and_the_running_stages_deadline_follow_the_stages() -> None:
    events = [*BEFORE_TRAFFIC, *stage(1, 10, 0, 26 * HOUR)]
    figures = RunFigures.fold(events)
    assert figures.weight == 10
    assert figures.step == ("traffic-10", "Traffic stage: 10%", "run")
    ten = figures.stages["traffic-10"]
    assert ten.started == unix(1)
    assert ten.deadline == pytest.approx(unix(1.01) + 26 * HOUR)  # counted from the weight

    events += [finished(25, "traffic-10"), *stage(25, 50, 10, 26 * HOUR)]
    figures = RunFigures.fold(events)
    assert figures.weight == 50
    assert figures.stages["traffic-10"].deadline is None  # over: no longer overdue-able
    assert figures.stages["traffic-10"].started == unix(1)
    assert figures.stages["traffic-50"].deadline == pytest.approx(unix(25.01) + 26 * HOUR)


def test_a_pause_freezes_the_stages_countdown_so_the_deadline_moves_on_by_it() -> None:
    events = [*BEFORE_TRAFFIC, *stage(1, 10, 0, 2 * HOUR), ev(1.5, j.PAUSED, by="operator")]
    paused = RunFigures.fold(events)
    assert paused.paused_since == unix(1.5)
    # While paused the deadline stands: past it, GoLiveStageOverdue asks a person to decide.
    assert paused.stages["traffic-10"].deadline == pytest.approx(unix(1.01) + 2 * HOUR)
    resumed = RunFigures.fold([*events, ev(4.5, j.RESUMED)])
    assert resumed.paused_since is None
    assert resumed.stages["traffic-10"].deadline == pytest.approx(unix(1.01) + 5 * HOUR)


def test_a_resumed_stage_counts_its_deadline_from_its_first_start() -> None:
    events = [
        *BEFORE_TRAFFIC,
        *stage(1, 10, 0, 26 * HOUR),
        finished(25, "traffic-10"),
        *stage(25, 50, 10, 26 * HOUR),
        ev(30, j.STEP_FAILED, step="traffic-50", outcome="interrupted", error="SIGTERM"),
        ev(30, j.UNDO_STARTED, step="traffic-50"),
        ev(30.01, j.UNDO_FINISHED, step="traffic-50", what="flag back to 10%"),
        ev(30.02, j.RUN_INTERRUPTED, reason="SIGTERM", undone=["traffic-50"]),
    ]
    interrupted = RunFigures.fold(events)
    assert interrupted.outcome == "interrupted" and interrupted.weight == 10
    assert interrupted.stages["traffic-50"].deadline is None
    events += [ev(31, j.RUN_RESUMED, pid=1, after_step="traffic-10"), *stage(31, 50, 10, 26 * HOUR)]
    resumed = RunFigures.fold(events)
    assert resumed.outcome == "running" and resumed.weight == 50
    assert resumed.stages["traffic-50"].started == unix(25)
    assert resumed.stages["traffic-50"].deadline == pytest.approx(unix(25) + 26 * HOUR)
    assert resumed.backup_verified_at == unix(0.5)


def test_a_failed_gate_sets_the_weight_it_verified_and_the_undo_keeps_it() -> None:
    events = [
        *BEFORE_TRAFFIC,
        *stage(1, 10, 0, HOUR),
        finished(2, "traffic-10"),
        *stage(2, 50, 10, HOUR),
        ev(2.5, TRAFFIC_ROLLED_BACK, step="traffic-50", **{"from": 50, "to": 0}, why="gate failed",
           reasons=["error rate"], instances={"a": 0}, verified=True, after_fail_s=0.4),
        ev(2.5, j.STEP_FAILED, step="traffic-50", outcome="failed", error="gate failed"),
        ev(2.51, j.UNDO_STARTED, step="traffic-50"),
    ]  # fmt: skip
    undoing = RunFigures.fold(events)
    assert undoing.weight == 0
    assert undoing.step == ("traffic-50", "Traffic stage: 50%", "undo")
    events += [
        ev(2.52, j.UNDO_FINISHED, step="traffic-50", what="flag 50% -> 0% by the failed gate"),
        ev(2.53, j.UNDO_STARTED, step="traffic-10"),
        ev(2.54, j.UNDO_FINISHED, step="traffic-10", what=None),
        ev(2.55, j.RUN_FINISHED, outcome="rolled_back", failed_step="traffic-50"),
    ]
    done = RunFigures.fold(events)
    assert done.weight == 0  # the gate's 0% stays: an undo only ever lowers it
    assert done.outcomes["traffic-50"] == "undone" and done.outcomes["traffic-10"] == "undone"
    assert done.outcome == "rolled_back" and done.step is None


def test_an_undo_lowers_the_weight_to_the_stage_before() -> None:
    events = [
        *BEFORE_TRAFFIC,
        *stage(1, 10, 0, HOUR),
        finished(2, "traffic-10"),
        *stage(2, 50, 10, HOUR),
        ev(2.5, j.STEP_FAILED, step="traffic-50", outcome="failed", error="target error"),
        ev(2.51, j.UNDO_STARTED, step="traffic-50"),
        ev(2.52, j.UNDO_FINISHED, step="traffic-50", what="flag back to 10%"),
    ]
    assert RunFigures.fold(events).weight == 10
    failed_undo = RunFigures.fold([*events[:-1], ev(2.52, j.UNDO_FAILED, step="traffic-50")])
    assert failed_undo.weight == 50 and failed_undo.outcomes["traffic-50"] == "undo_failed"


def test_an_unverified_flag_reset_does_not_claim_a_weight() -> None:
    events = [
        *stage(1, 10, 0, HOUR),
        ev(1.5, TRAFFIC_ROLLED_BACK, step="traffic-10", **{"from": 10, "to": 0}, verified=False),
    ]
    assert RunFigures.fold(events).weight == 10


def samples(collector: RunCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(s.labels, s.value) for s in family.samples] for family in collector.collect()
    }


def test_the_collector_renders_the_fold_and_counts_events_it_cannot_read() -> None:
    collector = RunCollector("production", "2.0.0", "creditassessment")
    collector.reset([*BEFORE_TRAFFIC, *stage(1, 10, 0, HOUR)])
    collector.observe({"ts": "not a time", "event": j.STEP_STARTED, "step": "x"})
    collector.observe({"ts": at(1.2), "event": TRAFFIC_SHIFTED})  # no step, no weight
    got = samples(collector)
    assert got["golive_run_info"] == [
        ({"run": "20261205T200000Z-2.0.0-ab12", "plan": "production", "release": "2.0.0"}, 1)
    ]
    assert got["golive_traffic_weight_percent"] == [({}, 10)]
    assert got["golive_backup_last_verified_timestamp_seconds"] == [
        ({"database": "creditassessment"}, unix(0.5))
    ]
    assert got["golive_stage_started_timestamp_seconds"] == [({"stage": "traffic-10"}, unix(1))]
    assert got["golive_step_info"] == [
        ({"step": "traffic-10", "title": "Traffic stage: 10%", "action": "run"}, 1)
    ]
    assert ({"step": "verify-backup", "outcome": "succeeded"}, 1) in got["golive_step_outcome"]
    assert got["golive_run_outcome"] == [({"outcome": "running"}, 1)]
    assert got["golive_run_paused"] == [({}, 0)]
    assert got["golive_exporter_fold_errors"] == [({}, 2)]


def test_every_exported_metric_is_in_the_contract_table_of_docs_monitoring() -> None:
    documented = set(
        re.findall(
            r"^\| `([a-z_:]+)`",
            (REPO / "docs" / "monitoring.md").read_text(encoding="utf-8"),
            flags=re.M,
        )
    )
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in RunCollector("p", "1", "db").collect()
    }
    assert len(exported) == 10
    assert exported - documented == set()


# --- the plan's monitoring.exporter -----------------------------------------------------------


def plan_with(monitoring: Any) -> Any:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["monitoring"] = monitoring
    return parse(yaml.safe_dump(data), "plan.yaml")


def test_the_exporter_is_on_by_default_on_loopback_9464_and_null_turns_it_off() -> None:
    default = plan_with({}).monitoring.exporter
    assert (default.host, default.port) == ("127.0.0.1", 9464)
    assert plan_with({"exporter": None}).monitoring.exporter is None
    production = yaml.safe_load((REPO / "deploy/golive/production.yaml").read_text())
    assert production["monitoring"]["exporter"]["port"] == 9464


@pytest.mark.parametrize(
    ("exporter", "problem"),
    [
        ({"port": 70000}, "monitoring.exporter.port: Input should be less than or equal to 65535"),
        ({"host": ""}, "monitoring.exporter.host: String should have at least 1 character"),
        ({"addr": "x"}, "monitoring.exporter.addr: unknown key"),
    ],
)
def test_a_bad_exporter_setting_names_its_field(exporter: dict[str, Any], problem: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan_with({"exporter": exporter})
    assert problem in str(caught.value)


def test_the_podmonitor_and_the_local_scrape_config_find_the_exporter_the_plans_name() -> None:
    monitoring = REPO / "deploy" / "monitoring"
    documents = yaml.safe_load_all((monitoring / "kubernetes/servicemonitor.yaml").read_text())
    (pod_monitor,) = [d for d in documents if d["kind"] == "PodMonitor"]
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {"app": "golive"}
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "golive", "action": "replace"} in endpoint[
        "relabelings"
    ]
    production = parse((REPO / "deploy/golive/production.yaml").read_text(), "production.yaml")
    exporter = production.monitoring.exporter
    assert exporter is not None and (exporter.host, exporter.port) == ("0.0.0.0", 9464)
    local = yaml.safe_load((monitoring / "prometheus/prometheus.local.yml").read_text())
    (job,) = [c for c in local["scrape_configs"] if c["job_name"] == "golive"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:9464"]}]  # the default port


def test_the_rehearsals_prometheus_discovers_golive_from_the_file_the_run_writes(
    tmp_path: Path,
) -> None:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = "relative/state"
    plan = parse(yaml.safe_dump(data), "plan.yaml")
    config = prometheus_config(plan, tmp_path, None)
    (job,) = [c for c in config["scrape_configs"] if c["job_name"] == "golive"]
    (sd,) = job["file_sd_configs"]
    # Absolute: Prometheus runs in another directory than golive.
    assert sd["files"] == [str(discovery_file(Path("relative/state").resolve()))]
    assert Path(sd["files"][0]).is_absolute() and sd["refresh_interval"] == "1s"
