"""Whether this build can run a plan: every provider it names is registered.

A plan is valid on its own (``golive.plan``: schema, lines, fields); whether its target and its
traffic flag provider exist in this build is a second question, asked before a run (a build
without a provider can still render the plan's runbook). It lives here, above the plan and the
registries, so that the plan imports neither.
"""

from __future__ import annotations

import yaml

from golive import targets, traffic
from golive.errors import PlanError
from golive.plan import Plan, line_of


def check_runnable(plan: Plan) -> None:
    """Fail loudly when the plan names a provider this build does not have."""
    problems = []
    root = yaml.compose(plan.source.read_text(encoding="utf-8")) if plan.source.exists() else None
    if plan.target.kind not in targets.registered():
        problems.append(
            f"{plan.source}:{line_of(root, ('target', 'kind'))}: target.kind: no target provider "
            f"{plan.target.kind!r} is registered (registered: {', '.join(targets.registered())})"
        )
    provider = plan.traffic.flag_provider
    if provider is not None and provider not in traffic.registered():
        available = ", ".join(traffic.registered()) or "none yet"
        problems.append(
            f"{plan.source}:{line_of(root, ('traffic', 'flag_provider'))}: traffic.flag_provider: "
            f"no traffic flag provider {provider!r} is registered (registered: {available})"
        )
    if problems:
        raise PlanError(problems, hint="this build cannot run the plan; it can render its runbook")
