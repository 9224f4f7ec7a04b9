"""A local "production" for traffic-stage tests: the rehearsal environment (embedded PostgreSQL,
seeded clients, legacy and bureau emulators, blue behind HAProxy, the flag file at 0%), a
background load through the router that keeps every assessment id it was given, and traffic
stages run by the real runner against the real slots."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from golive import journal as j
from golive.errors import GoLiveError
from golive.load import BackgroundLoad, LoadPlan, LoadResult, slot_engine_tag
from golive.plan import Plan, Stage, load
from golive.rehearsal import environment
from golive.rehearsal.rehearse import client_ids
from golive.runner import Runner
from golive.service import service_cli, service_token
from golive.steps.base import QuietObserver
from golive.steps.shift import TRAFFIC_ROLLED_BACK, TrafficStage
from golive.targets.local import LocalTarget
from golive.traffic import create
from golive.traffic.base import verify_weight
from tests.conftest import VENV_BIN
from tests.integration.golive.plans import REPO, same_environment, write_plan

_ID = re.compile(rb'"id"\s*:\s*"([0-9a-f-]{36})"')


def assessment_bodies(clients: Sequence[str]) -> Callable[[int], bytes]:
    """The load's request bodies: the seeded clients in turn, amounts and terms spread."""

    def body(index: int) -> bytes:
        return json.dumps(
            {
                "clientId": clients[(index * 7) % len(clients)],
                "loanAmount": 5000 + (index * 7919) % 95000,
                "loanTerm": (6, 12, 24, 36)[index % 4],
            }
        ).encode()

    return body


def assessment_id(status: int, headers: dict[str, str], body: bytes) -> str:
    """The id of the assessment a 201 created ("" for any other answer)."""
    match = _ID.search(body) if status == 201 else None
    return match.group(1).decode() if match else ""


# Fast stages: judged every second on small samples.
FAST_TRAFFIC = {
    "flag_provider": "flagd-file",
    "interval_s": 1,
    "verify_timeout_s": 10,
    "stages": [
        {"weight": 10, "dwell_s": 4, "deadline_s": 20},
        {"weight": 50, "dwell_s": 4, "deadline_s": 20},
        {"weight": 100, "dwell_s": 4, "deadline_s": 20},
    ],
    "analysis": {
        "error_rate": {"tolerance_pp": 1.0, "alpha": 0.001, "min_samples": 50},
        "latency": {"min_samples": 50, "tolerance_ratio": 1.25, "min_shift_s": 0.010},
        "mismatch": {"tolerance": 0.40, "min_samples": 50},
        "bureau": {"min_samples": 20},
        "limits": {"failure_limit": 0, "consecutive_error_limit": 2},
    },
}


@dataclass
class IdLoad:
    """A background load through the router that keeps the id of every assessment it got."""

    rig: Rig
    rate_per_s: float
    ids: list[str] = field(default_factory=list)
    background: BackgroundLoad | None = None

    def __enter__(self) -> IdLoad:
        body = assessment_bodies(self.rig.clients)

        plan = LoadPlan(
            url=self.rig.target.service_url(),
            path="/api/v1/assessment",
            rate_per_s=self.rate_per_s,
            duration_s=600,
            method="POST",
            body=body,
            headers={
                "Authorization": f"Bearer {self.rig.token}",
                "Content-Type": "application/json",
            },
            connections=32,
            classify=slot_engine_tag,
            note=assessment_id,
        )
        self.background = BackgroundLoad(plan).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.background is not None
        self.result: LoadResult = self.background.stop()
        self.ids = [o.note for o in self.result.outcomes if o.note]

    def stored(self) -> int:
        """How many of the assessments the load was given are in the database."""
        with psycopg.connect(self.rig.target.database_url(), connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM assessments WHERE id = ANY(%s::uuid[])", (self.ids,)
            ).fetchone()
        return int(row[0]) if row else 0


@dataclass
class StageRun:
    journal: j.Journal
    error: GoLiveError | None  # in this process (None from golive's own process)
    events: list[dict[str, Any]]
    fault_at: float | None = None  # time.time() when the fault was switched on
    exit_code: int = 0  # golive's exit code (docs/golive.md#exit-codes)
    output: str = ""  # golive's output, when it ran in a process of its own

    def rolled_back(self) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == TRAFFIC_ROLLED_BACK), None)

    def seconds_to_rollback(self) -> float:
        """From the fault being switched on to the flag verified back at 0%."""
        rolled = self.rolled_back()
        assert rolled is not None and self.fault_at is not None
        from datetime import datetime

        return datetime.fromisoformat(rolled["ts"]).timestamp() - self.fault_at


def switch_faults(target: LocalTarget, **switches: Any) -> None:
    """Switch faults of the serving slot's new-engine path (every worker follows them)."""
    response = httpx.post(target.slot_url("blue") + "/rehearsal/faults", json=switches, timeout=5)
    response.raise_for_status()


class FaultOnStart(QuietObserver):
    """Switches a fault on as soon as the named stage has its weight verified."""

    def __init__(self, target: LocalTarget, step: str, switches: dict[str, Any]) -> None:
        self.target, self.step, self.switches = target, step, switches
        self.fault_at: float | None = None
        self._armed = False

    def step_started(self, name: str, title: str, index: int, total: int) -> None:
        self._armed = name == self.step

    def message(self, text: str) -> None:
        if self._armed and self.fault_at is None and "verified in" in text:
            switch_faults(self.target, **self.switches)
            self.fault_at = time.time()


@dataclass
class Rig:
    directory: Path
    plan_path: Path
    plan: Plan
    target: LocalTarget
    token: str
    clients: list[str]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def faults(self, **switches: Any) -> None:
        """Switch faults of the serving slot's new-engine path (every worker follows them)."""
        switch_faults(self.target, **switches)

    def load_through_router(self, rate_per_s: float) -> IdLoad:
        return IdLoad(self, rate_per_s)

    def reset(self) -> None:
        self.faults()
        flag = create(self.plan, self.target)
        flag.set_weight(0)
        verify_weight(flag, 0, 10)

    def plan_with(self, name: str, notify: dict[str, Any] | None = None, **traffic: Any) -> Plan:
        merged = json.loads(json.dumps(FAST_TRAFFIC))
        for key, value in traffic.items():
            if key == "analysis":
                merged["analysis"].update(value)
            else:
                merged[key] = value
        changes: dict[str, Any] = {"traffic": merged}
        if notify is not None:
            changes["notify"] = notify
        path = same_environment(self.plan_path, self.directory, name, **changes)
        return load(path)

    def run_stages(
        self,
        plan: Plan,
        load: IdLoad | None = None,
        weights: list[int] | None = None,
        fault: tuple[str, dict[str, Any]] | None = None,
    ) -> StageRun:
        stages: list[Stage] = [
            s for s in plan.traffic.stages if weights is None or s.weight in weights
        ]
        steps = []
        previous = 0
        for stage in stages:
            steps.append(TrafficStage(stage, previous))
            previous = stage.weight
        observer = FaultOnStart(self.target, *fault) if fault else QuietObserver()
        live = load.background.live if load is not None and load.background else None
        runner = Runner(plan, self.target, steps=steps, observer=observer, load=live)
        error = None
        try:
            runner.run()
        except GoLiveError as exc:
            error = exc
        assert runner.journal is not None
        fault_at = observer.fault_at if isinstance(observer, FaultOnStart) else None
        exit_code = error.exit_code if error is not None else 0
        return StageRun(runner.journal, error, runner.journal.events(), fault_at, exit_code)

    def golive_stages(
        self, plan: Plan, weights: list[int], fault: tuple[str, dict[str, Any]]
    ) -> subprocess.Popen[bytes]:
        """The stages run by golive in a process of its own (``traffic_run``), which stops as
        its rollback begins: a test kills it there, then resumes with ``resume``."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        module = "tests.integration.golive.traffic_run"
        step, switches = fault
        args = [str(plan.source), ",".join(map(str, weights)), step, json.dumps(switches)]
        with (self.directory / "traffic_run.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", module, *args, str(self.directory / "fault_at")],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def events(self, plan: Plan, not_of: j.Journal | None = None) -> list[dict[str, Any]]:
        """The latest run's journal, as far as it goes; [] while the latest is ``not_of``
        (a run before the one awaited)."""
        journal = j.latest_run(plan.state_dir.resolve())
        if journal is None or (not_of is not None and journal.path == not_of.path):
            return []
        return journal.events()

    def log(self, name: str) -> str:
        path = self.directory / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def resume(self, plan: Plan) -> StageRun:
        """``golive run PLAN --resume``: the run it finishes, as ``run_stages`` gives one."""
        done = subprocess.run(
            [str(VENV_BIN / "golive"), "run", str(plan.source), "--resume", "--plain"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        journal = j.latest_run(plan.state_dir.resolve())
        assert journal is not None
        fault_at = float((self.directory / "fault_at").read_text())
        output = done.stdout + done.stderr
        return StageRun(journal, None, journal.events(), fault_at, done.returncode, output[-3000:])


def launchdarkly_traffic() -> dict[str, Any]:
    """The traffic flag in the LaunchDarkly stand-in (on a free loopback port) instead of a flagd
    file: what ``start_rig`` and ``plan_with`` take to run the stages through LaunchDarkly."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return {
        "flag_provider": "launchdarkly",
        "launchdarkly": {
            "project": "production",
            "environment": "production",
            "api_url": f"http://127.0.0.1:{port}",
            "rule": 0,
        },
    }


def start_rig(directory: Path, **traffic: Any) -> Iterator[Rig]:
    """The environment, blue serving with its two workers: one worker takes a fault switch and
    the other follows it within FAULT_POLL_S; one worker alone would be CPU-bound at the load's
    250 requests/s on 2 cores, and a saturated slot answers late, so its gates judge late.
    ``traffic`` replaces keys of FAST_TRAFFIC (for example ``launchdarkly_traffic()``)."""
    plan_path = write_plan(
        directory,
        rehearsal={"clients": 2000, "monitoring": False},
        traffic={**FAST_TRAFFIC, **traffic},
    )
    plan = load(plan_path)
    target = environment.local_target(plan)
    try:
        environment.up(plan)  # a failure half-way still stops what it started (finally)
        token = service_token(target.service_env(), service_cli(), "traffic-tests", 3600)
        clients = client_ids(target.database_url(), plan.rehearsal.clients)
        yield Rig(directory, plan_path, plan, target, token, clients)
    finally:
        environment.stop_everything(target)
