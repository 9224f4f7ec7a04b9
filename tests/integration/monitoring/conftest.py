"""A real monitoring stack on 127.0.0.1 for the monitoring tests.

Real Prometheus and Alertmanager binaries (Debian packages `prometheus` and
`prometheus-alertmanager`) run on free ports with their data in a temporary
directory. Prometheus uses the committed scrape configuration and rules, with three
test-only changes: target ports, 1 s scrape/evaluation intervals, and every alert's
`for` set to 0 s, 3 s for scrape health (the real durations are covered by
`promtool test rules`).
Alertmanager uses the committed routing tree and inhibition rules, with every receiver
pointed at a webhook receiver inside the test and 1 s grouping.

Scrape targets are stand-in exporters that publish the service's metric names
(`StandInExporter`), so the stack runs without the service; `credit_assessment_ready`
and friends can be switched to make alerts fire and resolve.

Every process is started by the fixtures and stopped by pid; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "deploy" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.local.yml"
RULES_DIR = MONITORING / "prometheus" / "rules"
RULE_TESTS_DIR = MONITORING / "prometheus" / "tests"
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
DASHBOARDS_DIR = MONITORING / "grafana" / "dashboards"

START_TIMEOUT_S = 20.0
HISTOGRAM = "credit_assessment_http_request_duration_seconds"
DECISION_HISTOGRAM = "credit_assessment_decision_duration_seconds"
SHADOW = "credit_assessment_shadow_comparisons_total"
STARTED = "golive_stage_started_timestamp_seconds"
DEADLINE = "golive_stage_deadline_timestamp_seconds"


def binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_binary(*names: str) -> str:
    found = binary(*names)
    if found is None:
        reason = (
            f"{' or '.join(names)} not installed (Debian packages prometheus, "
            "prometheus-alertmanager)"
        )
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.1
) -> Any:
    """Poll `check` until it returns a truthy value; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            last_error = exc
        else:
            if result:
                return result
        time.sleep(every_s)
    raise AssertionError(
        f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last_error!r})"
    )


# --------------------------------------------------------------------------- processes


@dataclass
class ManagedProcess:
    """A child process started by a fixture and stopped by its pid."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        log = log_path.open("wb")
        try:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            log.close()
        return cls(name=name, process=process, log_path=log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def wait_http_ok(self, url: str, timeout_s: float = START_TIMEOUT_S) -> None:
        def ok() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            return httpx.get(url, timeout=1.0).status_code == 200

        try:
            wait_until(ok, timeout_s=timeout_s, what=f"{self.name} at {url}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_tail()}") from None


# --------------------------------------------------------------------------- HTTP stand-ins


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class StandInExporter(_Server):
    """Serves /metrics with the service's metric names; counters grow with time.

    `kind="service"` publishes the credit-assessment metrics (including those of later
    work: bureau, shadow comparisons); `kind="golive"` publishes golive's run metrics.
    """

    def __init__(self, kind: str, version: str = "2.0.0") -> None:
        super().__init__(_ExporterHandler)
        self.kind = kind
        self.version = version
        self.started = time.time()
        self.ready = 1
        self.bureau_circuit_open = 0
        self.db_in_use = 2
        self.lock = threading.Lock()

    def set(self, **values: int) -> None:
        with self.lock:
            for name, value in values.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)

    def render(self) -> str:
        with self.lock:
            elapsed = time.time() - self.started
            if self.kind == "golive":
                return self._golive(time.time())
            return self._service(elapsed)

    def _service(self, t: float) -> str:
        lines = [
            "# TYPE credit_assessments_total counter",
        ]
        per_s = {"APPROVED": 6.0, "DECLINED": 2.5, "REFER": 1.0, "COUNTER_OFFER": 0.5}
        for engine, share in (("new", 0.1), ("legacy", 0.9)):
            for decision, rate in per_s.items():
                value = round(rate * share * t, 3)
                lines.append(
                    f'credit_assessments_total{{decision="{decision}",engine="{engine}"}} {value}'
                )
        lines.append(f"# TYPE {HISTOGRAM} histogram")
        buckets = (
            ("0.05", 0.80),
            ("0.1", 0.95),
            ("0.25", 0.99),
            ("0.5", 0.999),
            ("1.0", 1.0),
            ("+Inf", 1.0),
        )
        for route, method, status, rate in (
            ("/api/v1/assessment", "POST", "201", 10.0),
            ("/api/v1/assessment", "POST", "500", 0.005),
            ("/ready", "GET", "200", 0.2),
        ):
            labels = f'method="{method}",route="{route}",status="{status}"'
            count = rate * t
            for le, share in buckets:
                lines.append(f'{HISTOGRAM}_bucket{{{labels},le="{le}"}} {count * share:.3f}')
            lines.append(f"{HISTOGRAM}_sum{{{labels}}} {count * 0.04:.3f}")
            lines.append(f"{HISTOGRAM}_count{{{labels}}} {count:.3f}")
        lines.append(f"# TYPE {DECISION_HISTOGRAM} histogram")
        for engine, rate in (("new", 1.0), ("legacy", 9.0)):
            count = rate * t
            for le, share in buckets:
                bucket = f'{DECISION_HISTOGRAM}_bucket{{engine="{engine}",le="{le}"}}'
                lines.append(f"{bucket} {count * share:.3f}")
            lines.append(f'{DECISION_HISTOGRAM}_sum{{engine="{engine}"}} {count * 0.02:.3f}')
            lines.append(f'{DECISION_HISTOGRAM}_count{{engine="{engine}"}} {count:.3f}')
        lines += [
            "# TYPE credit_assessment_http_requests_in_flight gauge",
            "credit_assessment_http_requests_in_flight 3",
            "# TYPE credit_assessment_db_pool_connections gauge",
            f'credit_assessment_db_pool_connections{{state="in_use"}} {self.db_in_use}',
            f'credit_assessment_db_pool_connections{{state="idle"}} {10 - self.db_in_use}',
            "# TYPE credit_assessment_db_pool_max_connections gauge",
            "credit_assessment_db_pool_max_connections 10",
            "# TYPE credit_assessment_build_info gauge",
            f'credit_assessment_build_info{{version="{self.version}"}} 1',
            "# TYPE credit_assessment_ready gauge",
            f"credit_assessment_ready {self.ready}",
            "# TYPE credit_assessment_bureau_requests_total counter",
            f'credit_assessment_bureau_requests_total{{outcome="ok"}} {9.8 * t:.3f}',
            f'credit_assessment_bureau_requests_total{{outcome="timeout"}} {0.1 * t:.3f}',
            f'credit_assessment_bureau_requests_total{{outcome="error"}} {0.05 * t:.3f}',
            f'credit_assessment_bureau_requests_total{{outcome="circuit_open"}} {0.0:.3f}',
            "# TYPE credit_assessment_bureau_circuit_open gauge",
            f"credit_assessment_bureau_circuit_open {self.bureau_circuit_open}",
            "# TYPE credit_assessment_shadow_comparisons_total counter",
        ]
        for fld in ("decision", "score", "reasons"):
            lines.append(f'{SHADOW}{{field="{fld}",outcome="match"}} {0.99 * t:.3f}')
            lines.append(f'{SHADOW}{{field="{fld}",outcome="mismatch"}} {0.01 * t:.3f}')
        return "\n".join(lines) + "\n"

    def _golive(self, now: float) -> str:
        return (
            "\n".join(
                [
                    "# TYPE golive_traffic_weight_percent gauge",
                    "golive_traffic_weight_percent 10",
                    "# TYPE golive_stage_started_timestamp_seconds gauge",
                    f'{STARTED}{{stage="switch"}} {self.started - 600:.0f}',
                    f'{STARTED}{{stage="traffic-10"}} {self.started:.0f}',
                    "# TYPE golive_stage_deadline_timestamp_seconds gauge",
                    f'{DEADLINE}{{stage="switch"}} {self.started - 300:.0f}',
                    f'{DEADLINE}{{stage="traffic-10"}} {self.started + 86400:.0f}',
                    "# TYPE golive_backup_last_verified_timestamp_seconds gauge",
                    "golive_backup_last_verified_timestamp_seconds"
                    f'{{database="credit_assessment"}} {now - 3600:.0f}',
                    "# TYPE golive_step_info gauge",
                    'golive_step_info{step="traffic-10",title="Traffic stage: 10%",action="run"} 1',
                    "# TYPE golive_run_paused gauge",
                    "golive_run_paused 0",
                ]
            )
            + "\n"
        )


class _ExporterHandler(_QuietHandler):
    def do_GET(self) -> None:
        exporter: StandInExporter = self.server.owner  # type: ignore[attr-defined]
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = exporter.render().encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the scraper gave up (scrape timeout); nothing to answer


@dataclass
class Delivery:
    received_at: float
    payload: dict[str, Any]


class WebhookReceiver(_Server):
    """Records Alertmanager webhook notifications (one payload per notification)."""

    def __init__(self) -> None:
        super().__init__(_WebhookHandler)
        self.deliveries: list[Delivery] = []
        self.condition = threading.Condition()

    def record(self, payload: dict[str, Any]) -> None:
        with self.condition:
            self.deliveries.append(Delivery(time.time(), payload))
            self.condition.notify_all()

    def wait_for(
        self, match: Callable[[Delivery], bool], *, timeout_s: float, what: str
    ) -> Delivery:
        deadline = time.monotonic() + timeout_s
        with self.condition:
            while True:
                for delivery in self.deliveries:
                    if match(delivery):
                        return delivery
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [
                        (d.payload.get("status"), d.payload.get("commonLabels"))
                        for d in self.deliveries
                    ]
                    raise AssertionError(
                        f"no webhook delivery of {what} within {timeout_s:.0f} s; seen: {seen}"
                    )
                self.condition.wait(timeout=remaining)


class _WebhookHandler(_QuietHandler):
    def do_POST(self) -> None:
        receiver: WebhookReceiver = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length", "0"))
        receiver.record(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


# --------------------------------------------------------------------------- configuration


def prometheus_test_config(
    *,
    blue: str,
    green: str,
    golive: str,
    alertmanager: str,
    self_target: str,
    rules_dir: Path,
) -> dict[str, Any]:
    """The committed local Prometheus configuration with test ports and 1 s intervals."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules_dir / Path(p).name) for p in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    ports = {"blue": blue, "green": green}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            if job["job_name"] == "credit-assessment":
                static["targets"] = [ports[static["labels"]["slot"]]]
            elif job["job_name"] == "golive":
                static["targets"] = [golive]
            elif job["job_name"] == "prometheus":
                static["targets"] = [self_target]
    return config


# Scrape-health alerts keep a few seconds of `for`: one slow scrape on a busy machine must
# not page (and inhibit the alert a test waits for).
SHORT_FOR = {"CreditAssessmentInstanceDown": "3s", "CreditAssessmentTargetsMissing": "3s"}


def rules_without_for(rules_dir: Path) -> None:
    """Copy the committed rules, setting every alert's `for` to 0 s (scrape health: 3 s)."""
    rules_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(RULES_DIR.glob("*.rules.yml")):
        document = yaml.safe_load(source.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = SHORT_FOR.get(rule["alert"], "0s")
        (rules_dir / source.name).write_text(yaml.safe_dump(document, sort_keys=False))


def alertmanager_test_config(webhook_url: str) -> dict[str, Any]:
    """The committed routing tree and inhibitions; every receiver is the test webhook."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"] = {"resolve_timeout": "1m"}
    config["templates"] = [str(ALERTMANAGER_CONFIG.parent / t) for t in config.get("templates", [])]

    def fast(route: dict[str, Any]) -> None:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        for child in route.get("routes", []):
            fast(child)

    fast(config["route"])
    config["receivers"] = [
        {
            "name": r["name"],
            "webhook_configs": [{"url": f"{webhook_url}/{r['name']}", "send_resolved": True}],
        }
        for r in config["receivers"]
    ]
    return config


# --------------------------------------------------------------------------- the stack


@dataclass
class MonitoringStack:
    prometheus_url: str
    alertmanager_url: str
    blue: StandInExporter | None
    green: StandInExporter | None
    golive: StandInExporter | None
    webhook: WebhookReceiver
    processes: list[ManagedProcess] = field(default_factory=list)

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": expr}, timeout=5.0
        )
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(
                f"query failed: {expr!r}: {body.get('errorType')}: {body.get('error')}"
            )
        return list(body["data"]["result"])

    def wait_for_samples(self, expr: str, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        return wait_until(
            lambda: self.query(expr), timeout_s=timeout_s, what=f"samples of {expr}", every_s=0.25
        )


@contextlib.contextmanager
def run_stack(
    workdir: Path,
    *,
    blue_target: str | None = None,
    green_target: str | None = None,
    golive_target: str | None = None,
) -> Iterator[MonitoringStack]:
    """Start exporters (unless targets are given: a real service, golive's own exporter), a
    webhook, Alertmanager and Prometheus."""
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("alertmanager", "prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    servers: list[_Server] = []
    stack: MonitoringStack | None = None
    try:
        blue = green = None
        if blue_target is None:
            blue = StandInExporter("service")
            servers.append(blue)
            blue_target = f"127.0.0.1:{blue.port}"
        if green_target is None:
            green = StandInExporter("service")
            servers.append(green)
            green_target = f"127.0.0.1:{green.port}"
        golive = None
        if golive_target is None:
            golive = StandInExporter("golive")
            servers.append(golive)
            golive_target = f"127.0.0.1:{golive.port}"
        webhook = WebhookReceiver()
        servers.append(webhook)
        for server in servers:
            server.start()

        am_port, prom_port = free_port(), free_port()
        stack = MonitoringStack(
            prometheus_url=f"http://127.0.0.1:{prom_port}",
            alertmanager_url=f"http://127.0.0.1:{am_port}",
            blue=blue,
            green=green,
            golive=golive,
            webhook=webhook,
        )
        am_config = workdir / "alertmanager.yml"
        am_config.write_text(yaml.safe_dump(alertmanager_test_config(webhook.url), sort_keys=False))
        alertmanager = ManagedProcess.start(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={am_config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            workdir / "alertmanager.log",
        )
        stack.processes.append(alertmanager)

        rules_without_for(workdir / "rules")
        prom_config = workdir / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump(
                prometheus_test_config(
                    blue=blue_target,
                    green=green_target,
                    golive=golive_target,
                    alertmanager=f"127.0.0.1:{am_port}",
                    self_target=f"127.0.0.1:{prom_port}",
                    rules_dir=workdir / "rules",
                ),
                sort_keys=False,
            )
        )
        prometheus = ManagedProcess.start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            workdir / "prometheus.log",
        )
        stack.processes.append(prometheus)
        alertmanager.wait_http_ok(f"{stack.alertmanager_url}/-/ready")
        prometheus.wait_http_ok(f"{stack.prometheus_url}/-/ready")
        yield stack
    finally:
        if stack is not None:
            for process in reversed(stack.processes):
                process.stop()
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def monitoring_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoringStack]:
    """One stack for the session: stand-in blue, green and golive targets."""
    with run_stack(tmp_path_factory.mktemp("monitoring-stack")) as stack:
        # Scrapes and the first rule evaluations have happened once recorded series exist.
        stack.wait_for_samples('up{job="credit-assessment"} == 1')
        stack.wait_for_samples("slot:credit_assessment_http_requests:rate5m")
        yield stack


@pytest.fixture
def stack_factory() -> Callable[..., contextlib.AbstractContextManager[MonitoringStack]]:
    """`run_stack` for tests that need their own stack (e.g. against the real service)."""
    return run_stack


@pytest.fixture
def alertmanager_e2e_config() -> Callable[[str], dict[str, Any]]:
    """The function that derives the end-to-end Alertmanager configuration."""
    return alertmanager_test_config


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_binary("amtool")


@pytest.fixture
def managed_process() -> Iterator[Callable[..., ManagedProcess]]:
    """Start a process that is stopped by pid at teardown."""
    started: list[ManagedProcess] = []

    def start(
        name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        process = ManagedProcess.start(name, args, log_path, env=env or dict(os.environ))
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def free_tcp_port() -> Callable[[], int]:
    return free_port


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until
