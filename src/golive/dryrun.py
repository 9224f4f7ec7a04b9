"""``golive run --dry-run PLAN``: every write the go-live would make, in order, and none made.

The target is built in dry-run mode: it reads the real cluster (the Deployment as it is, the
Service's selector, the flags ConfigMap) and records each write it would send -- server-side
applies, the migration Job, the Service patch, the flag patches, the scale-down -- instead of
sending it. Requests that the checks send to the service (smoke, performance, the monitoring
test request) and the database commands of the backup and the clone test are listed as what
they are and not run. Nothing is journaled: a dry run leaves no go-live behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from golive import traffic
from golive.plan import Plan
from golive.steps import build_steps
from golive.steps.migrate import expand_command
from golive.targets.base import Check, Target, Write


@dataclass
class Preview:
    """What a dry run found: the target's reads (preflight) and the writes, by step."""

    checks: list[Check]
    writes: list[tuple[str, Write]]

    def render(self, plan: Plan) -> str:
        lines = [
            f"dry run of {plan.name} (release {plan.release.version}) against the "
            f"{plan.target.kind} target: reads only, nothing was changed",
            "",
            "what the target reads now:",
            *(f"  {check}" for check in self.checks),
            "",
            f"the writes, in order ({len(self.writes)}):",
        ]
        step = None
        for index, (name, write) in enumerate(self.writes, 1):
            if name != step:
                lines.append(f"  {name}")
                step = name
            lines.append(f"    {index:>2}. {write}")
        return "\n".join(lines)


def _request(url: str, what: str, count: int = 1) -> Write:
    times = f" x{count}" if count > 1 else ""
    return Write("POST", f"{url}/api/v1/assessment{times}", f"{what} (not sent)")


def _commands(step_manual: list[str], what: str) -> list[Write]:
    return [Write("RUN", line, what) for line in step_manual if not line.startswith("#")]


def preview(plan: Plan, target: Target) -> Preview:
    """Walk the go-live's steps against a dry-run ``target``; what each would write."""
    checks = target.preflight()
    flag = traffic.create(plan, target) if plan.traffic.stages else None
    out: list[tuple[str, Write]] = []

    def through_target(name: str, act: Callable[[], object]) -> None:
        before = len(target.writes)
        act()
        out.extend((name, w) for w in target.writes[before:])

    for step in build_steps(plan):
        name = step.name
        if name in ("backup", "verify-backup", "clone-test"):
            out.extend((name, w) for w in _commands(step.manual(plan), "database (not run)"))
        elif name == "migrate":
            command = expand_command(target)
            migrate = partial(target.run_migration, command, {}, plan.database.migration_timeout_s)
            through_target(name, migrate)
        elif name == "deploy-green":
            through_target(name, lambda: target.deploy("green"))
        elif name == "smoke-green":
            out.append((name, _request(target.slot_url("green"), "smoke")))
        elif name == "performance-green":
            count = round(plan.performance.rate_per_s * plan.performance.duration_s)
            out.append((name, _request(target.slot_url("green"), "performance", count)))
        elif name == "switch-to-green":
            through_target(name, lambda: target.switch("green"))
        elif name == "rollback-drill":
            through_target(name, lambda: (target.switch("blue"), target.switch("green")))
        elif name == "verify-switch":
            out.append((name, _request(target.service_url(), "smoke through the service")))
        elif name == "verify-monitoring":
            out.append((name, _request(target.slot_url("green"), "monitoring test request")))
        elif name.startswith("traffic-") and flag is not None:
            through_target(name, partial(flag.set_weight, int(name.removeprefix("traffic-"))))
        elif name == "retire-blue":
            through_target(name, lambda: target.stop("blue"))
    return Preview(checks, out)
