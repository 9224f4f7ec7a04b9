"""An in-memory target for unit tests of the runner and the steps: a real fake of the port.

It keeps slots and the router as plain state, records every call in ``calls``, and can be
told to fail: ``fail_on={"deploy:green": TargetError("...")}`` raises on that call,
``never_ready={"green"}`` makes ``wait_ready`` time out.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from golive.errors import TargetError
from golive.plan import SlotName
from golive.smoke import Dependency
from golive.targets.base import Check, Instance, RouterState, SlotStatus, SwitchResult, Write


@dataclass
class FakeTarget:
    kind: str = "fake"
    slot_metrics_complete: bool = True
    dry_run: bool = False
    running: dict[str, str] = field(default_factory=lambda: {"blue": "1.9.0"})
    active: str | None = "blue"
    reachable: bool = True
    never_ready: set[str] = field(default_factory=set)
    fail_on: dict[str, Exception] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=lambda: {"blue": "1.9.0", "green": "2.0.0"})
    known_dependencies: list[Dependency] = field(default_factory=list)

    @property
    def writes(self) -> list[Write]:
        return [Write("CALL", c) for c in self.calls]

    def _call(self, name: str) -> None:
        self.calls.append(name)
        error = self.fail_on.get(name)
        if error is not None:
            raise error

    def preflight(self) -> list[Check]:
        self._call("preflight")
        return [Check("router", self.reachable, "fake router" if self.reachable else "unreachable")]

    def database_url(self) -> str:
        return "postgresql://fake/credit_assessment"

    def service_env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url()}

    def monitoring(self) -> dict[str, Any]:
        return {}  # a fake starts none

    def service_cli(self) -> str:
        return "credit-assessment"

    def dependencies(self) -> list[Dependency]:
        return list(self.known_dependencies)

    def deploy(self, slot: SlotName) -> bool:
        self._call(f"deploy:{slot}")
        if slot in self.running:
            return False
        self.running[slot] = self.versions[slot]
        return True

    def wait_ready(self, slot: SlotName, timeout_s: float) -> float:
        self._call(f"wait_ready:{slot}")
        if slot in self.never_ready or slot not in self.running:
            raise TargetError(f"{slot} was not ready within {timeout_s:g}s")
        return 0.01

    def slot_url(self, slot: SlotName) -> str:
        return f"http://fake-{slot}"

    def service_url(self) -> str:
        return "http://fake-router"

    def slot_status(self, slot: SlotName) -> SlotStatus:
        up = slot in self.running
        return SlotStatus(slot, up, up and slot not in self.never_ready, self.running.get(slot))

    def router_state(self) -> RouterState:
        return RouterState(self.active, {s: "ready/up" for s in self.running})

    def switch(self, slot: SlotName) -> SwitchResult:
        self._call(f"switch:{slot}")
        if self.active == slot:
            return SwitchResult(slot, slot, changed=False, command="", elapsed_ms=0.0)
        if slot not in self.running:
            raise TargetError(f"refusing to switch: {slot} is not running")
        before, self.active = self.active, slot
        return SwitchResult(before, slot, changed=True, command=f"switch {slot}", elapsed_ms=0.1)

    def stop(self, slot: SlotName) -> bool:
        self._call(f"stop:{slot}")
        if self.active == slot:
            raise TargetError(f"refusing to stop {slot}: it serves the traffic")
        return self.running.pop(slot, None) is not None

    def instances(self, slot: SlotName) -> list[Instance]:
        url = self.slot_url(slot)
        return [Instance(url, url)] if slot in self.running else []

    def metric_selector(self, slot: SlotName) -> str:
        return f'slot="{slot}"'

    def check_endpoints(self, slot: SlotName) -> Check:
        self._call(f"check_endpoints:{slot}")
        return Check("endpoints fake", self.active == slot, f"the fake router serves {self.active}")

    def run_migration(
        self, command: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        self._call("run_migration")
        return subprocess.CompletedProcess(list(command), 0, "migrated (fake)", "")

    def instance_http(self, timeout_s: float) -> httpx.Client:
        return httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_keepalive_connections=0))

    def coordination(self) -> None:
        return None  # the state directory alone: its lock and control.json
