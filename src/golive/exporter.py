"""golive's own metrics while a go-live runs: a Prometheus endpoint fed by the journal.

Nothing in the steps sets a gauge. ``RunFigures`` is a pure fold over the journal's events
(``RunFigures.fold(events)``, then ``apply`` for each new one), so a resumed three-day go-live
shows the same weight, stage start and deadline as before the crash. ``RunExporter`` serves
those figures from a registry of its own (never the global one) on the plan's
``monitoring.exporter`` address, while ``golive run`` or ``golive rollback`` holds the run:

    golive_run_info{run, plan, release}                   1 for the run being exported
    golive_run_outcome{outcome}                           1 for the run's state: running,
                                                          interrupted, succeeded, rolled_back, ...
    golive_run_paused                                     1 while an operator or a gate paused it
    golive_step_info{step, title, action}                 1 for the step running (action run) or
                                                          being undone (action undo)
    golive_step_outcome{step, outcome}                    1 per step: running, succeeded, failed,
                                                          interrupted, undone, undo_failed
    golive_traffic_weight_percent                         the flag's weight golive set and verified
    golive_stage_started_timestamp_seconds{stage}         first start of each traffic stage
    golive_stage_deadline_timestamp_seconds{stage}        the deadline of the stage in progress
                                                          (moved on by every pause, as the stage's
                                                          countdown is)
    golive_backup_last_verified_timestamp_seconds{database}  when verify-backup proved the backup
    golive_exporter_fold_errors_total                     journal events the fold could not read

A series is absent until the journal says something about it (no weight before the first
traffic stage, no backup time before ``verify-backup`` passed): absent is "not known", never 0.
Labels carry step names, titles, the plan's name and the release: no secret, no person.

The address bound is journaled (``exporter_started`` with ``url``) and written as a Prometheus
file-based service discovery file, ``<state_dir>/exporter/targets.json`` (``[]`` once stopped),
so a Prometheus started before the run — the rehearsal's — finds a port chosen at run time.

The same server serves the live page (``/live``, polling ``/live.json``;
``golive.report.live``): read-only, GET only, rebuilt from the journal at every request.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from golive import journal as j
from golive.errors import ExporterAddressError
from golive.plan import Exporter, Plan
from golive.report import live
from golive.steps.backup import VerifyBackup
from golive.steps.shift import TRAFFIC_ROLLED_BACK, TRAFFIC_SHIFTED

EXPORTER_STARTED = "exporter_started"
# The live page draws only what it carries: inline script and styles, no request elsewhere.
LIVE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; connect-src 'self'"
)
NOT_STARTED = "exporter_not_started"
DISCOVERY_FILE = Path("exporter") / "targets.json"


def timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


# --- the fold ----------------------------------------------------------------------------------


@dataclass
class StageFigures:
    """One traffic stage: when it first started, and its deadline while it is in progress.

    The stage counts its deadline as ``golive.steps.shift`` does: from the verified weight on
    its first attempt, from its first start on a resumed one, paused time not counted.
    """

    started: float
    counted_from: float
    deadline_s: float | None = None
    paused_s: float = 0.0
    open: bool = True

    @property
    def deadline(self) -> float | None:
        if self.deadline_s is None or not self.open:
            return None
        return self.counted_from + self.deadline_s + self.paused_s


@dataclass
class RunFigures:
    """What golive exports, rebuilt from the journal's events alone."""

    run: str | None = None
    outcome: str = "not_started"
    weight: float | None = None
    step: tuple[str, str, str] | None = None  # (name, title, action: run | undo)
    outcomes: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    first_started: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    stages: dict[str, StageFigures] = field(default_factory=dict)
    previous_weight: dict[str, float] = field(default_factory=dict)
    backup_verified_at: float | None = None
    paused_since: float | None = None

    @classmethod
    def fold(cls, events: Iterable[dict[str, Any]]) -> RunFigures:
        figures = cls()
        for event in events:
            figures.apply(event)
        return figures

    def apply(self, e: dict[str, Any]) -> None:
        kind = e["event"]
        handler = self._handlers().get(kind)
        if handler is not None:
            handler(e)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {
            j.RUN_STARTED: self._run_started,
            j.RUN_RESUMED: lambda e: self._set_outcome("running"),
            j.RUN_INTERRUPTED: lambda e: self._set_outcome("interrupted"),
            j.RUN_FINISHED: lambda e: self._set_outcome(str(e.get("outcome", "finished"))),
            j.STEP_STARTED: self._step_started,
            j.STEP_FINISHED: lambda e: self._step_ended(e, "succeeded"),
            j.STEP_FAILED: lambda e: self._step_ended(e, str(e.get("outcome", "failed"))),
            j.UNDO_STARTED: self._undo_started,
            j.UNDO_FINISHED: self._undone,
            j.UNDO_FAILED: lambda e: self._step_ended(e, "undo_failed"),
            j.PAUSED: self._paused,
            j.RESUMED: self._resumed,
            TRAFFIC_SHIFTED: self._shifted,
            TRAFFIC_ROLLED_BACK: self._rolled_back,
        }

    def _run_started(self, e: dict[str, Any]) -> None:
        self.run, self.outcome = e.get("run_id"), "running"

    def _set_outcome(self, outcome: str) -> None:
        self.outcome, self.step, self.paused_since = outcome, None, None
        for stage in self.stages.values():
            stage.open = False

    def _step_started(self, e: dict[str, Any]) -> None:
        name, title = e["step"], str(e.get("title", ""))
        self.first_started.setdefault(name, timestamp(e))
        self.attempts[name] = self.attempts.get(name, 0) + 1
        self.titles[name] = title
        self.outcomes[name] = "running"
        self.step = (name, title, "run")

    def _step_ended(self, e: dict[str, Any], outcome: str) -> None:
        name = e["step"]
        self.outcomes[name] = outcome
        if self.step is not None and self.step[0] == name:
            self.step = None
        if name in self.stages:
            self.stages[name].open = False
        if name == VerifyBackup.name and e["event"] == j.STEP_FINISHED:
            self.backup_verified_at = timestamp(e)

    def _undo_started(self, e: dict[str, Any]) -> None:
        name = e["step"]
        self.step = (name, self.titles.get(name, ""), "undo")

    def _undone(self, e: dict[str, Any]) -> None:
        self._step_ended(e, "undone")
        previous = self.previous_weight.get(e["step"])
        if previous is not None and self.weight is not None:
            self.weight = min(self.weight, previous)  # a stage's undo restores the stage before

    def _paused(self, e: dict[str, Any]) -> None:
        if self.paused_since is None:
            self.paused_since = timestamp(e)

    def _resumed(self, e: dict[str, Any]) -> None:
        if self.paused_since is None:
            return
        pause = max(0.0, timestamp(e) - self.paused_since)
        self.paused_since = None
        for stage in self.stages.values():
            if stage.open:  # a pause freezes the stage's countdown: its deadline moves on
                stage.paused_s += pause

    def _shifted(self, e: dict[str, Any]) -> None:
        name = e["step"]
        self.weight = float(e["weight"])
        self.previous_weight[name] = float(e.get("previous", 0))
        deadline_s = e.get("deadline_s")
        first = self.first_started.get(name, timestamp(e))
        resumed = self.attempts.get(name, 1) > 1
        self.stages[name] = StageFigures(
            started=first,
            counted_from=first if resumed else timestamp(e),
            deadline_s=float(deadline_s) if deadline_s is not None else None,
        )

    def _rolled_back(self, e: dict[str, Any]) -> None:
        if e.get("verified"):
            self.weight = float(e["to"])


# --- the collector -----------------------------------------------------------------------------


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels or [])


class RunCollector:
    """Renders ``RunFigures`` for every scrape; the journal's listener feeds it."""

    def __init__(self, plan_name: str, release: str, database: str) -> None:
        self.labels = {"plan": plan_name, "release": release, "database": database}
        self.figures = RunFigures()
        self.fold_errors = 0
        self.lock = threading.Lock()

    def reset(self, events: Iterable[dict[str, Any]]) -> None:
        figures = RunFigures()
        errors = 0
        for event in events:
            try:
                figures.apply(event)
            except (KeyError, TypeError, ValueError):
                errors += 1
        with self.lock:
            self.figures, self.fold_errors = figures, self.fold_errors + errors

    def observe(self, event: dict[str, Any]) -> None:
        """The journal's listener: never raises into ``Journal.append``."""
        with self.lock:
            try:
                self.figures.apply(event)
            except (KeyError, TypeError, ValueError):
                self.fold_errors += 1

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            yield from self._metrics(self.figures)
            errors = CounterMetricFamily(
                "golive_exporter_fold_errors", "Journal events the exporter could not read"
            )
            errors.add_metric([], self.fold_errors)
            yield errors

    def _metrics(self, f: RunFigures) -> Iterator[Metric]:
        info = _gauge("golive_run_info", "The go-live run exported", ["run", "plan", "release"])
        if f.run is not None:
            info.add_metric([f.run, self.labels["plan"], self.labels["release"]], 1)
        outcome = _gauge("golive_run_outcome", "The run's state (1)", ["outcome"])
        outcome.add_metric([f.outcome], 1)
        paused = _gauge("golive_run_paused", "1 while the run is paused")
        paused.add_metric([], 1 if f.paused_since is not None else 0)
        step = _gauge("golive_step_info", "The step running or undone", ["step", "title", "action"])
        if f.step is not None:
            step.add_metric(list(f.step), 1)
        outcomes = _gauge("golive_step_outcome", "Each step's outcome (1)", ["step", "outcome"])
        for name, result in f.outcomes.items():
            outcomes.add_metric([name, result], 1)
        yield from (info, outcome, paused, step, outcomes)
        yield from self._traffic(f)

    def _traffic(self, f: RunFigures) -> Iterator[Metric]:
        weight = _gauge("golive_traffic_weight_percent", "Flag weight set and verified, 0-100")
        if f.weight is not None:
            weight.add_metric([], f.weight)
        started = _gauge(
            "golive_stage_started_timestamp_seconds", "First start of a stage", ["stage"]
        )
        deadline = _gauge(
            "golive_stage_deadline_timestamp_seconds", "Deadline of the stage running", ["stage"]
        )
        for name, stage in f.stages.items():
            started.add_metric([name], stage.started)
            if stage.deadline is not None:
                deadline.add_metric([name], stage.deadline)
        backup = _gauge(
            "golive_backup_last_verified_timestamp_seconds",
            "When verify-backup last proved the backup restores",
            ["database"],
        )
        if f.backup_verified_at is not None:
            backup.add_metric([self.labels["database"]], f.backup_verified_at)
        yield from (weight, started, deadline, backup)


# --- the endpoint ------------------------------------------------------------------------------


def discovery_file(state_dir: Path) -> Path:
    """Where the exporter's address is published for Prometheus' ``file_sd_configs``."""
    return state_dir / DISCOVERY_FILE


def write_discovery(path: Path, address: str | None) -> None:
    targets = [{"targets": [address], "labels": {}}] if address else []
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(targets) + "\n", encoding="utf-8")
    tmp.replace(path)


def _reachable(host: str) -> str:
    """The address a scraper on this machine uses for ``host`` (any-address binds: loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - naming the any-address, not binding it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class RunExporter:
    """The HTTP endpoint of one run's figures; ``start`` binds, ``stop`` frees the port."""

    def __init__(self, settings: Exporter, plan: Plan) -> None:
        self.settings = settings
        self.collector = RunCollector(plan.name, plan.release.version, plan.database.name)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self.discovery = discovery_file(plan.state_dir.resolve())
        self.live = LivePage(plan)
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the exporter is not started")
        return int(self._server.server_port)

    @property
    def address(self) -> str:
        return f"{_reachable(self.settings.host)}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    @property
    def live_url(self) -> str:
        return f"http://{self.address}/live"

    def start(self) -> RunExporter:
        host, port = self.settings.host, self.settings.port
        try:
            self._server, self._thread = _serve(host, port, self._app)
        except (OSError, socket.gaierror) as exc:
            raise _bind_error(host, port, exc) from exc
        write_discovery(self.discovery, self.address)
        return self

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """``/live`` and ``/live.json`` (the live page, read-only); anything else: metrics."""
        path = str(environ.get("PATH_INFO", ""))
        if path not in ("/live", "/live.json"):
            return self._metrics_app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"read-only\n"]
        if path == "/live":
            body, kind = live.PAGE.encode(), "text/html; charset=utf-8"
        else:
            body, kind = json.dumps(self.live.state(), default=str).encode(), "application/json"
        start_response(
            "200 OK",
            [
                ("Content-Type", kind),
                ("Cache-Control", "no-store"),
                ("Content-Security-Policy", LIVE_CSP),
            ],
        )
        return [body]

    def follow(self, journal: j.Journal) -> None:
        """Rebuild the figures from the journal so far, then fold every event appended."""
        self.live.journal = journal
        self.collector.reset(journal.events())
        self._unsubscribe = journal.subscribe(self.collector.observe)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server is not None:
            # First, so discovery drops the target before a scrape could fail.
            with contextlib.suppress(OSError):
                write_discovery(self.discovery, None)
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(host: str, port: int, app: Any) -> tuple[WSGIServer, threading.Thread]:
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(_ThreadingServer):
        address_family = family

    server = make_server(str(sockaddr[0]), port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="golive-exporter", daemon=True)
    thread.start()
    return server, thread


@dataclass
class LivePage:
    """The live page's state from the journal; the charts drawn again at most every
    ``charts_every_s`` (matplotlib takes a while), the rest at every request."""

    plan: Plan
    journal: j.Journal | None = None
    charts_every_s: float = 5.0
    _charts: tuple[float, int, str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> dict[str, Any]:
        events = self.journal.events() if self.journal is not None else []
        result = live.live_state(events, self.plan, with_charts=False)
        now = time.time()
        with self._lock:
            cached = self._charts
            if cached is None or (
                cached[1] != len(events) and now - cached[0] > self.charts_every_s
            ):
                state = j.RunState.fold(events)
                cached = self._charts = (
                    now,
                    len(events),
                    live.charts_html(events, state, self.plan),
                )
        result["charts"], result["events"], result["now"] = cached[2], cached[1], now
        return result


def _bind_error(host: str, port: int, exc: OSError) -> ExporterAddressError:
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ExporterAddressError(
            f"golive's metrics port {where} is already in use",
            hint=f"stop what listens there (ss -ltnp | grep :{port}), or set another "
            "monitoring.exporter.port in the plan (0: any free port; the bound address is "
            "journaled as exporter_started)",
        )
    return ExporterAddressError(
        f"golive cannot serve its metrics on {where}: {exc.strerror or exc}",
        hint="set monitoring.exporter.host to an address of this machine (127.0.0.1, or "
        "0.0.0.0 inside a pod), or monitoring.exporter: null to run without golive's metrics",
    )


@contextlib.contextmanager
def exporting(plan: Plan) -> Iterator[RunExporter | None]:
    """The plan's exporter, started (``None`` when the plan turns it off); stopped on exit."""
    settings = plan.monitoring.exporter
    if settings is None:
        yield None
        return
    exporter = RunExporter(settings, plan).start()
    try:
        yield exporter
    finally:
        exporter.stop()
