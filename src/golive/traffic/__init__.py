"""Traffic flags: the share of legacy traffic the new engine takes, raised stage by stage.

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
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from golive.errors import PlanError

if TYPE_CHECKING:
    from golive.plan import Plan
    from golive.targets.base import Target
    from golive.traffic.instances import InstanceFlags


class TrafficFlag(Protocol):
    """The percentage of legacy traffic routed to the new engine."""

    key: str

    def set_weight(self, percent: int) -> None:
        """Ask for ``percent`` (0-100); returns once the store accepted it."""
        ...

    def verify(
        self,
        instances: Sequence[str] | None = None,
        percent: int | None = None,
        timeout_s: float = 30.0,
    ) -> Mapping[str, InstanceFlags]:
        """Wait until every serving instance evaluates ``percent``; what each reports.

        Raises ``TrafficFlagError`` naming the instances that did not within ``timeout_s``.
        """
        ...

    def read_weights(self) -> Mapping[str, int]:
        """The weight each serving instance evaluates now, by instance name."""
        ...


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


def serving_instances(target: Target) -> list[str]:
    """URLs of every slot that runs (both evaluate the flag while both run)."""
    from golive.plan import SLOT_NAMES

    return [target.slot_url(s) for s in SLOT_NAMES if target.slot_status(s).running]


def verify_weight(flag: TrafficFlag, percent: int, timeout_s: float = 30.0) -> dict[str, int]:
    """Wait for every instance to evaluate ``percent``; a mismatch raises naming the instances."""
    states = flag.verify(percent=percent, timeout_s=timeout_s)
    weights = {name: int(s.weight if s.weight is not None else -1) for name, s in states.items()}
    wrong = {name: w for name, w in weights.items() if w != percent}
    if not weights or wrong:
        from golive.errors import TargetError

        raise TargetError(
            f"flag {flag.key!r} set to {percent}% but instances read {wrong or 'nothing'}"
        )
    return weights


__all__ = [
    "FlagFactory",
    "TrafficFlag",
    "create",
    "provider",
    "register",
    "registered",
    "serving_instances",
    "verify_weight",
]
