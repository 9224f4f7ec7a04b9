"""Where the slots run: the ``Target`` port and the registry of its providers.

A target deploys a slot (blue or green), says when it is ready, gives its URL, switches the
service between slots (verified by reading the router's state back) and scales a slot down.
One module per provider: ``local`` (real processes behind HAProxy on this machine) and
``kubernetes`` (Deployments and a live Service in a cluster). Asking for a provider that is not
registered fails loudly, naming it — never a silent fallback to another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from golive.errors import PlanError

if TYPE_CHECKING:
    from golive.plan import Plan, SlotName
    from golive.smoke import Dependency


@dataclass(frozen=True)
class Check:
    """One preflight finding."""

    name: str
    passed: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.passed else 'FAIL'}] {self.name}: {self.detail}"


@dataclass(frozen=True)
class SlotStatus:
    name: str
    running: bool
    ready: bool
    version: str | None = None
    url: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class RouterState:
    """Which slot takes new requests, and each server's state as the router reports it."""

    active: str | None
    servers: dict[str, str] = field(default_factory=dict)  # slot -> "ready/up", "drain/up", ...


@dataclass(frozen=True)
class SwitchResult:
    before: str | None
    after: str
    changed: bool
    command: str
    elapsed_ms: float


class Target(Protocol):
    """Deploy slots, route the service to one of them, scale them down."""

    kind: str

    def preflight(self) -> list[Check]:
        """Is the target reachable? Reads only: nothing is changed."""
        ...

    def database_url(self) -> str: ...

    def service_env(self) -> dict[str, str]:
        """Environment for the service's own CLI (migrations, tokens): database and secrets."""
        ...

    def dependencies(self) -> list[Dependency]:
        """External services this target runs for the slots (the rehearsal's emulators), for the
        smoke test to check beside the plan's own; empty when the target runs none."""
        ...

    def deploy(self, slot: SlotName) -> bool:
        """Start the slot at the plan's version (idempotent: False when already running)."""
        ...

    def wait_ready(self, slot: SlotName, timeout_s: float) -> float:
        """Seconds until the slot answers ready; raises TargetError on timeout."""
        ...

    def slot_url(self, slot: SlotName) -> str: ...

    def service_url(self) -> str: ...

    def slot_status(self, slot: SlotName) -> SlotStatus: ...

    def router_state(self) -> RouterState: ...

    def switch(self, slot: SlotName) -> SwitchResult:
        """Route new requests to ``slot``, the other slot drained; verified by reading back."""
        ...

    def stop(self, slot: SlotName) -> bool:
        """Take the slot out of the router and stop it (idempotent: False when not running)."""
        ...


TargetFactory = Callable[["Plan"], Target]


def _local(plan: Plan) -> Target:
    from golive.targets.local import LocalTarget

    return LocalTarget(plan)


def _kubernetes(plan: Plan) -> Target:
    from golive.targets.kubernetes import KubernetesTarget

    return KubernetesTarget(plan)


_PROVIDERS: dict[str, TargetFactory] = {"local": _local, "kubernetes": _kubernetes}


def registered() -> tuple[str, ...]:
    return tuple(sorted(_PROVIDERS))


def create(plan: Plan) -> Target:
    try:
        factory = _PROVIDERS[plan.target.kind]
    except KeyError:
        raise PlanError(
            [
                f"{plan.source}: target.kind: no target provider {plan.target.kind!r} is "
                f"registered (registered: {', '.join(registered())})"
            ]
        ) from None
    return factory(plan)
