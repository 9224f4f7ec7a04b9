"""Traffic flags: the share of legacy traffic the new engine takes, raised stage by stage.

``TrafficFlag`` is the port: ``set_weight`` then ``read_weights`` from *every* serving
instance (a flag store that says 50 while one pod still evaluates 10 is not at 50 — the
lesson of Argo Rollouts' VerifyWeight). Providers (flagd file, Kubernetes ConfigMap,
LaunchDarkly) register here, one module each. There is no default: a plan that names a
provider which is not registered fails validation naming it — never a silent fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from golive.errors import PlanError


class TrafficFlag(Protocol):
    """The percentage of legacy traffic routed to the new engine."""

    key: str

    def set_weight(self, percent: int) -> None:
        """Ask for ``percent`` (0-100); returns once the store accepted it."""
        ...

    def read_weights(self) -> Mapping[str, int]:
        """The weight each serving instance evaluates now, by instance name."""
        ...


FlagFactory = Callable[..., TrafficFlag]
_PROVIDERS: dict[str, FlagFactory] = {}


def register(name: str, factory: FlagFactory) -> None:
    if name in _PROVIDERS and _PROVIDERS[name] is not factory:
        raise ValueError(f"traffic flag provider {name!r} is already registered")
    _PROVIDERS[name] = factory


def registered() -> tuple[str, ...]:
    return tuple(sorted(_PROVIDERS))


def provider(name: str) -> FlagFactory:
    try:
        return _PROVIDERS[name]
    except KeyError:
        available = ", ".join(registered()) or "none yet"
        raise PlanError(
            [f"traffic.flag_provider: no traffic flag provider {name!r} (registered: {available})"]
        ) from None


def verify_weight(flag: TrafficFlag, percent: int) -> dict[str, int]:
    """Read the weight back from every instance; a mismatch raises with the instances named."""
    weights = dict(flag.read_weights())
    wrong = {name: w for name, w in weights.items() if w != percent}
    if not weights or wrong:
        from golive.errors import TargetError

        raise TargetError(
            f"flag {flag.key!r} set to {percent}% but instances read {wrong or 'nothing'}"
        )
    return weights
