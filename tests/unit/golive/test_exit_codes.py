"""Every exit code of docs/golive.md, produced for real through ``golive.cli.main`` and checked;
and the table itself, against the error tree: one outcome per code, every class listed once.

The go-live outcomes run the real runner on the in-tree FakeTarget (``golive run`` with
``targets.create`` pointed at it): real steps where they need no database — deploy, preflight,
the hold's gate against a local ``/metrics``, verify-backup — and a stand-in step where one would
(the validation gate). Servers are local: a Vault that knows no secret, a service that knows no
client, closed ports for what must be unreachable.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import pkgutil
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

import golive
from golive import cli, errors
from golive.errors import (
    GoLiveError,
    TargetError,
    TargetUnreachableError,
    ValidationGateFailed,
    run_outcome,
)
from golive.journal import Control, RunLock
from golive.plan import Plan
from golive.rehearsal import rehearse
from golive.steps.backup import VerifyBackup
from golive.steps.base import Clock, StepContext, StepResult
from golive.steps.deploy import DeployGreen
from golive.steps.hold import Hold
from golive.steps.preflight import Preflight
from golive.targets.fake import FakeTarget

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs/golive.md"


# --- the scene: a plan in tmp_path, the CLI, the runner on a FakeTarget ------------------------


@dataclass
class Outcome:
    code: int
    err: str


class VirtualClock(Clock):
    """The dwell's clock: sleeping moves time on at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Stand:
    """A step doing what it is told: a stand-in where the real step would need a database."""

    def __init__(
        self,
        name: str,
        run: Callable[[StepContext], None] | None = None,
        undo: Callable[[StepContext], str | None] | None = None,
    ) -> None:
        self.name = name
        self.title = f"stand-in {name}"
        self._run = run
        self._undo = undo

    def run(self, ctx: StepContext) -> StepResult:
        if self._run is not None:
            self._run(ctx)
        return StepResult(f"{self.name} done")

    def undo(self, ctx: StepContext) -> str | None:
        return self._undo(ctx) if self._undo is not None else None

    def expected_s(self, plan: Plan) -> float:
        return 0

    def manual(self, plan: Plan) -> list[str]:
        return []


def fails(error: Exception) -> Callable[[StepContext], None]:
    def run(ctx: StepContext) -> None:
        raise error

    return run


@dataclass
class Scene:
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    plan_path: Path = field(init=False)

    def __post_init__(self) -> None:
        data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
        data["target"]["state_dir"] = str(self.tmp_path / "state")
        data["database"]["backup_dir"] = str(self.tmp_path / "backups")
        self.plan_path = self.tmp_path / "plan.yaml"
        self.plan_path.write_text(yaml.safe_dump(data), encoding="utf-8")

    @property
    def state_dir(self) -> Path:
        return (self.tmp_path / "state").resolve()

    def golive(self, *args: str) -> Outcome:
        self.capsys.readouterr()
        code = cli.main(list(args))
        return Outcome(code, self.capsys.readouterr().err)

    def run(self, steps: list[Any], target: FakeTarget | None = None) -> Outcome:
        """``golive run PLAN`` with these steps on a FakeTarget and a virtual clock."""
        fake = target if target is not None else FakeTarget()
        self.monkeypatch.setattr("golive.targets.create", lambda plan: fake)
        self.monkeypatch.setattr("golive.runner.build_steps", lambda plan: steps)
        self.monkeypatch.setattr("golive.runner.Clock", VirtualClock)
        return self.golive("run", str(self.plan_path), "--plain")


@pytest.fixture
def scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Scene:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)  # the preflight's secrets check
    return Scene(tmp_path, monkeypatch, capsys)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class VaultKnowingNoSecret(_Handler):
    """Accepts the token; has no metadata for any path (KV v2 answers 404)."""

    def do_GET(self) -> None:
        if self.path.startswith("/v1/auth/token/lookup-self"):
            self.send(200, {"data": {"id": "token", "policies": ["default"]}})
        else:
            self.send(404, {"errors": []})


H = "credit_assessment_http_request_duration_seconds"
API = 'method="POST",route="/api/v1/assessment"'


def exposition(ok: int, failed: int) -> str:
    lines = [f"# HELP {H} Request duration"]
    for status, total in (("201", ok), ("503", failed)):
        for le in ("0.01", "0.1", "+Inf"):
            lines.append(f'{H}_bucket{{le="{le}",{API},status="{status}"}} {total}')
        lines.append(f'{H}_count{{{API},status="{status}"}} {total}')
    return "\n".join(lines) + "\n"


class GreenFailingItsRequests(_Handler):
    """Green's /metrics: healthy at the first scrape, half of the next 1,000 requests 503."""

    scrapes: ClassVar[int] = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        ok, failed = (100, 0) if self.scrapes == 1 else (600, 500)
        self.send(200, exposition(ok, failed), "text/plain; version=0.0.4")


class ServiceKnowingNoClient(_Handler):
    """The evaluate endpoint answers 422 (unknown client) to every application."""

    def do_POST(self) -> None:
        self.body()
        self.send(422, {"title": "Unknown client"})


@dataclass
class ServingTarget(FakeTarget):
    """The fake target, with green's URL pointing at a real local server."""

    green_url: str = ""

    def slot_url(self, slot: Any) -> str:
        return self.green_url if slot == "green" else super().slot_url(slot)


MANIFESTS = """\
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: vault}
spec: {provider: {vault: {server: "https://vault.example", path: kv, version: v2}}}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: app}
spec:
  secretStoreRef: {name: vault, kind: SecretStore}
  target: {name: app-secrets}
  data:
    - {secretKey: database-url, remoteRef: {key: app/prod/database-url, property: value}}
"""


# --- every outcome, produced -----------------------------------------------------------------

Producer = Callable[[Scene], Outcome]
OUTCOMES: list[tuple[int, str, Producer]] = []


def produces(code: int, says: str) -> Callable[[Producer], Producer]:
    """Register a producer of the outcome ``code``; its stderr must contain ``says``."""

    def register(producer: Producer) -> Producer:
        OUTCOMES.append((code, says, producer))
        return producer

    return register


@produces(0, "")
def a_go_live_that_succeeds(scene: Scene) -> Outcome:
    return scene.run([DeployGreen(), Stand("hold")])


@produces(1, "Traceback (most recent call last)")
def a_defect(scene: Scene) -> Outcome:
    crash = (
        "import sys\n"
        "from golive import cli, control\n"
        "control.status = lambda path: 1 / 0\n"
        f"sys.exit(cli.main(['status', '--plan', {str(scene.plan_path)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", crash], capture_output=True, text=True, timeout=60, check=False
    )
    return Outcome(done.returncode, done.stderr)


@produces(2, "invalid plan")
def an_invalid_plan(scene: Scene) -> Outcome:
    data = yaml.safe_load(scene.plan_path.read_text(encoding="utf-8"))
    data["gates"]["max_error_ratio"] = "lots"
    bad = scene.tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    return scene.golive("check", str(bad), "--structure-only")


@produces(2, "the following arguments are required: PLAN")
def a_bad_option(scene: Scene) -> Outcome:
    scene.capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        cli.main(["run"])
    return Outcome(int(exit.value.code or 0), scene.capsys.readouterr().err)


@produces(2, "no database: pass --database-url or set DATABASE_URL")
def a_missing_setting(scene: Scene) -> Outcome:
    scene.monkeypatch.delenv("DATABASE_URL", raising=False)
    return scene.golive("db", "backup", "--dir", str(scene.tmp_path / "backups"))


@produces(3, "not valid YAML")
def unreadable_manifests(scene: Scene) -> Outcome:
    scene.monkeypatch.setenv("VAULT_TOKEN", "token")
    broken = scene.tmp_path / "manifests.yaml"
    broken.write_text("kind: [SecretStore\n", encoding="utf-8")
    vault = f"http://127.0.0.1:{closed_port()}"
    return scene.golive("secrets", "check", "--vault-addr", vault, "--manifests", str(broken))


def secrets_check(scene: Scene, vault: str) -> Outcome:
    scene.monkeypatch.setenv("VAULT_TOKEN", "token")
    manifests = scene.tmp_path / "manifests.yaml"
    manifests.write_text(MANIFESTS, encoding="utf-8")
    return scene.golive("secrets", "check", "--vault-addr", vault, "--manifests", str(manifests))


@produces(4, "is unreachable")
def vault_unreachable(scene: Scene) -> Outcome:
    return secrets_check(scene, f"http://127.0.0.1:{closed_port()}")


@produces(5, "1 required secret(s) missing in Vault: kv/app/prod/database-url")
def secrets_missing(scene: Scene) -> Outcome:
    with serving(VaultKnowingNoSecret) as vault:
        return secrets_check(scene, vault)


@produces(6, "refusing to switch: green is not running")
def the_router_refuses(scene: Scene) -> Outcome:
    target = FakeTarget()
    scene.monkeypatch.setattr("golive.targets.create", lambda plan: target)
    return scene.golive("switch", "green", "--plan", str(scene.plan_path))


@produces(6, "preflight failed, nothing was changed")
def a_preflight_that_finds_the_target_down(scene: Scene) -> Outcome:
    preflight = Preflight(probe=lambda url, name: 1_000_000)
    return scene.run([preflight, DeployGreen()], FakeTarget(reachable=False))


@produces(7, "another golive command holds")
def another_go_live_holds_the_lock(scene: Scene) -> Outcome:
    with RunLock(scene.state_dir):
        return scene.run([Stand("a")])


@produces(8, "step 'deploy-green' failed: no capacity for green")
def a_step_fails(scene: Scene) -> Outcome:
    refusing = FakeTarget(fail_on={"deploy:green": TargetError("no capacity for green")})
    return scene.run([DeployGreen()], refusing)


@produces(9, "rollback requested by an operator")
def an_operator_asks_for_the_rollback(scene: Scene) -> Outcome:
    def ask(ctx: StepContext) -> None:
        Control(ctx.plan.state_dir.resolve()).write(rollback=True)  # what `golive rollback` does

    return scene.run([DeployGreen(), Stand("ask", run=ask), Stand("next")])


@produces(10, "the rollback could not undo everything")
def an_undo_fails(scene: Scene) -> Outcome:
    stuck = FakeTarget(fail_on={"stop:green": TargetError("green will not stop")})
    return scene.run([DeployGreen(), Stand("smoke", run=fails(RuntimeError("boom")))], stuck)


@produces(11, "no readable manifest")
def a_db_command_fails(scene: Scene) -> Outcome:
    database = f"postgresql://golive@127.0.0.1:{closed_port()}/credit"
    missing = str(scene.tmp_path / "missing.dump")
    return scene.golive("db", "verify", missing, "--database-url", database)


@produces(12, "step 'verify-backup' failed: no backup recorded")
def a_database_step_fails(scene: Scene) -> Outcome:
    return scene.run([VerifyBackup()])


@produces(13, "step 'hold' failed: gate failed during hold")
def a_gate_breaches(scene: Scene) -> Outcome:
    GreenFailingItsRequests.scrapes = 0
    with serving(GreenFailingItsRequests) as green:
        return scene.run([DeployGreen(), Hold()], ServingTarget(green_url=green))


@produces(14, "step 'validate' failed: validation gate failed")
def the_validation_gate_fails(scene: Scene) -> Outcome:
    breach = ValidationGateFailed("validation gate failed: 12% unexplained > 5% tolerance")
    return scene.run([DeployGreen(), Stand("validate", run=fails(breach))])


@produces(15, "smoke tests failed against")
def a_smoke_test_fails(scene: Scene) -> Outcome:
    scene.monkeypatch.setenv("GOLIVE_SMOKE_TOKEN", "token")
    url = f"http://127.0.0.1:{closed_port()}"
    return scene.golive("smoke", url, "--token-env", "GOLIVE_SMOKE_TOKEN")


@produces(16, "validation failed")
def validation_flags(scene: Scene) -> Outcome:
    from golive.validation.export import REQUIRED

    scene.monkeypatch.setenv("API_TOKEN", "token")
    rows = [
        f"A-{i},00000000-0000-0000-0000-{i:012d},20000,24,APPROVE,700,B,,2026-03-01T09:{i:02d}:00Z"
        for i in range(5)
    ]
    export = scene.tmp_path / "export.csv"
    export.write_text("\n".join([",".join(REQUIRED), *rows]) + "\n", encoding="utf-8")
    out = str(scene.tmp_path / "validation")
    with serving(ServiceKnowingNoClient) as service:
        return scene.golive("validate", "--export", str(export), "--service", service, "--out", out)


@produces(17, "cannot connect to the database")
def validation_cannot_read(scene: Scene) -> Outcome:
    database = f"postgresql://golive@127.0.0.1:{closed_port()}/credit"
    scene.monkeypatch.setenv("GOLIVE_VALIDATE_DATABASE", database)
    out = str(scene.tmp_path / "validation")
    return scene.golive("validate", "--database-url-env", "GOLIVE_VALIDATE_DATABASE", "--out", out)


@produces(18, "2 of 1000 background requests failed")
def the_rehearsal_sees_downtime(scene: Scene) -> Outcome:
    # The rehearsal itself takes minutes: its outcome is given, judged and reported for real.
    figures = {
        "requests": 1000,
        "failed": 2,
        "failures": {"ConnectionResetError": 2},
        "p99_ms": 40,
        "window_s": 10,
        "windows": [{"p99_ms": 40}],
        "switch_windows": [],
        "slow_windows": [],
    }

    def rehearsed(plan: Plan, *, observer: Any, keep: bool = False) -> rehearse.RehearsalOutcome:
        error = rehearse.zero_downtime_error(figures, None)
        return rehearse.RehearsalOutcome(None, figures, error, 1.0)

    scene.monkeypatch.setattr(rehearse, "rehearse", rehearsed)
    return scene.golive("rehearse", str(scene.plan_path), "--plain")


@produces(19, "could not record the request")
def a_request_cannot_be_recorded(scene: Scene) -> Outcome:
    (scene.state_dir / "control.json" / "in-the-way").mkdir(parents=True)
    return scene.golive("pause", "--plan", str(scene.plan_path))


@produces(20, "no stage is waiting for approval")
def an_approval_with_no_stage_waiting(scene: Scene) -> Outcome:
    return scene.golive("approve", "--plan", str(scene.plan_path), "--by", "Chanda Mwale")


@produces(21, "the maintenance window is closed")
def a_database_step_outside_the_window(scene: Scene) -> Outcome:
    data = yaml.safe_load(scene.plan_path.read_text(encoding="utf-8"))
    data["maintenance_window"] = {  # long past: closed whenever the test runs
        "start": "2020-01-04T22:00:00+02:00",
        "end": "2020-01-05T02:00:00+02:00",
        "timezone": "Africa/Lusaka",
    }
    scene.plan_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return scene.run([Stand("preflight"), VerifyBackup()])


@produces(22, "1 blocking finding(s)")
def a_security_scan_with_a_high_finding(scene: Scene) -> Outcome:
    fixtures = REPO / "tests/fixtures/audit"
    return scene.golive(
        "audit",
        *("--out", str(scene.tmp_path / "audit"), "--version", "2.0.0"),
        *("--pip-audit-json", str(fixtures / "pip-audit-clean.json")),
        *("--bandit-json", str(fixtures / "bandit-high.json")),
    )


@produces(23, "could not create the run directory")
def the_state_directory_cannot_be_written(scene: Scene) -> Outcome:
    ran: list[str] = []
    (scene.state_dir / "runs").parent.mkdir(parents=True, exist_ok=True)
    (scene.state_dir / "runs").write_text("a file where the runs' directory must be\n")
    outcome = scene.run([Stand("preflight", run=lambda ctx: ran.append("preflight"))])
    assert ran == [], "a step ran with no journal"
    return outcome


@produces(130, "interrupted during hold")
def a_signal_during_a_run(scene: Scene) -> Outcome:
    def interrupt(ctx: StepContext) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(500):  # the handler raises in here
            time.sleep(0.01)

    return scene.run([DeployGreen(), Stand("hold", run=interrupt)])


@produces(130, "interrupted")
def ctrl_c_outside_a_run(scene: Scene) -> Outcome:
    def status(path: Path) -> str:
        raise KeyboardInterrupt

    scene.monkeypatch.setattr("golive.control.status", status)
    return scene.golive("status", "--plan", str(scene.plan_path))


@pytest.mark.parametrize(
    ("code", "says", "produce"),
    OUTCOMES,
    ids=[f"{code}-{produce.__name__}" for code, _, produce in OUTCOMES],
)
def test_each_outcome_exits_with_its_documented_code(
    scene: Scene, code: int, says: str, produce: Producer
) -> None:
    outcome = produce(scene)
    assert outcome.code == code, outcome.err
    assert code in documented()
    assert says in outcome.err
    if code == 0:
        assert "error:" not in outcome.err
    elif code == 1:
        assert "error:" not in outcome.err  # a defect is not dressed as an outcome
    elif says != "interrupted":
        assert "error: " in outcome.err


# --- the table, against the tree -------------------------------------------------------------

IN_A_STEP = "*(in a step)*"


def documented() -> dict[int, tuple[str, str]]:
    """docs/golive.md's exit codes: code -> (outcome, raised as)."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+?) \| (.+) \|$", section, re.MULTILINE)
    codes = [int(code) for code, _, _ in rows]
    assert len(codes) == len(set(codes)), f"a code is documented twice: {sorted(codes)}"
    return {int(code): (outcome, raised) for code, outcome, raised in rows}


def classes_of(raised: str) -> list[str]:
    return re.findall(r"`(\w+)`", raised)


def error_classes() -> set[type[GoLiveError]]:
    """Every GoLiveError subclass golive defines, wherever it is (all modules imported)."""
    for module in pkgutil.walk_packages(golive.__path__, "golive."):
        importlib.import_module(module.name)
    found: set[type[GoLiveError]] = set()
    todo: list[type[GoLiveError]] = [GoLiveError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("golive.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_documented_code_is_produced_and_no_outcome_shares_one():
    table = documented()
    assert set(table) == {code for code, _, _ in OUTCOMES}
    outcomes = [outcome for outcome, _ in table.values()]
    assert len(outcomes) == len(set(outcomes))
    assert {0, 1, 2, 130} <= set(table)


def test_every_error_class_is_in_the_table_once_with_its_code():
    listed: dict[str, int] = {}
    for code, (_, raised) in documented().items():
        for name in classes_of(raised):
            assert name not in listed, f"{name} is documented under {listed[name]} and {code}"
            listed[name] = code
    defined = {cls.__name__: cls for cls in error_classes()}
    assert set(listed) == set(defined), "classes and table differ"
    for name, code in listed.items():
        assert defined[name].exit_code == code, name
        assert defined[name].__module__ == "golive.errors", f"{name} is outside the one tree"
    assert GoLiveError.exit_code == 1  # never raised itself: an unexpected failure's code


def test_the_tree_docstring_names_every_class_and_every_code():
    tree = errors.__doc__ or ""
    for cls in error_classes():
        assert re.search(rf"\b{cls.__name__}\b", tree), cls.__name__
    codes = {int(code) for code in re.findall(r"^ {4,7}(\d+) ", tree, re.MULTILINE)}
    assert codes == set(documented())


def test_a_cause_raised_in_a_step_is_reported_as_the_outcome_of_its_row():
    defined = {cls.__name__: cls for cls in error_classes()}
    causes = 0
    for code, (_, raised) in documented().items():
        if IN_A_STEP not in raised:
            continue
        for name in classes_of(raised.split(IN_A_STEP, 1)[1]):
            assert run_outcome(defined[name]("cause")).exit_code == code, name
            causes += 1
    assert causes >= 5
    assert run_outcome(TargetUnreachableError("down")).exit_code == 8  # unless nothing changed
    assert run_outcome(RuntimeError("a defect in a step")).exit_code == 8


def test_no_failure_is_raised_as_a_bare_golive_error():
    bare = re.compile(r"\b(?:raise|return) GoLiveError\(")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "src/golive").rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert offenders == []


def test_no_password_in_a_url_reaches_stderr(capsys: pytest.CaptureFixture[str]):
    failure = TargetError(
        "cannot reach postgresql://app:hunter2@db.internal:5432/credit",
        hint="or redis://:s3cret@cache:6379/0",
    )
    assert cli.report_failure(failure) == 6
    err = capsys.readouterr().err
    assert "hunter2" not in err and "s3cret" not in err
    assert "postgresql://app:***@db.internal:5432/credit" in err
    assert "redis://:***@cache:6379/0" in err
