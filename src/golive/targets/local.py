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
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx

from golive.database.migrate import run_locally
from golive.errors import TargetError, TargetUnreachableError, UsageError
from golive.plan import Plan, SlotName
from golive.service import service_cli
from golive.smoke import Dependency
from golive.targets.base import (
    Action,
    Check,
    Instance,
    RouterState,
    SlotStatus,
    SwitchResult,
    Write,
)
from golive.targets.haproxy import RuntimeApi, find_haproxy
from golive.targets.processes import ProcessRecord, spawn

JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name


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


class LocalTarget:
    kind = "local"
    slot_metrics_complete = True
    dry_run = False  # the rehearsal is the local target's dry run

    @property
    def writes(self) -> list[Write]:
        return []  # processes and HAProxy commands are journaled by the steps

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.state_dir = plan.state_dir.resolve()
        self.home = self.state_dir / "local"
        self.state_file = self.home / "target.json"
        self.api = RuntimeApi(self.socket_path())

    # --- recorded state -----------------------------------------------------------------------

    def socket_path(self) -> Path:
        path = self.home / "haproxy.sock"
        if len(str(path)) > 100:  # sun_path is 108 bytes
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
            path = Path(tempfile.gettempdir()) / f"golive-{digest}.sock"
        return path

    def state(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            data = {}
        data.setdefault("slots", {})
        return data

    def save_state(self, data: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_file)

    def process_of(self, entry: dict[str, Any] | None) -> ProcessRecord | None:
        if not entry or "process" not in entry:
            return None
        return ProcessRecord.from_json(entry["process"])

    def router_process(self) -> ProcessRecord | None:
        return self.process_of(self.state().get("router"))

    def slot_process(self, slot: str) -> tuple[ProcessRecord | None, dict[str, Any]]:
        entry = self.state()["slots"].get(slot) or {}
        return self.process_of(entry), entry

    # --- monitoring (what the rehearsal environment started and recorded) --------------------

    def monitoring(self) -> dict[str, Any]:
        """What the rehearsal started for monitoring: URLs and processes, or why it did not."""
        return dict(self.state().get("monitoring") or {})

    def database_url(self) -> str:
        given = os.environ.get(self.plan.database.url_env)
        if given:
            return given
        url = (self.state().get("database") or {}).get("url")
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

    # --- router (started by the rehearsal environment) --------------------------------------

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

    def instances(self, slot: SlotName) -> list[Instance]:
        """One server per slot, named by its URL: the slot itself (its /metrics covers it all)."""
        url = self.slot_url(slot)
        return [Instance(url, url)] if self.slot_status(slot).running else []

    def metric_selector(self, slot: SlotName) -> str:
        return f'job="credit-assessment",slot="{slot}"'

    def check_endpoints(self, slot: SlotName) -> Check:
        """HAProxy sends new requests to ``slot`` alone, and sees it up."""
        servers = self.api.servers()
        serving = sorted(name for name, state in servers.items() if state.serving)
        up = servers[slot].up if slot in servers else False
        passed = serving == [slot] and up
        return Check(
            "endpoints router",
            passed,
            f"HAProxy serves {', '.join(serving) or 'no server'}; {slot} "
            f"{'up' if up else 'not up'} in its health checks",
        )

    def run_migration(
        self, command: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        """The service's migration command as a local process."""
        return run_locally(command, env, timeout_s)

    def instance_http(self, timeout_s: float) -> httpx.Client:
        return httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0))

    def coordination(self) -> None:
        return None  # one machine: the state directory's lock and control.json are enough

    def slot_url(self, slot: SlotName) -> str:
        return f"http://127.0.0.1:{self.plan.slots.of(slot).port}"

    def service_url(self) -> str:
        return self.plan.target.public_url or f"http://127.0.0.1:{self.plan.target.router.port}"

    def dependencies(self) -> list[Dependency]:
        """The services the environment started for the slots (the rehearsal's emulators)."""
        return [
            Dependency(d["name"], d["health_url"], d.get("expect") or {})
            for d in self.state().get("dependencies") or []
        ]

    def service_cli(self) -> str:
        return service_cli()

    def deploy(self, slot: SlotName, version: str | None = None) -> bool:
        spec = self.plan.slots.of(slot)
        version = version or spec.version
        record, entry = self.slot_process(slot)
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
            **(self.state().get("slot_env") or {}),  # legacy, bureau, flag file (environment)
            **spec.env,
        }
        # The service keeps its private copy of the flag file there: it must exist.
        Path(env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        argv = [service_cli(), "serve", "--host", "127.0.0.1", "--port", str(spec.port)]
        argv += ["--workers", str(spec.workers)]
        log = self.home / "logs" / f"{slot}.log"
        record = spawn(argv, env, log, self.home)
        data = self.state()
        data["slots"][slot] = {"process": record.to_json(), "version": version, "port": spec.port}
        self.save_state(data)
        router = self.router_process()
        if router is not None and router.alive():
            servers = self.api.servers()
            if not servers[slot].serving:
                self.api.set_states({slot: "drain"})  # health checks on, no traffic yet
        return True

    def wait_ready(self, slot: SlotName, timeout_s: float) -> float:
        started = time.monotonic()
        record, _ = self.slot_process(slot)
        url = self.slot_url(slot) + "/ready"
        # One client for the whole wait: a new one per poll builds a TLS context each time,
        # tens of ms of CPU that the slot being started and the serving one need.
        with httpx.Client(timeout=1.0) as http:
            while True:
                if record is None or not record.alive():
                    tail = ""
                    if record is not None:
                        log = Path(record.log)
                        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
                    raise TargetError(
                        f"{slot} is not running (exit code {self._exit(record)}):\n{tail}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(url).status_code == 200:
                        break
                if time.monotonic() - started > timeout_s:
                    raise TargetError(f"{slot} was not ready within {timeout_s:g}s ({url})")
                time.sleep(0.2)
        router = self.router_process()
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
        record, entry = self.slot_process(slot)
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
            size=f"{self.plan.slots.of(slot).workers} workers",
        )

    def stop(self, slot: SlotName) -> bool:
        router = self.router_process()
        if router is not None and router.alive():
            servers = self.api.servers()
            if servers[slot].serving:
                raise TargetError(
                    f"refusing to stop {slot}: it serves the traffic; "
                    "switch to the other slot first"
                )
            if not servers[slot].forced_maint:
                self.api.set_states({slot: "maint"})
        record, _ = self.slot_process(slot)
        stopped = (
            record.stop(timeout_s=self.plan.deploy.drain_s + 35) if record is not None else False
        )
        data = self.state()
        data["slots"].pop(slot, None)
        self.save_state(data)
        return stopped

    # --- reachability -------------------------------------------------------------------------

    def preflight(self) -> list[Check]:
        checks = []
        try:
            find_haproxy()
            checks.append(Check("haproxy installed", True, "found"))
        except TargetError as exc:
            checks.append(Check("haproxy installed", False, f"{exc.message}; {exc.hint}"))
        router = self.router_process()
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
            'psql "$DATABASE_URL" -c "SELECT pg_database_size(current_database())"',
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


def target(plan: Plan, *, dry_run: bool = False) -> LocalTarget:
    if dry_run:
        raise UsageError(
            "--dry-run lists the writes a kubernetes go-live would make; the local target has "
            "no API to preview",
            hint="`golive rehearse` is the local target's full rehearsal; `golive runbook PLAN` "
            "lists every step's commands",
        )
    return LocalTarget(plan)


def procedures(plan: Plan) -> LocalProcedures:
    return LocalProcedures(plan)
