"""Traffic flags: the share of legacy traffic the new engine takes, raised stage by stage.

This module is only the registry of providers; the port and what they share are in ``base``.
``TrafficFlag`` is the port: ``set_weight``, then ``verify`` — wait until *every* serving
instance evaluates the new weight (a flag store that says 50 while one pod still evaluates 10
is not at 50 — the lesson of Argo Rollouts' VerifyWeight) — and ``read_weights`` for a look
at what they evaluate now. Providers, one module each, are built for a plan and its target by
a factory ``factory(plan, target)``:

    flagd-file            traffic/flagd.py        the flagd flag-definition file (local target)
    kubernetes-configmap  traffic/configmap.py    that file as a ConfigMap key, via kubectl
    launchdarkly          traffic/launchdarkly.py a LaunchDarkly percentage rollout (REST API)

There is no default: a plan naming a provider that is not registered fails validation naming
it, and ``provider(name)`` raises the same way — never a silent fallback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from golive.errors import PlanError
from golive.traffic.base import TrafficFlag

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target


FlagFactory = Callable[["Plan", "Target"], TrafficFlag]

# Built-in providers, imported when first asked for (each module is one provider).
_BUILTIN = {
    "flagd-file": "golive.traffic.flagd:from_plan",
    "kubernetes-configmap": "golive.traffic.configmap:from_plan",
    "launchdarkly": "golive.traffic.launchdarkly:from_plan",
}
_PROVIDERS: dict[str, FlagFactory] = {}


def register(name: str, factory: FlagFactory) -> None:
    if name in _BUILTIN or (name in _PROVIDERS and _PROVIDERS[name] is not factory):
        raise ValueError(f"traffic flag provider {name!r} is already registered")
    _PROVIDERS[name] = factory


def registered() -> tuple[str, ...]:
    return tuple(sorted({*_BUILTIN, *_PROVIDERS}))


def provider(name: str) -> FlagFactory:
    """The factory of the named provider; an unknown name is a plan error, never a fallback."""
    if name in _PROVIDERS:
        return _PROVIDERS[name]
    target = _BUILTIN.get(name)
    if target is None:
        raise PlanError(
            [
                f"traffic.flag_provider: no traffic flag provider {name!r} "
                f"(registered: {', '.join(registered())})"
            ]
        )
    module, _, attribute = target.partition(":")
    factory: FlagFactory = getattr(importlib.import_module(module), attribute)
    return factory


def create(plan: Plan, target: Target) -> TrafficFlag:
    """The plan's traffic flag on ``target``."""
    name = plan.traffic.flag_provider
    if name is None:
        raise PlanError(["traffic.flag_provider: the plan names no traffic flag provider"])
    return provider(name)(plan, target)


__all__ = ["FlagFactory", "create", "provider", "register", "registered"]
