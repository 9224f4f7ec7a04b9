"""The local target: real service processes behind a real HAProxy, on the embedded PostgreSQL.

Blue and green are ``credit-assessment serve`` processes (several workers each, their own
port, ``SLOT`` and ``APP_VERSION`` in their environment). HAProxy plays the Kubernetes
Service (targets/haproxy.py). The database is the plan's ``DATABASE_URL`` when set, else an
embedded PostgreSQL (pgserver) under the state directory.

Everything started is recorded in ``<state_dir>/local/target.json`` (pid + start time), so a
``golive run --resume`` in a new process finds the slots and the router a killed one left
running, and ``golive down`` stops them by pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar

import httpx

from golive.errors import TargetError, TargetUnreachableError
from golive.plan import SLOT_NAMES, Plan, SlotName
from golive.rehearsal import emulators
from golive.smoke import Dependency
from golive.targets.base import Action, Check, RouterState, SlotStatus, SwitchResult
from golive.targets.haproxy import RuntimeApi, find_haproxy, render_config
from golive.targets.processes import ProcessRecord, spawn

JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name


def service_cli() -> str:
    """The service's CLI: next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "credit-assessment"
    if beside.exists():
        return str(beside)
    found = shutil.which("credit-assessment")
    if found is None:
        raise TargetError(
            "the credit-assessment command is not installed",
            hint="install the project: pip install -e . (make run does it)",
        )
    return found


def pg_bin(tool: str) -> str:
    """A PostgreSQL client tool: the embedded server's, else the one on PATH."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / tool
        if candidate.exists():
            return str(candidate)
    found = shutil.which(tool)
    if found is None:
        raise TargetError(f"{tool} is not installed", hint="install the PostgreSQL client tools")
    return found


def _database_with(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


class LocalTarget:
    kind = "local"
    slot_metrics_complete = True

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state_dir = plan.state_dir.resolve()
        self.home = self.state_dir / "local"
        self.state_file = self.home / "target.json"
        self.api = RuntimeApi(self._socket_path())

    # --- recorded state -----------------------------------------------------------------------

    def _socket_path(self) -> Path:
        path = self.home / "haproxy.sock"
        if len(str(path)) > 100:  # sun_path is 108 bytes
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
            path = Path(tempfile.gettempdir()) / f"golive-{digest}.sock"
        return path

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            data = {}
        data.setdefault("slots", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_file)

    def _process(self, entry: dict[str, Any] | None) -> ProcessRecord | None:
        if not entry or "process" not in entry:
            return None
        return ProcessRecord.from_json(entry["process"])

    def _router(self) -> ProcessRecord | None:
        return self._process(self._load().get("router"))

    def _slot(self, slot: str) -> tuple[ProcessRecord | None, dict[str, Any]]:
        entry = self._load()["slots"].get(slot) or {}
        return self._process(entry), entry

    # --- database and secrets -----------------------------------------------------------------

    def start_database(self) -> str:
        """The plan's database URL from the environment, else start the embedded PostgreSQL."""
        given = os.environ.get(self.plan.database.url_env)
        data = self._load()
        if given:
            data["database"] = {"url_env": self.plan.database.url_env}
            self._save(data)
            return given
        with warnings.catch_warnings():  # pgserver warns about XDG_RUNTIME_DIR when headless
            warnings.simplefilter("ignore")
            import pgserver

            pg_dir = (self.plan.database.embedded_dir or self.state_dir / "pg").resolve()
            pg_dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                server = pgserver.get_server(pg_dir, cleanup_mode=None)
            except Exception as exc:
                raise TargetError(
                    f"the embedded PostgreSQL did not start in {pg_dir}: {exc}"
                ) from exc
        name = self.plan.database.name
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{name}";')
        url = _database_with(server.get_uri(), name)
        data["database"] = {"url": url, "pg_dir": str(pg_dir), "postmaster_pid": server.get_pid()}
        self._save(data)
        return url

    def stop_database(self) -> bool:
        database = self._load().get("database") or {}
        pid = database.get("postmaster_pid")
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGINT)  # PostgreSQL's fast shutdown
            for _ in range(200):
                os.kill(int(pid), 0)
                time.sleep(0.05)
        return True

    def ensure_secrets(self) -> dict[str, str]:
        """A JWT signing secret for the rehearsal, in a 0600 file (never in the repo or logs)."""
        path = self.home / "secrets" / JWT_SECRET_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(secrets.token_urlsafe(48))
        return {"JWT_SECRET_FILE": str(path)}

    # --- monitoring (rehearsal: Prometheus and Alertmanager on loopback, golive/rehearsal) ----

    def monitoring(self) -> dict[str, Any]:
        """What the rehearsal started for monitoring: URLs and processes, or why it did not."""
        return dict(self._load().get("monitoring") or {})

    def record_monitoring(self, record: dict[str, Any]) -> None:
        data = self._load()
        data["monitoring"] = record
        self._save(data)

    def stop_monitoring(self) -> list[str]:
        stopped = []
        for name, entry in self.monitoring().items():
            record = self._process(entry if isinstance(entry, dict) else None)
            if record is not None and record.stop(timeout_s=10):
                stopped.append(f"{name} (pid {record.pid})")
        data = self._load()
        data.pop("monitoring", None)
        self._save(data)
        return stopped

    def database_url(self) -> str:
        given = os.environ.get(self.plan.database.url_env)
        if given:
            return given
        url = (self._load().get("database") or {}).get("url")
        if not url:
            raise TargetUnreachableError(
                f"no database: {self.plan.database.url_env} is unset and no embedded PostgreSQL "
                f"was started under {self.state_dir}"
            )
        return str(url)

    def service_env(self) -> dict[str, str]:
        env = {"DATABASE_URL": self.database_url(), "APP_ENV": "development"}
        if not os.environ.get("JWT_SECRET") and not os.environ.get("JWT_SECRET_FILE"):
            secret = self.home / "secrets" / JWT_SECRET_FILE
            if secret.exists():
                env["JWT_SECRET_FILE"] = str(secret)
        return env

    # --- router ---------------------------------------------------------------------------------

    def start_router(self, active: SlotName) -> None:
        router = self._router()
        if router is not None and router.alive():
            return
        haproxy = find_haproxy()
        config_path = self.home / "haproxy.cfg"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        socket_path = self._socket_path()
        socket_path.unlink(missing_ok=True)
        config_path.write_text(
            render_config(
                port=self.plan.target.router.port,
                socket_path=socket_path,
                slots={name: self.plan.slots.of(name).port for name in SLOT_NAMES},
                active=active,
                check_interval_ms=self.plan.target.router.check_interval_ms,
            ),
            encoding="utf-8",
        )
        checked = subprocess.run(  # noqa: S603
            [haproxy, "-c", "-q", "-f", str(config_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if checked.returncode != 0:
            raise TargetError(f"HAProxy rejects {config_path}: {checked.stderr.strip()}")
        record = spawn(
            [haproxy, "-f", str(config_path)], os.environ, self.home / "haproxy.log", self.home
        )
        data = self._load()
        data["router"] = {"process": record.to_json(), "port": self.plan.target.router.port}
        self._save(data)
        deadline = time.monotonic() + 10
        while not socket_path.exists() or not self._answers():
            if not record.alive() or time.monotonic() > deadline:
                log = Path(record.log).read_text(encoding="utf-8", errors="replace")[-2000:]
                raise TargetError(f"HAProxy did not start:\n{log}")
            time.sleep(0.05)
        self.api.wait_up(active, timeout_s=15)

    def _answers(self) -> bool:
        try:
            self.api.servers()
        except TargetError:
            return False
        return True

    def stop_router(self) -> bool:
        router = self._router()
        stopped = router.stop(timeout_s=5, sig=signal.SIGUSR1) if router is not None else False
        data = self._load()
        data.pop("router", None)
        self._save(data)
        return stopped

    def router_state(self) -> RouterState:
        servers = self.api.servers()
        serving = [name for name, state in servers.items() if state.serving]
        return RouterState(
            active=serving[0] if len(serving) == 1 else None,
            servers={
                name: f"{state.admin}/{'up' if state.up else 'down'}"
                for name, state in servers.items()
            },
        )

    def switch(self, slot: SlotName) -> SwitchResult:
        other: SlotName = "blue" if slot == "green" else "green"
        servers = self.api.servers()
        before = self.router_state().active
        if servers[slot].serving and not servers[other].serving:
            return SwitchResult(before, slot, changed=False, command="", elapsed_ms=0.0)
        if not servers[slot].up:
            raise TargetError(
                f"refusing to switch: HAProxy's health checks do not see {slot} up "
                f"({servers[slot].admin}, op_state {servers[slot].op_state}); nothing was changed"
            )
        states: dict[str, str] = {slot: "ready"}
        if not servers[other].maint:
            states[other] = "drain"
        command = "; ".join(f"set server be/{n} state {s}" for n, s in states.items())
        started = time.perf_counter()
        self.api.set_states(states)
        elapsed_ms = (time.perf_counter() - started) * 1000
        after = self.api.servers()
        if not after[slot].serving or after[other].serving:
            raise TargetError(
                f"switch to {slot} not verified: router reads "
                f"{ {n: s.admin for n, s in after.items()} }"
            )
        return SwitchResult(before, slot, changed=True, command=command, elapsed_ms=elapsed_ms)

    # --- slots ----------------------------------------------------------------------------------

    def slot_url(self, slot: SlotName) -> str:
        return f"http://127.0.0.1:{self.plan.slots.of(slot).port}"

    def service_url(self) -> str:
        return self.plan.target.public_url or f"http://127.0.0.1:{self.plan.target.router.port}"

    def dependencies(self) -> list[Dependency]:
        return emulators.dependencies(self.home)

    def deploy(self, slot: SlotName, version: str | None = None) -> bool:
        spec = self.plan.slots.of(slot)
        version = version or spec.version
        record, entry = self._slot(slot)
        if record is not None and record.alive():
            if entry.get("version") == version:
                return False
            self.stop(slot)
        env = {
            **os.environ,
            **self.service_env(),
            "SLOT": slot,
            "APP_VERSION": version,
            "SHUTDOWN_DRAIN_S": str(self.plan.deploy.drain_s),
            "DATA_DIR": str(self.home / "slots" / slot),
            "LOG_REQUESTS": "false",
            **emulators.slot_env(self.home),  # legacy, bureau, traffic flag file
            **spec.env,
        }
        # The service keeps its private copy of the flag file there: it must exist.
        Path(env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        argv = [service_cli(), "serve", "--host", "127.0.0.1", "--port", str(spec.port)]
        argv += ["--workers", str(spec.workers)]
        log = self.home / "logs" / f"{slot}.log"
        record = spawn(argv, env, log, self.home)
        data = self._load()
        data["slots"][slot] = {"process": record.to_json(), "version": version, "port": spec.port}
        self._save(data)
        router = self._router()
        if router is not None and router.alive():
            servers = self.api.servers()
            if not servers[slot].serving:
                self.api.set_states({slot: "drain"})  # health checks on, no traffic yet
        return True

    def wait_ready(self, slot: SlotName, timeout_s: float) -> float:
        started = time.monotonic()
        record, _ = self._slot(slot)
        url = self.slot_url(slot) + "/ready"
        while True:
            if record is None or not record.alive():
                tail = ""
                if record is not None:
                    tail = Path(record.log).read_text(encoding="utf-8", errors="replace")[-1500:]
                raise TargetError(
                    f"{slot} is not running (exit code {self._exit(record)}):\n{tail}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0).status_code == 200:
                    break
            if time.monotonic() - started > timeout_s:
                raise TargetError(f"{slot} was not ready within {timeout_s:g}s ({url})")
            time.sleep(0.2)
        router = self._router()
        if router is not None and router.alive():
            remaining = max(0.0, timeout_s - (time.monotonic() - started))
            try:
                self.api.wait_up(slot, timeout_s=remaining)
            except TargetError as exc:
                raise TargetError(f"{slot} was not ready within {timeout_s:g}s: {exc}") from exc
        return time.monotonic() - started

    @staticmethod
    def _exit(record: ProcessRecord | None) -> str:
        code = record.exit_code() if record is not None else None
        return "unknown" if code is None else str(code)

    def slot_status(self, slot: SlotName) -> SlotStatus:
        record, entry = self._slot(slot)
        running = record is not None and record.alive()
        ready = False
        if running:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(self.slot_url(slot) + "/ready", timeout=2.0).status_code == 200
        return SlotStatus(
            slot,
            running,
            ready,
            version=entry.get("version"),
            url=self.slot_url(slot),
            detail=f"pid {record.pid}" if record is not None and running else "stopped",
        )

    def stop(self, slot: SlotName) -> bool:
        router = self._router()
        if router is not None and router.alive():
            servers = self.api.servers()
            if servers[slot].serving:
                raise TargetError(
                    f"refusing to stop {slot}: it serves the traffic; "
                    "switch to the other slot first"
                )
            if not servers[slot].forced_maint:
                self.api.set_states({slot: "maint"})
        record, _ = self._slot(slot)
        stopped = (
            record.stop(timeout_s=self.plan.deploy.drain_s + 35) if record is not None else False
        )
        data = self._load()
        data["slots"].pop(slot, None)
        self._save(data)
        return stopped

    # --- reachability -------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        checks = []
        try:
            find_haproxy()
            checks.append(Check("haproxy installed", True, "found"))
        except TargetError as exc:
            checks.append(Check("haproxy installed", False, f"{exc.message}; {exc.hint}"))
        router = self._router()
        if router is None or not router.alive():
            checks.append(
                Check("router", False, f"no HAProxy running for {self.state_dir} (golive up PLAN)")
            )
        else:
            try:
                state = self.router_state()
                checks.append(
                    Check("router", True, f"HAProxy pid {router.pid}, servers {state.servers}")
                )
                checks.append(
                    Check(
                        "blue serves",
                        state.active == "blue",
                        f"router sends new requests to {state.active or 'no single slot'}",
                    )
                )
            except TargetError as exc:
                checks.append(Check("router", False, exc.message))
        try:
            checks.append(Check("service cli", True, service_cli()))
        except TargetError as exc:
            checks.append(Check("service cli", False, exc.message))
        return checks

    def down(self) -> list[str]:
        """Stop everything this target started: slots, router, embedded database."""
        stopped = []
        for slot in SLOT_NAMES:
            record, _ = self._slot(slot)
            if record is not None and record.stop(timeout_s=self.plan.deploy.drain_s + 35):
                stopped.append(f"{slot} (pid {record.pid})")
        data = self._load()
        data["slots"] = {}
        self._save(data)
        router = self._router()
        if router is not None and self.stop_router():
            stopped.append(f"router (pid {router.pid})")
        stopped += self.stop_monitoring()
        stopped += emulators.stop(self.home)
        if self.stop_database():
            stopped.append("embedded PostgreSQL")
        data = self._load()
        data.pop("database", None)
        self._save(data)
        return stopped


class LocalProcedures:
    """The local target by hand: the service's CLI, psql, and HAProxy's runtime socket."""

    EXPECTED_S: ClassVar[dict[Action, float]] = {
        "preflight": 10,
        "backup": 15,
        "verify-backup": 15,
        "clone-test": 30,
        "migrate": 15,
        "verify-database": 10,
        "deploy": 2,
        "wait-ready": 10,
        "smoke": 2,
        "switch": 2,
        "verify-switch": 3,
        "validate": 5,
    }

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.socket = f"{plan.state_dir}/local/haproxy.sock"

    def expected_s(self, action: Action) -> float:
        return self.EXPECTED_S[action]

    def _runtime(self, command: str) -> str:
        return f'echo "{command}" | socat stdio unix-connect:{self.socket}'

    def inspect(self) -> list[str]:
        return [
            "golive status",
            f'psql "$DATABASE_URL" -c "SELECT pg_database_size(\'{self.plan.database.name}\')"',
            f"df -h {self.plan.database.backup_dir}",
        ]

    def backup(self, dump: str) -> list[str]:
        directory = self.plan.database.backup_dir
        return [
            f'pg_dump -Fc --dbname="$DATABASE_URL" -f {dump}',
            f"sha256sum {directory}/*.dump",
            f"# both at once, with the manifest: golive db backup --dir {directory} --no-verify",
        ]

    def migrate(self) -> list[str]:
        return [
            'DATABASE_URL="$DATABASE_URL" credit-assessment db upgrade --phase expand',
            'psql "$DATABASE_URL" -c "TABLE migration_history"',
        ]

    def deploy(self, slot: SlotName) -> list[str]:
        spec = getattr(self.plan.slots, slot)
        return [
            f"SLOT={slot} APP_VERSION={spec.version} credit-assessment serve "
            f"--port {spec.port} --workers {spec.workers} &",
            self._runtime(f"set server be/{slot} state drain"),
        ]

    def wait_ready(self, slot: SlotName) -> list[str]:
        return [f"curl -f http://127.0.0.1:{getattr(self.plan.slots, slot).port}/ready"]

    def switch(self, to: SlotName) -> list[str]:
        other = "blue" if to == "green" else "green"
        return [
            self._runtime(f"set server be/{to} state ready; set server be/{other} state drain"),
            self._runtime("show servers state be"),
        ]

    def scale_down(self, slot: SlotName) -> list[str]:
        return [
            self._runtime(f"set server be/{slot} state maint"),
            f"kill -TERM <{slot} pid>   # see golive status",
        ]


def target(plan: Plan) -> LocalTarget:
    return LocalTarget(plan)


def procedures(plan: Plan) -> LocalProcedures:
    return LocalProcedures(plan)
