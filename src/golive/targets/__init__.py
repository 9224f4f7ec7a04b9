"""Where the slots run: the registry of the ``Target`` providers (the port is in ``base``).

One module per provider: ``local`` (real processes behind HAProxy on this machine) and
``kubernetes`` (Deployments and a live Service in a cluster). This is the only place that
switches on the plan's target kind. Asking for a provider that is not registered fails loudly,
naming it — never a silent fallback to another.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from golive.errors import PlanError
from golive.targets.base import Procedures, Target

if TYPE_CHECKING:
    from golive.plan import Plan

# kind -> the provider's module; each has ``target(plan)`` and ``procedures(plan)``. Imported
# when first asked for, so that a plan for one target needs nothing of another (kubectl, HAProxy).
_PROVIDERS = {"local": "golive.targets.local", "kubernetes": "golive.targets.kubernetes"}


def registered() -> tuple[str, ...]:
    return tuple(sorted(_PROVIDERS))


def _provider(plan: Plan) -> Any:
    try:
        module = _PROVIDERS[plan.target.kind]
    except KeyError:
        raise PlanError(
            [
                f"{plan.source}: target.kind: no target provider {plan.target.kind!r} is "
                f"registered (registered: {', '.join(registered())})"
            ]
        ) from None
    return importlib.import_module(module)


def create(plan: Plan, *, dry_run: bool = False) -> Target:
    """The plan's target; with ``dry_run`` one that records its writes and makes none."""
    provider = _provider(plan)
    target: Target = provider.target(plan, dry_run=True) if dry_run else provider.target(plan)
    return target


def procedures(plan: Plan) -> Procedures:
    """The plan's target as a person meets it: procedures by hand, expected durations."""
    found: Procedures = _provider(plan).procedures(plan)
    return found
