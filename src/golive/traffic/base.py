"""The ``TrafficFlag`` port, and what every flag provider shares: the flag's key, the weight's
bounds, the serving instances, and reading the flag back from them.

Reading back:
each serving instance answers ``GET /flags`` with the version of the flag set it evaluates and
the weight. ``InstancePoller`` reads it on a fresh connection each time (a kept-alive
connection would always reach the same worker process of an instance; fresh ones are spread
over its workers by the kernel) and ``wait_for`` asks every instance for ``confirmations``
matching reads in a row before it counts as converged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from golive.errors import TargetError, TrafficFlagError
from golive.plan import SLOT_NAMES
from golive.targets.base import Instance

if TYPE_CHECKING:
    from golive.targets.base import Target

# An instance to read the flag from: its URL (named by it), or a named ``Instance`` (a pod).
Endpoint = str | Instance


def as_instance(endpoint: Endpoint) -> Instance:
    """The endpoint as a named instance, its URL without a trailing slash."""
    if isinstance(endpoint, str):
        url = endpoint.rstrip("/")
        return Instance(url, url)
    return Instance(endpoint.name, endpoint.url.rstrip("/"), endpoint.labels)


FLAG_KEY = "new-credit-assessment-enabled"
READERS = 8  # instances read side by side


@dataclass(frozen=True, slots=True)
class InstanceFlags:
    """What one instance reports on ``GET /flags``."""

    instance: str
    version: str | None
    weight: int | None
    problem: str | None = None

    def describe(self) -> str:
        if self.problem and self.weight is None:
            return f"{self.instance} ({self.problem})"
        return f"{self.instance} (weight {self.weight}%, version {self.version})"


class InstancePoller:
    """Reads ``GET {instance}/flags`` from serving instances (shared by the flag providers)."""

    def __init__(
        self,
        instances: Sequence[Endpoint] | Callable[[], Sequence[Endpoint]],
        key: str,
        *,
        timeout_s: float = 2.0,
        poll_s: float = 0.2,
        confirmations: int = 1,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        """``client`` reaches the instances (the target's ``instance_http``: through a pod
        proxy, the API's identity); it is closed with the poller."""
        self._instances = instances
        self.key = key
        self.poll_s = poll_s
        self.confirmations = max(1, confirmations)
        self._http = client or httpx.Client(
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def instances(self, given: Sequence[Endpoint] | None = None) -> list[Instance]:
        found = (
            given
            if given is not None
            else (self._instances() if callable(self._instances) else self._instances)
        )
        return [as_instance(e) for e in found]

    def read(self, instance: Endpoint) -> InstanceFlags:
        instance = as_instance(instance)
        name = instance.name
        try:
            response = self._http.get(f"{instance.url}/flags")
            body = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            return InstanceFlags(name, None, None, f"unreachable: {type(exc).__name__}")
        if not isinstance(body, dict):
            return InstanceFlags(name, None, None, f"GET /flags answered {response.status_code}")
        flag = (body.get("flags") or {}).get(self.key) or {}
        weight = flag.get("weightPercent") if isinstance(flag, dict) else None
        return InstanceFlags(
            name,
            body.get("flagSetVersion"),
            int(weight) if isinstance(weight, int | float) else None,
            body.get("problem"),
        )

    def _read_all(self, instances: Sequence[Instance]) -> list[InstanceFlags]:
        """One read of each instance, side by side: through an API server's pod proxy a read
        takes a round trip of its own, and a slot may have many pods."""
        if len(instances) <= 1:
            return [self.read(i) for i in instances]
        with ThreadPoolExecutor(max_workers=min(READERS, len(instances))) as pool:
            return list(pool.map(self.read, instances))

    def read_weights(
        self, instances: Sequence[Endpoint] | None = None, attempts: int = 3
    ) -> dict[str, int]:
        """Each instance's weight; an instance that does not answer is asked again (up to
        ``attempts`` reads, ``poll_s`` apart: a pod proxy under load may time out once)."""
        targets = self.instances(instances)
        states = self._read_all(targets)
        for _ in range(attempts - 1):
            silent = [t for t, s in zip(targets, states, strict=True) if s.weight is None]
            if not silent:
                break
            time.sleep(self.poll_s)
            again = dict(zip((t.name for t in silent), self._read_all(silent), strict=True))
            states = [again.get(t.name, s) for t, s in zip(targets, states, strict=True)]
        unread = [s for s in states if s.weight is None]
        if unread:
            raise TrafficFlagError(
                f"cannot read flag {self.key!r} from: " + ", ".join(u.describe() for u in unread)
            )
        return {s.instance: int(s.weight or 0) for s in states}

    def wait_for(
        self,
        instances: Sequence[Endpoint] | None,
        percent: int,
        version: str | None,
        timeout_s: float,
    ) -> dict[str, InstanceFlags]:
        """Poll until every instance reports ``percent`` (and ``version`` when given)."""
        targets = self.instances(instances)
        if not targets:
            raise TrafficFlagError("no serving instances to verify the traffic flag on")
        deadline = time.monotonic() + timeout_s
        latest: dict[str, InstanceFlags] = {}
        matched = {i.name: 0 for i in targets}  # matching reads in a row
        while True:
            waiting = [i for i in targets if matched[i.name] < self.confirmations]
            for instance, state in zip(waiting, self._read_all(waiting), strict=True):
                latest[instance.name] = state
                ok = state.weight == percent and (version is None or state.version == version)
                matched[instance.name] = matched[instance.name] + 1 if ok else 0
            pending = [i.name for i in targets if matched[i.name] < self.confirmations]
            if not pending:
                return latest
            if time.monotonic() >= deadline:
                wanted = f"weight {percent}%" + (f", version {version}" if version else "")
                raise TrafficFlagError(
                    f"{len(pending)} of {len(targets)} instance(s) did not converge on {wanted} "
                    f"within {timeout_s:g} s: " + "; ".join(latest[i].describe() for i in pending)
                )
            time.sleep(self.poll_s)

    def close(self) -> None:
        self._http.close()


def check_percent(percent: int) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise TrafficFlagError(f"a traffic weight is a whole percentage 0-100, not {percent!r}")
    return percent


class TrafficFlag(Protocol):
    """The percentage of legacy traffic routed to the new engine."""

    key: str

    def set_weight(self, percent: int) -> None:
        """Ask for ``percent`` (0-100); returns once the store accepted it."""
        ...

    def verify(
        self,
        instances: Sequence[Endpoint] | None = None,
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

    def stored_weights(self) -> Mapping[str, int]:
        """Every flag of the store's flag set and the share of clients it serves its ``on``
        value (0: disabled, or enabled at 0%), read from the store itself."""
        ...


class PolledFlag:
    """What every provider's flag does the same way: read the weights back from its poller."""

    _poller: InstancePoller

    def read_weights(self) -> dict[str, int]:
        """The weight each serving instance evaluates now (the ``TrafficFlag`` port)."""
        return self._poller.read_weights()


def serving_instances(target: Target) -> list[Instance]:
    """Every ready instance of every slot that runs (both evaluate the flag while both run):
    each pod on its own where a slot has many."""
    return [
        instance
        for slot in SLOT_NAMES
        if target.slot_status(slot).running
        for instance in target.instances(slot)
    ]


def verify_weight(flag: TrafficFlag, percent: int, timeout_s: float = 30.0) -> dict[str, int]:
    """Wait for every instance to evaluate ``percent``; a mismatch raises naming the instances."""
    states = flag.verify(percent=percent, timeout_s=timeout_s)
    weights = {name: int(s.weight if s.weight is not None else -1) for name, s in states.items()}
    wrong = {name: w for name, w in weights.items() if w != percent}
    if not weights or wrong:
        raise TargetError(
            f"flag {flag.key!r} set to {percent}% but instances read {wrong or 'nothing'}"
        )
    return weights
