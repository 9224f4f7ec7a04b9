"""The shipped production plan, end to end, against a cluster that runs real pods.

``golive run`` executes ``deploy/golive/production.yaml`` itself. An override file that this
test writes compresses its timings (stages of seconds instead of 24 hours, a short hold and
performance check, sample sizes to match) and names where things live on this machine (state,
backups, golive's metrics port); see ``override()`` for every key it sets, and why.

Around golive, everything is real processes on loopback (tests/integration/golive):

- ``PodCluster``: kmock as the API store behind a front that serves server-side apply, the pod
  proxy and logs; a pod runner that starts real ``credit-assessment serve`` pods (3 per slot),
  runs the migration Job as a real process, keeps EndpointSlices, copies the flags ConfigMap
  into each pod, routes each Service's port to the pods it selects, and writes Prometheus
  file-based discovery for the pods;
- ``Edge``: the hosts the plan names (the public and preview Ingresses, the bureau, the legacy
  system, the identity provider, Prometheus, Alertmanager) over TLS with a test CA, through a
  CONNECT proxy golive reaches with ``HTTPS_PROXY``;
- ``IdentityProvider``: the RS256 tokens the pods verify (JWKS) and the client-credentials grant
  the plan's ``auth.token_command`` calls with curl;
- ``MonitoringStack``: real Prometheus (the committed rules) and Alertmanager;
- the rehearsal's bureau and legacy emulators; a real PostgreSQL.

A background load goes through the live Service's port for the whole go-live; approvals at 10%
and 50% are given by this test with ``golive approve``, as the release manager would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from golive.journal import latest_run
from golive.load import BackgroundLoad, LoadPlan, LoadResult, slot_engine_tag
from tests.conftest import PostgresServer, free_port
from tests.integration.golive.edge import (
    KNOWN_HOSTS,
    Edge,
    IdentityProvider,
    MonitoringStack,
    start_dependencies,
)
from tests.integration.golive.pod_cluster import PodCluster

pytest.importorskip("kmock")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "deploy" / "golive" / "production.yaml"
GOLIVE = str(Path(sys.executable).parent / "golive")
SERVICE = str(Path(sys.executable).parent / "credit-assessment")
MONITORING_HOSTS = ("prometheus.internal", "alertmanager.internal", "grafana.internal")
PREVIOUS_SCHEMA = "0001"  # where the previous release (1.9.0) left the database
CLIENTS = 400
RATE_PER_S = 60
INTERVAL_S = 2
_ID = re.compile(rb'"id"\s*:\s*"([0-9a-f-]{36})"')


def override(state: Path, exporter_port: int) -> str:
    """The only changes to the shipped plan: timings (and the sample sizes that scale with
    them), where things live here, and one tolerance the emulated legacy system needs."""
    return f"""\
extends: {PRODUCTION}
target:
  state_dir: {state / "state"}             # where: this test's directory
database:
  backup_dir: {state / "backups"}          # where
performance: {{duration_s: 4}}             # timing: 300 s -> 4 s
gates: {{interval_s: {INTERVAL_S}, min_requests: 100}}   # timing: 60 s -> 2 s, samples to match
traffic:
  interval_s: {INTERVAL_S}                 # timing: judge every 2 s, not every minute
  verify_timeout_s: 60
  analysis:                                # sample sizes for stages of seconds, not 24 h
    error_rate: {{min_samples: 60}}
    latency: {{min_samples: 60}}
    # The legacy emulator decides with older rules and disagrees with the new engine on about
    # 28% of applications by design (docs/legacy.md); the real legacy system is held to 5%.
    mismatch: {{tolerance: 0.40, min_samples: 60}}
    bureau: {{min_samples: 30}}
  stages:                                  # timing: 24 h -> 8 s each
    - {{dwell_s: 8, deadline_s: 120}}
    - {{dwell_s: 8, deadline_s: 120}}
    - {{dwell_s: 8, deadline_s: 120}}
hold: {{post_switch_s: 6, keep_blue_s: 2}}  # timing: 2 h and 1 h -> seconds
monitoring:
  exporter: {{host: 127.0.0.1, port: {exporter_port}}}   # where: a free loopback port
"""


@dataclass
class Production:
    """Everything a production go-live here needs, running."""

    root: Path
    plan: Path
    env: dict[str, str]
    database_url: str
    cluster: PodCluster
    idp: IdentityProvider
    stack: MonitoringStack
    clients: list[str]

    def golive(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GOLIVE, *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def events(self) -> list[dict[str, Any]]:
        journal = latest_run((self.root / "state").resolve())
        return journal.events() if journal is not None else []

    def stored(self, ids: list[str]) -> int:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT count(*) FROM assessments WHERE id = ANY(%s::uuid[])", (ids,)
            ).fetchone()
        return int(row[0]) if row else 0

    def load(self, token: str) -> LoadPlan:
        clients = self.clients

        def body(index: int) -> bytes:
            return json.dumps(
                {
                    "clientId": clients[(index * 7) % len(clients)],
                    "loanAmount": 5000 + (index * 7919) % 95000,
                    "loanTerm": (6, 12, 24, 36)[index % 4],
                }
            ).encode()

        def assessment_id(status: int, headers: dict[str, str], body: bytes) -> str:
            match = _ID.search(body) if status == 201 else None
            return match.group(1).decode() if match else ""

        return LoadPlan(
            url=self.cluster.service_url("credit-assessment"),
            path="/api/v1/assessment",
            rate_per_s=RATE_PER_S,
            duration_s=900,
            method="POST",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            connections=8,
            # kube-proxy keeps a connection on the pod it chose: new connections follow a
            # selector change, as clients behind the public Ingress do at once.
            requests_per_connection=20,
            classify=slot_engine_tag,
            note=assessment_id,
        )


def _schema_and_clients(url: str, home: Path) -> list[str]:
    """The database as the previous release left it, with the clients the emulators know."""
    env = {**os.environ, "DATABASE_URL": url, "MIGRATE_ON_START": "false"}
    for argv in (
        [SERVICE, "db", "upgrade", "--revision", PREVIOUS_SCHEMA],
        [SERVICE, "seed", "--clients", str(CLIENTS)],
    ):
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id FROM clients ORDER BY id LIMIT %s", (CLIENTS,)).fetchall()
    return [str(r[0]) for r in rows]


def start_production(
    tmp_path: Path, postgres: PostgresServer, *, faults: bool = False
) -> Iterator[Production]:
    database_url = postgres.create("creditassessment", template=None)
    clients = _schema_and_clients(database_url, tmp_path)
    with (
        IdentityProvider(ttl_s=600) as idp,
        start_dependencies(tmp_path, clients=CLIENTS) as dependencies,
    ):
        pod_env = {
            "DATABASE_URL": database_url,
            "JWT_JWKS_URL": idp.jwks_url,
            **dependencies.pod_env(),
        }
        overrides = {"APP_ENV": "development", "REHEARSAL_FAULTS": "true"} if faults else {}
        version_env = {"1.9.0": {"EXPECTED_SCHEMA_REVISION": PREVIOUS_SCHEMA}}
        with PodCluster(
            tmp_path,
            pod_env=pod_env,
            pod_env_overrides=overrides,
            version_env=version_env,
            prestop_s=1.0,
        ) as cluster:
            cluster.seed()
            exporter_port = free_port()
            with MonitoringStack(
                tmp_path, [cluster.prometheus_sd_file], [f"127.0.0.1:{exporter_port}"]
            ) as stack:
                routes = {
                    "credit-assessment.example.com": cluster.service_url("credit-assessment"),
                    "credit-assessment-blue.internal": cluster.service_url(
                        "credit-assessment-blue"
                    ),
                    "credit-assessment-green.internal": cluster.service_url(
                        "credit-assessment-green"
                    ),
                    "auth.example.com": idp.url,
                    "prometheus.internal": stack.prometheus_url,
                    "alertmanager.internal": stack.alertmanager_url,
                    **dependencies.routes(),
                }
                with Edge(tmp_path, routes, hosts=(*KNOWN_HOSTS, *MONITORING_HOSTS)) as edge:
                    plan = tmp_path / "production-timings.yaml"
                    plan.write_text(override(tmp_path, exporter_port), encoding="utf-8")
                    env = {
                        **os.environ,
                        **edge.env(),
                        "KUBECONFIG": str(cluster.kubeconfig(tmp_path / "kubeconfig")),
                        "DATABASE_URL": database_url,
                        "GOLIVE_CLIENT_ID": idp.client_id,
                        "GOLIVE_CLIENT_SECRET": idp.client_secret,
                    }
                    env.pop("JWT_SECRET", None)
                    yield Production(
                        tmp_path, plan, env, database_url, cluster, idp, stack, clients
                    )


@dataclass
class Operator:
    """The release manager beside the run: approves each stage that asks, and (for the fault
    run) switches the fault on as soon as 50% is verified on every pod."""

    production: Production
    fault_at_weight: int | None = None
    approvals: list[str] = field(default_factory=list)
    golive_metrics: set[str] = field(default_factory=set)
    fault_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Operator:
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _watch(self) -> None:
        seen = 0
        while not self._stop.wait(0.5):
            self._look_at_prometheus()
            events = self.production.events()
            for event in events[seen:]:
                self._on(event)
            seen = len(events)

    def _on(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "approval_requested":
            step = str(event.get("step"))
            done = self.production.golive(
                "approve",
                "--plan",
                str(self.production.plan),
                "--by",
                "Release manager",
                "--note",
                f"{step}: gates green on the dashboard",
            )
            assert done.returncode == 0, done.stdout + done.stderr
            self.approvals.append(step)
        elif (
            kind == "traffic_shifted"
            and self.fault_at_weight is not None
            and event.get("weight") == self.fault_at_weight
            and self.fault_at is None
        ):
            for pod in self.production.cluster.pods("green"):
                httpx.post(f"{pod.url}/rehearsal/faults", json={"errorRate": 0.05}, timeout=5)
            self.fault_at = time.time()

    def _look_at_prometheus(self) -> None:
        try:
            body = httpx.get(
                f"{self.production.stack.prometheus_url}/api/v1/query",
                params={"query": 'count by (__name__) ({job="golive"})'},
                timeout=2,
            ).json()
        except (httpx.HTTPError, ValueError):
            return
        for series in body.get("data", {}).get("result", []):
            self.golive_metrics.add(series["metric"].get("__name__", ""))


def run_go_live(
    production: Production, operator: Operator
) -> tuple[subprocess.CompletedProcess[str], LoadResult, list[str]]:
    token = production.idp.mint(sub="clients-of-the-lender", ttl_s=3600)
    background = BackgroundLoad(production.load(token)).start()
    try:
        with operator:
            run = production.golive("run", "--plain", str(production.plan), timeout_s=900)
    finally:
        result = background.stop()
    ids = [o.note for o in result.outcomes if o.note]
    return run, result, ids


def _by_event(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == kind]


@pytest.fixture
def production(tmp_path: Path, postgres: PostgresServer) -> Iterator[Production]:
    yield from start_production(tmp_path, postgres)


def test_the_shipped_production_plan_goes_live_on_a_cluster_of_real_pods(
    production: Production,
) -> None:
    check = production.golive("check", str(production.plan))
    assert check.returncode == 0, check.stdout + check.stderr

    operator = Operator(production)
    run, load, ids = run_go_live(production, operator)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]

    # Zero downtime under the background load through the live Service.
    assert load.count > 1000 and load.failed == 0, load.summary()
    assert production.stored(ids) == len(ids), "assessments were lost"

    events = production.events()
    green = {p.name for p in production.cluster.pods("green")}
    assert len(green) == 3
    # Every stage started only once every green pod (read through its pod proxy) had the weight.
    for shifted in _by_event(events, "traffic_shifted"):
        read = shifted["instances"]
        assert green <= set(read), (shifted["weight"], read)
        assert all(weight == shifted["weight"] for weight in read.values()), read
    assert [e["weight"] for e in _by_event(events, "traffic_shifted")] == [10, 50, 100]
    # The gates judged Prometheus' sums over the pods, never a scrape through an Ingress.
    measured = _by_event(events, "stage_measured")
    sources = {str(m.get("source")) for m in measured}
    assert measured and all(s.startswith("Prometheus https://prometheus.internal") for s in sources)
    # Approvals before 50% and before 100%, given with golive approve and journaled.
    assert operator.approvals == ["traffic-10", "traffic-50"]
    approved = _by_event(events, "approved")
    assert [a["by"] for a in approved] == ["Release manager", "Release manager"]
    # verify-monitoring: all 6 pods up in Prometheus.
    monitoring = next(
        e for e in _by_event(events, "step_finished") if e["step"] == "verify-monitoring"
    )
    findings = {f["check"]: f for f in monitoring["figures"]["findings"]}
    assert findings["targets/blue/instances"]["passed"], findings
    assert findings["targets/green/instances"]["passed"], findings
    assert "all 3 instances up" in findings["targets/green/instances"]["detail"]
    assert "all 3 instances up" in findings["targets/blue/instances"]["detail"]
    # golive's own metrics were in Prometheus while it ran.
    assert {
        "golive_traffic_weight_percent",
        "golive_stage_deadline_timestamp_seconds",
        "golive_backup_last_verified_timestamp_seconds",
    } <= operator.golive_metrics, operator.golive_metrics
    # The story's deployment: the migration ran as the cluster's Job, green was applied.
    migrate = next(e for e in _by_event(events, "step_finished") if e["step"] == "migrate")
    assert migrate["figures"]["revision_after"] != PREVIOUS_SCHEMA
    assert "--- pod db-migration" in migrate["figures"]["output"]
    deployment = production.cluster.get("deployments", "credit-assessment-green")
    managers = {m.get("manager") for m in deployment["metadata"].get("managedFields", [])}
    assert "golive" in managers
    service = production.cluster.get("services", "credit-assessment")
    assert service["spec"]["selector"]["slot"] == "green"
    # The token never reached the journal, the report or the terminal.
    token_free = [output, *(p.read_text() for p in (production.root / "state").rglob("*.*"))]
    issued = production.idp.issued
    assert issued >= 1
    assert not any(production.idp.client_secret in text for text in token_free)


def test_a_failing_new_engine_at_50_percent_rolls_back_on_every_pod(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    for production in start_production(tmp_path, postgres, faults=True):
        operator = Operator(production, fault_at_weight=50)
        run, load, ids = run_go_live(production, operator)
        output = run.stdout + run.stderr
        assert run.returncode == 13, output[-6000:]  # GateRolledBack
        events = production.events()
        rolled = _by_event(events, "traffic_rolled_back")
        assert rolled and rolled[-1]["verified"], events[-8:]
        # Back to 0% on all three green pods within two judging intervals of the fault.
        assert operator.fault_at is not None
        from datetime import datetime

        back_at = datetime.fromisoformat(rolled[-1]["ts"]).timestamp()
        assert back_at - operator.fault_at <= 2 * INTERVAL_S + 6, back_at - operator.fault_at
        green = {p.name for p in production.cluster.pods("green")}
        for pod in production.cluster.pods("green"):
            flags = httpx.get(f"{pod.url}/flags", timeout=5).json()
            assert flags["flags"]["new-credit-assessment-enabled"]["weightPercent"] == 0, pod.name
        assert green
        # The Service went back to blue, and no assessment was lost.
        service = production.cluster.get("services", "credit-assessment")
        assert service["spec"]["selector"]["slot"] == "blue"
        assert ids and production.stored(ids) == len(ids), "assessments were lost"
        assert load.failed == 0, load.summary()


def test_a_kubernetes_plan_without_prometheus_fails_check_and_a_dry_run_changes_nothing(
    production: Production,
) -> None:
    no_prometheus = production.root / "no-prometheus.yaml"
    no_prometheus.write_text(
        f"extends: {production.plan}\nmonitoring: {{prometheus_url: null}}\n", encoding="utf-8"
    )
    refused = production.golive("check", str(no_prometheus))
    assert refused.returncode == 2
    assert "monitoring.prometheus_url" in refused.stdout + refused.stderr

    before = production.cluster.resource_versions()
    dry = production.golive("run", "--dry-run", str(production.plan), timeout_s=120)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    text = dry.stdout
    assert "nothing was changed" in text
    order = [
        "deployments/credit-assessment-green",  # server-side apply of green
        "jobs",  # the migration Job ... (before deploy: migrate comes first)
        "services/credit-assessment",
        "patch configmap credit-assessment-flags",
        "deployments/credit-assessment-blue",
    ]
    positions = {what: text.find(what) for what in order}
    assert all(p >= 0 for p in positions.values()), (positions, text)
    assert positions["jobs"] < positions["deployments/credit-assessment-green"]
    assert text.count("patch configmap credit-assessment-flags") == 3
    assert production.cluster.resource_versions() == before, "the dry run changed the cluster"
    assert production.events() == [], "the dry run journaled a go-live"
