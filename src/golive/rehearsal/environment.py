"""The "production" a rehearsal starts from: database, clients, blue behind the router.

``up`` starts the embedded PostgreSQL (or uses the plan's DATABASE_URL), seeds clients with the
service's own CLI, starts blue at the previous release's version label and puts it behind
HAProxy. ``down`` stops everything the local target recorded, by pid.
"""

from __future__ import annotations

import os
import subprocess

from golive.errors import TargetError, UsageError
from golive.journal import RunLock
from golive.plan import Plan
from golive.rehearsal import emulators
from golive.steps import Observer, QuietObserver
from golive.targets.local import LocalTarget, service_cli


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
        target.ensure_secrets()
        url = target.start_database()
        say(f"database: {url.split('?')[0]}")
        previous = plan.rehearsal.previous_schema_revision
        if previous:
            say(prepare_schema(target, previous))
        say(seed(target, plan.rehearsal.clients, migrate=not previous))
        urls = emulators.start(target.home)
        say(f"legacy system on {urls['legacy']}, credit bureau on {urls['bureau']} (emulators)")
        target.deploy("blue")
        waited = target.wait_ready("blue", plan.deploy.ready_timeout_s)
        say(f"blue {plan.slots.blue.version} ready on {target.slot_url('blue')} in {waited:.1f}s")
        target.start_router(active="blue")
        say(f"router (HAProxy) on {target.service_url()} -> blue")
        if plan.rehearsal.monitoring:
            say(start_monitoring(plan, target))
    return target


def start_monitoring(plan: Plan, target: LocalTarget) -> str:
    """Prometheus (and Alertmanager) scraping both slots, when installed; what happened."""
    from golive.rehearsal import prometheus

    record = prometheus.start(plan, target.home, target.record_monitoring)
    if "skipped" in record:
        return f"monitoring: skipped: {record['skipped']}"
    alertmanager = record.get("alertmanager", {}).get("url") or record["alertmanager_skipped"]
    return f"monitoring: Prometheus on {record['prometheus']['url']}, Alertmanager {alertmanager}"


def down(plan: Plan) -> list[str]:
    return local_target(plan).down()
