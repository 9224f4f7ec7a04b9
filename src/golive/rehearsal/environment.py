"""The "production" a rehearsal starts from: database, clients, blue behind the router.

``up`` starts the embedded PostgreSQL (or uses the plan's DATABASE_URL), seeds clients with the
service's own CLI, starts blue at the previous release's version label and puts it behind
HAProxy. ``down`` stops everything the local target recorded, by pid.
"""

from __future__ import annotations

import os
import subprocess

from golive.errors import GoLiveError, UsageError
from golive.journal import RunLock
from golive.plan import Plan
from golive.steps import Observer, QuietObserver
from golive.targets.local import LocalTarget, service_cli


def local_target(plan: Plan) -> LocalTarget:
    if plan.target.kind != "local":
        raise UsageError(
            f"{plan.source}: a rehearsal runs on the local target, not {plan.target.kind!r}",
            hint="use deploy/golive/rehearsal.yaml",
        )
    return LocalTarget(plan)


def seed(target: LocalTarget, clients: int) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv
        [service_cli(), "seed", "--clients", str(clients)],
        env={**os.environ, **target.service_env()},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise GoLiveError(f"seeding failed: {result.stderr.strip()[-800:]}")
    return result.stdout.strip()


def up(plan: Plan, observer: Observer | None = None) -> LocalTarget:
    """Start the database, seed it, start blue and the router in front of it."""
    say = (observer or QuietObserver()).message
    target = local_target(plan)
    with RunLock(plan.state_dir.resolve()):
        target.ensure_secrets()
        url = target.start_database()
        say(f"database: {url.split('?')[0]}")
        say(seed(target, plan.rehearsal.clients))
        target.deploy("blue")
        waited = target.wait_ready("blue", plan.deploy.ready_timeout_s)
        say(f"blue {plan.slots.blue.version} ready on {target.slot_url('blue')} in {waited:.1f}s")
        target.start_router(active="blue")
        say(f"router (HAProxy) on {target.service_url()} -> blue")
    return target


def down(plan: Plan) -> list[str]:
    return local_target(plan).down()
