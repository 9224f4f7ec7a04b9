"""golive's metrics endpoint over real HTTP while the real runner runs: figures that follow the
stages, a resume that rebuilds them, a port in use, and the port freed however the run ends.

The steps here journal what the real ones journal (a traffic stage's ``traffic_shifted`` with
its deadline, ``verify-backup`` finishing) and scrape the endpoint from inside the run, at the
address the run journaled.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from golive import journal as j
from golive.errors import ExporterAddressError, Interrupted, StepFailed
from golive.exporter import EXPORTER_STARTED, discovery_file
from golive.plan import Plan, Stage, parse
from golive.runner import Runner
from golive.steps.backup import VerifyBackup
from golive.steps.base import StepContext, StepResult
from golive.steps.shift import TRAFFIC_SHIFTED, deadline_of
from golive.targets.fake import FakeTarget
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[3]

Samples = dict[str, list[tuple[dict[str, str], float]]]


def make_plan(tmp_path: Path, **exporter: Any) -> Plan:
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data["monitoring"]["exporter"].update(exporter)
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


def exporter_url(ctx: StepContext) -> str:
    started = [e for e in ctx.journal.events() if e["event"] == EXPORTER_STARTED]
    return str(started[-1]["url"])


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=5.0)
    assert response.status_code == 200
    found: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for got, number in samples.get(name, []):
        if all(got.get(k) == v for k, v in labels.items()):
            return number
    return None


def refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2.0)
    except httpx.ConnectError:
        return True
    return False


def ts_of(journal: j.Journal, event: str, step: str) -> list[float]:
    return [
        datetime.fromisoformat(e["ts"]).timestamp()
        for e in journal.events()
        if e["event"] == event and e.get("step") == step
    ]


class BackupVerified:
    """Stands for ``verify-backup`` (the name the exporter reads its timestamp from)."""

    name = VerifyBackup.name
    title = VerifyBackup.title

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult("restored and compared", {"tables": 3, "rows": 30, "restore_s": 0.1})

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 1

    def manual(self, plan: Plan) -> list[str]:
        return []


class StageProbe:
    """A traffic stage that journals its weight as ``TrafficStage`` does, then scrapes."""

    def __init__(
        self,
        weight: int,
        previous: int,
        seen: dict[str, list[Samples]],
        *,
        then: Callable[[], None] | None = None,
        undo_seen: list[Samples] | None = None,
    ) -> None:
        self.stage = Stage(weight=weight, dwell_s=60, deadline_s=600)
        self.previous, self.seen, self.then, self.undo_seen = previous, seen, then, undo_seen
        self.name = f"traffic-{weight}"
        self.title = f"Traffic stage: {weight}% of legacy traffic to the new engine"

    def run(self, ctx: StepContext) -> StepResult:
        url = exporter_url(ctx)
        before = scrape(url)
        ctx.journal.append(
            TRAFFIC_SHIFTED,
            step=self.name,
            weight=self.stage.weight,
            previous=self.previous,
            instances={"127.0.0.1:1": self.stage.weight},
            verified_in_s=0.01,
            deadline_s=deadline_of(self.stage, ctx.plan.traffic.interval_s),
        )
        self.seen.setdefault(self.name, []).extend([before, scrape(url)])
        if self.then is not None:
            self.then()
        return StepResult(f"{self.stage.weight}% held", {"weight": self.stage.weight})

    def undo(self, ctx: StepContext) -> str | None:
        if self.undo_seen is not None:
            self.undo_seen.append(scrape(exporter_url(ctx)))
        return f"flag back to {self.previous}%"

    def expected_s(self, plan: Plan) -> float:
        return 60

    def manual(self, plan: Plan) -> list[str]:
        return []


def interrupt() -> None:
    raise KeyboardInterrupt


def fail() -> None:
    raise RuntimeError("error-rate gate FAIL")


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return make_plan(tmp_path)


def test_the_figures_follow_the_stages_and_the_port_is_freed_after_the_run(plan: Plan) -> None:
    seen: dict[str, list[Samples]] = {}
    steps = [BackupVerified(), StageProbe(10, 0, seen), StageProbe(50, 10, seen)]
    steps.append(StageProbe(100, 50, seen))
    journal = Runner(plan, FakeTarget(), steps=steps).run(report=False)

    started = next(e for e in journal.events() if e["event"] == EXPORTER_STARTED)
    url = started["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert started["listen"].startswith("127.0.0.1:")  # port 0 in the plan: a free one

    before, at_10 = seen["traffic-10"]
    assert value(before, "golive_traffic_weight_percent") is None  # not known yet, not 0
    assert value(at_10, "golive_traffic_weight_percent") == 10
    verified = ts_of(journal, j.STEP_FINISHED, VerifyBackup.name)[0]
    backup = value(
        at_10, "golive_backup_last_verified_timestamp_seconds", database="credit_assessment"
    )
    assert backup == pytest.approx(verified, abs=0.001)
    run_id = journal.state().run_id
    assert run_id is not None
    assert value(at_10, "golive_run_info", run=run_id, plan="rehearsal", release="2.0.0") == 1

    at_50 = seen["traffic-50"][1]
    assert value(at_50, "golive_traffic_weight_percent") == 50
    first_start = ts_of(journal, j.STEP_STARTED, "traffic-10")[0]
    started_10 = value(at_50, "golive_stage_started_timestamp_seconds", stage="traffic-10")
    assert started_10 == pytest.approx(first_start, abs=0.001)
    shifted_50 = ts_of(journal, TRAFFIC_SHIFTED, "traffic-50")[0]
    deadline = value(at_50, "golive_stage_deadline_timestamp_seconds", stage="traffic-50")
    assert deadline == pytest.approx(shifted_50 + 600, abs=0.001)
    assert value(at_50, "golive_stage_deadline_timestamp_seconds", stage="traffic-10") is None
    assert value(at_50, "golive_step_info", step="traffic-50", action="run") == 1
    assert value(at_50, "golive_step_outcome", step="traffic-10", outcome="succeeded") == 1
    assert value(at_50, "golive_run_outcome", outcome="running") == 1

    assert value(seen["traffic-100"][1], "golive_traffic_weight_percent") == 100
    assert refused(url)
    assert json.loads(discovery_file(plan.state_dir.resolve()).read_text()) == []


def test_the_discovery_file_names_the_bound_address_while_the_run_goes_on(plan: Plan) -> None:
    published: list[Any] = []

    def read_discovery() -> None:
        published.append(json.loads(discovery_file(plan.state_dir.resolve()).read_text()))

    steps = [StageProbe(10, 0, {}, then=read_discovery)]
    journal = Runner(plan, FakeTarget(), steps=steps).run(report=False)
    url = next(e["url"] for e in journal.events() if e["event"] == EXPORTER_STARTED)
    address = url.removeprefix("http://").removesuffix("/metrics")
    assert published == [[{"targets": [address], "labels": {}}]]


def test_a_resumed_run_rebuilds_weight_stage_start_and_backup_time(plan: Plan) -> None:
    seen: dict[str, list[Samples]] = {}

    def steps(then: Callable[[], None] | None) -> list[Any]:
        return [BackupVerified(), StageProbe(10, 0, seen), StageProbe(50, 10, seen, then=then)]

    with pytest.raises(Interrupted):
        Runner(plan, FakeTarget(), steps=steps(interrupt)).run(report=False)
    journal = Runner(plan, FakeTarget(), steps=steps(None)).run(resume=True, report=False)

    # The resumed run's first scrape, before it journals anything of the stage again.
    resumed_before = seen["traffic-50"][2]
    assert value(resumed_before, "golive_traffic_weight_percent") == 10  # the undo's weight
    first_10 = ts_of(journal, j.STEP_STARTED, "traffic-10")[0]
    started_10 = value(resumed_before, "golive_stage_started_timestamp_seconds", stage="traffic-10")
    assert started_10 == pytest.approx(first_10, abs=0.001)
    verified = ts_of(journal, j.STEP_FINISHED, VerifyBackup.name)
    assert len(verified) == 1  # not verified again: the resume skipped it
    backup = value(resumed_before, "golive_backup_last_verified_timestamp_seconds")
    assert backup == pytest.approx(verified[0], abs=0.001)

    resumed_at_50 = seen["traffic-50"][3]
    assert value(resumed_at_50, "golive_traffic_weight_percent") == 50
    first_50 = ts_of(journal, j.STEP_STARTED, "traffic-50")[0]
    deadline = value(resumed_at_50, "golive_stage_deadline_timestamp_seconds", stage="traffic-50")
    assert deadline == pytest.approx(first_50 + 600, abs=0.001)  # from the first start
    assert value(resumed_at_50, "golive_run_info", run=str(journal.state().run_id)) == 1


def test_a_port_in_use_stops_the_run_before_anything_is_done(tmp_path: Path) -> None:
    port = free_port()
    plan = make_plan(tmp_path, port=port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(ExporterAddressError) as caught:
            Runner(plan, FakeTarget(), steps=[BackupVerified()]).run(report=False)
    error = caught.value
    assert error.exit_code == 2
    assert error.message == f"golive's metrics port 127.0.0.1:{port} is already in use"
    assert "monitoring.exporter.port" in error.hint and f":{port}" in error.hint
    assert j.latest_run(plan.state_dir.resolve()) is None  # no run journaled: nothing to resume
    # The lock was released and the port is free again: the same plan now runs.
    journal = Runner(plan, FakeTarget(), steps=[BackupVerified()]).run(report=False)
    assert journal.state().outcome == "succeeded"


def test_an_address_not_of_this_machine_is_a_clear_error(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, host="192.0.2.1")  # TEST-NET-1: never a local address
    with pytest.raises(ExporterAddressError) as caught:
        Runner(plan, FakeTarget(), steps=[BackupVerified()]).run(report=False)
    assert caught.value.message.startswith("golive cannot serve its metrics on 192.0.2.1:0")
    assert "monitoring.exporter.host" in caught.value.hint


def test_a_failed_run_exports_its_undo_then_frees_the_port(plan: Plan) -> None:
    undo_seen: list[Samples] = []
    steps = [StageProbe(10, 0, {}, then=fail, undo_seen=undo_seen)]
    runner = Runner(plan, FakeTarget(), steps=steps)
    with pytest.raises(StepFailed):
        runner.run(report=False)
    assert runner.journal is not None
    url = next(e["url"] for e in runner.journal.events() if e["event"] == EXPORTER_STARTED)
    (during_undo,) = undo_seen
    assert value(during_undo, "golive_step_info", step="traffic-10", action="undo") == 1
    assert value(during_undo, "golive_step_outcome", step="traffic-10", outcome="failed") == 1
    assert refused(url)
    assert json.loads(discovery_file(plan.state_dir.resolve()).read_text()) == []


def test_golive_rollback_exports_while_it_undoes(plan: Plan) -> None:
    undo_seen: list[Samples] = []
    steps = [BackupVerified(), StageProbe(10, 0, {}, undo_seen=undo_seen)]
    Runner(plan, FakeTarget(), steps=steps).run(report=False)
    rolled, undone = Runner(plan, FakeTarget(), steps=steps).rollback_latest()
    assert rolled is not None and undone == ["traffic-10: flag back to 0%"]
    (during,) = undo_seen
    assert value(during, "golive_step_info", step="traffic-10", action="undo") == 1
    assert value(during, "golive_run_info", run=str(rolled.state().run_id)) == 1
    assert value(during, "golive_step_outcome", step="traffic-10", outcome="succeeded") == 1
    urls = [e["url"] for e in rolled.events() if e["event"] == EXPORTER_STARTED]
    assert len(urls) == 2  # the run's, then the rollback's
    assert refused(urls[-1])


def test_golive_rollback_with_the_port_in_use_rolls_back_without_metrics(
    tmp_path: Path,
) -> None:
    port = free_port()
    plan = make_plan(tmp_path, port=port)
    Runner(plan, FakeTarget(), steps=[StageProbe(10, 0, {})]).run(report=False)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the run's TIME_WAIT
        holder.bind(("127.0.0.1", port))
        holder.listen()
        journal, undone = Runner(
            plan, FakeTarget(), steps=[StageProbe(10, 0, {})]
        ).rollback_latest()
    assert undone == ["traffic-10: flag back to 0%"]
    assert journal is not None and journal.state().outcome == "rolled_back"
    notes = [e["text"] for e in journal.events() if e["event"] == j.NOTE]
    why = f"golive's metrics port 127.0.0.1:{port} is already in use"
    assert f"rolling back without golive's metrics: {why}" in notes


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    import threading

    before = {t.ident for t in threading.enumerate()}
    yield
    serving = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and "serve_forever" in repr(t)
    ]
    assert serving == []
