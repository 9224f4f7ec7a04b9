"""The "production" a rehearsal starts from: database, clients, blue behind the router.

``up`` starts the embedded PostgreSQL (or uses the plan's DATABASE_URL), writes the signing
secret, seeds clients with the service's own CLI, starts the legacy and bureau emulators and the
Redis both slots share (``cache``), starts blue at the previous release's version label and puts
it behind HAProxy (and Prometheus when the plan asks). It writes what it started to the local
target's state file; ``LocalTarget`` reads that and implements only the Target port. ``down``
stops everything recorded there, by pid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

from golive.errors import TargetError, UsageError
from golive.journal import RunLock
from golive.plan import SLOT_NAMES, Plan, SlotName
from golive.rehearsal import cache, emulators, prometheus
from golive.service import service_cli
from golive.steps.base import Observer, QuietObserver
from golive.targets.haproxy import find_haproxy, render_config
from golive.targets.local import JWT_SECRET_FILE, LocalTarget
from golive.targets.processes import spawn


def database_with(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def local_target(plan: Plan) -> LocalTarget:
    if plan.target.kind != "local":
        raise UsageError(
            f"{plan.source}: a rehearsal runs on the local target, not {plan.target.kind!r}",
            hint="use deploy/golive/rehearsal.yaml",
        )
    return LocalTarget(plan)


def prepare_schema(target: LocalTarget, revision: str) -> str:
    """Put the database at the previous release's schema (a no-op when it is already ahead)."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        [service_cli(), "db", "upgrade", "--revision", revision],
        env={**os.environ, **target.service_env()},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise TargetError(f"preparing schema {revision} failed: {result.stderr.strip()[-800:]}")
    return f"previous release's schema: {result.stdout.strip()}"


def seed(target: LocalTarget, clients: int, migrate: bool = True) -> str:
    """Seed the clients, and write the legacy and bureau emulators' data files for them."""
    legacy_file, bureau_file = emulators.data_files(target.home)
    legacy_file.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - fixed argv
        [
            *(service_cli(), "seed", "--clients", str(clients)),
            *("--legacy-file", str(legacy_file), "--bureau-file", str(bureau_file)),
        ],
        env={
            **os.environ,
            **target.service_env(),
            **({} if migrate else {"MIGRATE_ON_START": "false"}),
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise TargetError(f"seeding failed: {result.stderr.strip()[-800:]}")
    return result.stdout.strip()


def up(plan: Plan, observer: Observer | None = None) -> LocalTarget:
    """Start the database, seed it, start blue and the router in front of it."""
    say = (observer or QuietObserver()).message
    target = local_target(plan)
    with RunLock(plan.state_dir.resolve()):
        ensure_secrets(target)
        url = start_database(target)
        say(f"database: {url.split('?')[0]}")
        previous = plan.rehearsal.previous_schema_revision
        if previous:
            say(prepare_schema(target, previous))
        say(seed(target, plan.rehearsal.clients, migrate=not previous))
        urls = emulators.start(target.home)
        say(f"legacy system on {urls['legacy']}, credit bureau on {urls['bureau']} (emulators)")
        if plan.traffic.flag_provider == "launchdarkly":
            url = emulators.start_launchdarkly(target.home, plan)
            say(f"LaunchDarkly stand-in on {url} (the slots' SDKs stream the flag from it)")
        say(cache.start(target.home))
        record_emulators(target)
        target.deploy("blue")
        waited = target.wait_ready("blue", plan.deploy.ready_timeout_s)
        say(f"blue {plan.slots.blue.version} ready on {target.slot_url('blue')} in {waited:.1f}s")
        start_router(target, active="blue")
        say(f"router (HAProxy) on {target.service_url()} -> blue")
        if plan.rehearsal.monitoring:
            say(start_monitoring(plan, target))
    return target


def start_monitoring(plan: Plan, target: LocalTarget) -> str:
    """Prometheus (and Alertmanager) scraping both slots, when installed; what happened."""
    record = prometheus.start(plan, target.home, lambda found: record_monitoring(target, found))
    if "skipped" in record:
        return f"monitoring: skipped: {record['skipped']}"
    alertmanager = record.get("alertmanager", {}).get("url") or record["alertmanager_skipped"]
    return f"monitoring: Prometheus on {record['prometheus']['url']}, Alertmanager {alertmanager}"


def down(plan: Plan) -> list[str]:
    return stop_everything(local_target(plan))


def record_emulators(target: LocalTarget) -> None:
    """What the slots need to reach the emulators and the shared cache, and what the smoke
    test checks of the emulators."""
    data = target.state()
    data["slot_env"] = {**emulators.slot_env(target.home), **cache.slot_env(target.home)}
    data["dependencies"] = [
        {"name": d.name, "health_url": d.health_url, "expect": dict(d.expect)}
        for d in emulators.dependencies(target.home)
    ]
    target.save_state(data)


def start_database(target: LocalTarget) -> str:
    """The plan's database URL from the environment, else start the embedded PostgreSQL."""
    given = os.environ.get(target.plan.database.url_env)
    data = target.state()
    if given:
        data["database"] = {"url_env": target.plan.database.url_env}
        target.save_state(data)
        return given
    with warnings.catch_warnings():  # pgserver warns about XDG_RUNTIME_DIR when headless
        warnings.simplefilter("ignore")
        import pgserver

        pg_dir = (target.plan.database.embedded_dir or target.state_dir / "pg").resolve()
        pg_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = pgserver.get_server(pg_dir, cleanup_mode=None)
        except Exception as exc:
            raise TargetError(f"the embedded PostgreSQL did not start in {pg_dir}: {exc}") from exc
    name = target.plan.database.name
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{name}";')
    url = database_with(server.get_uri(), name)
    data["database"] = {"url": url, "pg_dir": str(pg_dir), "postmaster_pid": server.get_pid()}
    target.save_state(data)
    return url


def stop_database(target: LocalTarget) -> bool:
    database = target.state().get("database") or {}
    pid = database.get("postmaster_pid")
    if not pid:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pid), signal.SIGINT)  # PostgreSQL's fast shutdown
        for _ in range(200):
            os.kill(int(pid), 0)
            time.sleep(0.05)
    return True


def ensure_secrets(target: LocalTarget) -> dict[str, str]:
    """A JWT signing secret for the rehearsal, in a 0600 file (never in the repo or logs)."""
    path = target.home / "secrets" / JWT_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48))
    return {"JWT_SECRET_FILE": str(path)}


def record_monitoring(target: LocalTarget, record: dict[str, Any]) -> None:
    data = target.state()
    data["monitoring"] = record
    target.save_state(data)


def stop_monitoring(target: LocalTarget) -> list[str]:
    stopped = []
    for name, entry in target.monitoring().items():
        record = target.process_of(entry if isinstance(entry, dict) else None)
        if record is not None and record.stop(timeout_s=10):
            stopped.append(f"{name} (pid {record.pid})")
    data = target.state()
    data.pop("monitoring", None)
    target.save_state(data)
    return stopped


def start_router(target: LocalTarget, active: SlotName) -> None:
    router = target.router_process()
    if router is not None and router.alive():
        return
    haproxy = find_haproxy()
    config_path = target.home / "haproxy.cfg"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path = target.socket_path()
    socket_path.unlink(missing_ok=True)
    config_path.write_text(
        render_config(
            port=target.plan.target.router.port,
            socket_path=socket_path,
            slots={name: target.plan.slots.of(name).port for name in SLOT_NAMES},
            active=active,
            check_interval_ms=target.plan.target.router.check_interval_ms,
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
        [haproxy, "-f", str(config_path)], os.environ, target.home / "haproxy.log", target.home
    )
    data = target.state()
    data["router"] = {"process": record.to_json(), "port": target.plan.target.router.port}
    target.save_state(data)
    deadline = time.monotonic() + 10
    while not socket_path.exists() or not _router_answers(target):
        if not record.alive() or time.monotonic() > deadline:
            log = Path(record.log).read_text(encoding="utf-8", errors="replace")[-2000:]
            raise TargetError(f"HAProxy did not start:\n{log}")
        time.sleep(0.05)
    target.api.wait_up(active, timeout_s=15)


def _router_answers(target: LocalTarget) -> bool:
    try:
        target.api.servers()
    except TargetError:
        return False
    return True


def stop_router(target: LocalTarget) -> bool:
    router = target.router_process()
    stopped = router.stop(timeout_s=5, sig=signal.SIGUSR1) if router is not None else False
    data = target.state()
    data.pop("router", None)
    target.save_state(data)
    return stopped


def stop_everything(target: LocalTarget) -> list[str]:
    """Stop everything the environment and the go-live started here, by recorded pid: slots,
    router, monitoring, emulators, the cache, the embedded database."""
    stopped = []
    for slot in SLOT_NAMES:
        record, _ = target.slot_process(slot)
        if record is not None and record.stop(timeout_s=target.plan.deploy.drain_s + 35):
            stopped.append(f"{slot} (pid {record.pid})")
    data = target.state()
    data["slots"] = {}
    target.save_state(data)
    router = target.router_process()
    if router is not None and stop_router(target):
        stopped.append(f"router (pid {router.pid})")
    stopped += stop_monitoring(target)
    stopped += emulators.stop(target.home)
    stopped += cache.stop(target.home)
    if stop_database(target):
        stopped.append("embedded PostgreSQL")
    data = target.state()
    data.pop("database", None)
    target.save_state(data)
    return stopped
