"""The ``Target`` port and its value types, and ``Procedures``: what a target is, for the steps.

A target deploys a slot (blue or green), says when it is ready, gives its URL, switches the
service between slots (verified by reading the router's state back) and scales a slot down.
``Procedures`` is what the same target means for a person: each step's by-hand equivalent and
how long it is expected to take, known from the plan alone (the runbook renders it without
reaching the target). Steps call these and never name a kind of target; each provider module
(``local``, ``kubernetes``, ``fake``) implements them and imports only this module and the plan.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from golive.checks import Check
from golive.journal import ControlChannel

__all__ = [
    "Action",
    "Check",
    "Claim",
    "Coordination",
    "Instance",
    "Procedures",
    "RouterState",
    "SlotStatus",
    "SwitchResult",
    "Target",
    "Write",
]

if TYPE_CHECKING:
    from golive.plan import SlotName
    from golive.smoke import Dependency

# The steps whose duration or by-hand procedure depends on the target.
Action = Literal[
    "preflight",
    "backup",
    "verify-backup",
    "clone-test",
    "migrate",
    "verify-database",
    "deploy",
    "wait-ready",
    "smoke",
    "switch",
    "verify-switch",
    "validate",
]


@dataclass(frozen=True)
class SlotStatus:
    name: str
    running: bool
    ready: bool
    version: str | None = None
    url: str | None = None
    detail: str = ""
    size: str = ""  # what serves in the slot: "2 workers" (a process), "3 replicas" (pods)


@dataclass(frozen=True)
class Write:
    """One change made to the target (in a dry run: one it would make), as sent."""

    method: str  # PATCH, POST, DELETE, or RUN for a command
    path: str  # the API path, or the command line
    summary: str = ""

    def __str__(self) -> str:
        return f"{self.method} {self.path}" + (f"  # {self.summary}" if self.summary else "")


@dataclass(frozen=True)
class Instance:
    """One serving instance of a slot: a pod, or the slot's one server on the local target."""

    name: str
    url: str  # reaches this instance alone (a pod: through the API server's pod proxy)
    # The labels that tell this instance's series apart in Prometheus ({"pod": name}); empty
    # where the slot's own label is enough.
    labels: Mapping[str, str] = field(default_factory=dict)


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


class Claim(Protocol):
    """A runner's hold on its go-live beyond the state directory (Kubernetes: the Lease)."""

    def check(self) -> None:
        """Raise ``LeaseLost`` once the hold is gone (another runner has it now)."""
        ...

    def taken_from(self) -> str | None:
        """The runner whose expired hold this claim took over (None: it was free)."""
        ...


class Coordination(Protocol):
    """Where runners and operators meet when they do not share a machine: one runner at a
    time, operators' requests, the runner's status. Kubernetes keeps them in the cluster (a
    Lease, a ConfigMap: ``golive.targets.kubelease``, ``kubecontrol``); a target without one
    (local, fake) returns None from ``Target.coordination`` and the state directory serves."""

    def claim(self, identity: str) -> AbstractContextManager[Claim]:
        """Hold the go-live for ``identity``; ``GoLiveBusyError`` naming the holder if taken."""
        ...

    def holder(self) -> str | None:
        """Who holds the go-live now (None: nobody, or a holder whose hold has expired)."""
        ...

    def control(self) -> ControlChannel:
        """The channel operators' requests travel by."""
        ...

    def publish(self, status: dict[str, Any]) -> None:
        """The running go-live's status, for ``golive status`` from anywhere."""
        ...

    def status(self) -> dict[str, Any] | None:
        """The status last published (None: never)."""
        ...


class Target(Protocol):
    """Deploy slots, route the service to one of them, scale them down."""

    kind: str
    # A dry run: every write is recorded in ``writes`` and not made; reads are real.
    dry_run: bool

    @property
    def writes(self) -> list[Write]:
        """Every write made so far (in a dry run: every write it would make), in order."""
        ...

    # True when a slot's /metrics at its URL covers every instance of the slot (the local
    # target: one server per slot); False where that URL reaches one instance of many, so gates
    # must read a Prometheus that scrapes them all.
    slot_metrics_complete: bool

    def preflight(self) -> list[Check]:
        """Is the target reachable? Reads only: nothing is changed."""
        ...

    def database_url(self) -> str: ...

    def service_env(self) -> dict[str, str]:
        """Environment for the service's own CLI (migrations, tokens): database and secrets."""
        ...

    def service_cli(self) -> str:
        """The service's own command line, as golive runs it (migrations, tokens)."""
        ...

    def monitoring(self) -> dict[str, Any]:
        """The monitoring this target started itself ({"prometheus": {"url": ...},
        "alertmanager": ...} or {"skipped": why}); empty when the plan names it instead."""
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

    def instances(self, slot: SlotName) -> list[Instance]:
        """The slot's ready instances, each reachable on its own (empty when none is ready)."""
        ...

    def metric_selector(self, slot: SlotName) -> str:
        """PromQL label matchers for every series of ``slot`` (all its instances)."""
        ...

    def check_endpoints(self, slot: SlotName) -> Check:
        """The service routes to exactly ``slot``'s ready instances (read back, not assumed)."""
        ...

    def run_migration(
        self, command: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        """Run the release's migration command where the release runs (a local process, the
        cluster's migration Job); its exit code and output, never raising on a non-zero exit."""
        ...

    def coordination(self) -> Coordination | None:
        """Where runners and operators meet beyond the state directory (None: only there)."""
        ...

    def instance_http(self, timeout_s: float) -> httpx.Client:
        """An HTTP client that reaches ``instances()``' URLs: through an API server's pod proxy
        it carries the API's credentials and trusts its CA (the caller closes it)."""
        ...


class Procedures(Protocol):
    """A target's by-hand procedures and timings, from the plan alone."""

    def expected_s(self, action: Action) -> float:
        """How long the action is expected to take on this target, in seconds."""
        ...

    def inspect(self) -> list[str]:
        """Commands that show the target's state before a go-live (preflight)."""
        ...

    def backup(self, dump: str) -> list[str]:
        """Commands that write a custom-format backup of the database to ``dump``."""
        ...

    def migrate(self) -> list[str]:
        """Commands that apply the expand migrations to the live database."""
        ...

    def deploy(self, slot: SlotName) -> list[str]:
        """Commands that start ``slot`` at the plan's version, out of the service."""
        ...

    def wait_ready(self, slot: SlotName) -> list[str]:
        """Commands that wait until ``slot`` answers ready."""
        ...

    def switch(self, to: SlotName) -> list[str]:
        """Commands that route the service to ``to`` and show that they did."""
        ...

    def scale_down(self, slot: SlotName) -> list[str]:
        """Commands that take ``slot`` out of the service and stop it."""
        ...
