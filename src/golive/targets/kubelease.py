"""One runner at a time on Kubernetes: a ``coordination.k8s.io`` Lease, held and renewed.

Beside the state directory's ``flock`` (which only keeps out processes that share the volume),
the Lease keeps out every other runner of the namespace: a second Job, an operator's ``golive
run`` from a laptop. It works as client-go's leader election does:

- **claim**: read the Lease; absent, create it (a 409 AlreadyExists means another runner was
  first). Held by nobody (released), or not renewed for ``duration_s`` + a margin by the wall
  clock, take it over with a write guarded by its resourceVersion (a 409 means another runner
  took it first). Held by another, watch it: if its holder renews it (the resourceVersion
  moves), the claim fails with ``GoLiveBusyError`` naming the holder; if nothing moves for
  ``duration_s`` on our own clock, the holder is dead and the Lease is taken over.
- **renew**: a thread writes ``renewTime`` every ``renew_s``. A renewal that finds another
  holder, or no renewal that succeeds for ``duration_s``, marks the Lease lost: ``check()``
  then raises ``LeaseLost`` and the runner stops acting without undoing (the new holder
  decides, from the same journal).
- **release**: at the end, ``holderIdentity`` is cleared, so the next runner need not wait.

A runner killed with SIGKILL never releases: its successor waits at most ``duration_s`` (plus
one renewal) before taking over.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from golive.errors import GoLiveBusyError, KubernetesApiError, LeaseLost, TargetError
from golive.targets.kubeapi import KubernetesApi

KIND = "leases"
# How far the wall clocks of two pods may disagree before a Lease that looks long dead is
# watched instead of taken over at once.
CLOCK_MARGIN_S = 5.0


def micro_time(at: float | None = None) -> str:
    """Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the Lease, as the API reads it."""

    identity: str
    renewed: str | None
    duration_s: float
    transitions: int

    @classmethod
    def of(cls, lease: dict[str, Any]) -> LeaseHolder | None:
        spec = lease.get("spec") or {}
        identity = str(spec.get("holderIdentity") or "")
        if not identity:
            return None
        return cls(
            identity=identity,
            renewed=spec.get("renewTime") or spec.get("acquireTime"),
            duration_s=float(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def age_s(self, now: float | None = None) -> float | None:
        renewed = _epoch(self.renewed)
        return None if renewed is None else (time.time() if now is None else now) - renewed

    def expired(self, now: float | None = None) -> bool:
        """Not renewed for its duration plus the clock margin, by this machine's clock."""
        age = self.age_s(now)
        return age is not None and age > self.duration_s + CLOCK_MARGIN_S

    def describe(self) -> str:
        age = self.age_s()
        when = f"renewed {age:.0f}s ago" if age is not None else "never renewed"
        return f"{self.identity} ({when}, lease {self.duration_s:g}s)"


class RunLease:
    """The Lease ``name`` in the API's namespace, claimed for ``identity``."""

    def __init__(
        self,
        api: KubernetesApi,
        name: str,
        identity: str,
        *,
        duration_s: float,
        renew_s: float,
        poll_s: float = 0.5,
    ) -> None:
        self.api = api
        self.name = name
        self.identity = identity
        self.duration_s = duration_s
        self.renew_s = renew_s
        self.poll_s = poll_s
        self.took_over: LeaseHolder | None = None  # whose expired Lease this claim took
        self._version: str | None = None
        self._lost: str | None = None
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading --------------------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        return self.api.find(KIND, self.name)

    def holder(self) -> LeaseHolder | None:
        lease = self.read()
        return LeaseHolder.of(lease) if lease is not None else None

    # --- claiming -------------------------------------------------------------------------

    def _spec(self, transitions: int) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration_s)),
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def claim(self) -> RunLease:
        """Take the Lease or raise ``GoLiveBusyError`` naming who holds it."""
        watched: tuple[str, float] | None = None  # (resourceVersion, since) of a live holder
        while True:
            lease = self.read()
            if lease is None:
                if self._create():
                    return self
                continue
            holder = LeaseHolder.of(lease)
            version = str(lease["metadata"].get("resourceVersion", ""))
            if holder is not None and holder.identity == self.identity:
                self._version = version  # ours already (a claim repeated)
                return self._started()
            if holder is None or holder.expired():
                if self._take_over(lease, holder):
                    return self
                continue
            if watched is None:
                watched = (version, time.monotonic())
            elif watched[0] != version:
                raise self._busy(holder, "it renews the Lease")
            elif time.monotonic() - watched[1] > holder.duration_s:
                if self._take_over(lease, holder):
                    return self
                continue
            time.sleep(self.poll_s)

    def _create(self) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.api.namespace},
            "spec": self._spec(0),
        }
        try:
            created = self.api.create_own(KIND, body)
        except KubernetesApiError as exc:
            if exc.status == 409:
                return False  # another runner created it first: read it again
            raise
        self._version = str(created.get("metadata", {}).get("resourceVersion", ""))
        self._started()
        return True

    def _take_over(self, lease: dict[str, Any], holder: LeaseHolder | None) -> bool:
        spec = lease.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
        body = {**lease, "spec": {**spec, **self._spec(transitions)}}
        try:
            taken = self.api.replace_own(KIND, self.name, body)
        except KubernetesApiError as exc:
            if exc.status == 409:
                return False  # changed meanwhile: another runner, or the holder renewed
            raise
        self.took_over = holder
        self._version = str(taken.get("metadata", {}).get("resourceVersion", ""))
        self._started()
        return True

    def _busy(self, holder: LeaseHolder, why: str) -> GoLiveBusyError:
        return GoLiveBusyError(
            f"another golive runs this go-live: the Lease {self.api.namespace}/{self.name} is "
            f"held by {holder.describe()}, and {why}",
            hint="`golive status --plan PLAN` shows where it stands; steer it with `golive "
            "pause|resume|rollback|approve --plan PLAN`",
        )

    # --- holding --------------------------------------------------------------------------

    def _started(self) -> RunLease:
        self._renewed = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="golive-lease")
            self._thread.daemon = True
            self._thread.start()
        return self

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            try:
                self.renew()
            except TargetError as exc:
                if time.monotonic() - self._renewed > self.duration_s:
                    self._lost = f"not renewed for {self.duration_s:g}s: {exc.message}"
            if self._lost is not None:
                return

    def renew(self) -> None:
        lease = self.read()
        holder = LeaseHolder.of(lease) if lease is not None else None
        if lease is None or holder is None or holder.identity != self.identity:
            self._lost = f"now held by {holder.describe() if holder else 'nobody'}"
            return
        spec = {**(lease.get("spec") or {}), "renewTime": micro_time()}
        try:
            renewed = self.api.replace_own(KIND, self.name, {**lease, "spec": spec})
        except KubernetesApiError as exc:
            if exc.status != 409:
                raise
            return  # changed between our read and write: the next renewal reads again
        self._version = str(renewed.get("metadata", {}).get("resourceVersion", ""))
        self._renewed = time.monotonic()

    def taken_from(self) -> str | None:
        """The runner whose Lease this claim took over (it had stopped renewing)."""
        return self.took_over.describe() if self.took_over is not None else None

    def check(self) -> None:
        """Raise ``LeaseLost`` once the Lease is no longer ours."""
        if self._lost is not None:
            raise LeaseLost(f"the Lease {self.api.namespace}/{self.name} was lost: {self._lost}")

    def release(self) -> None:
        """Stop renewing; clear the holder so a successor need not wait (when still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew_s + 5)
            self._thread = None
        if self._lost is not None:
            return
        with contextlib.suppress(TargetError):
            lease = self.read()
            holder = LeaseHolder.of(lease) if lease is not None else None
            if lease is not None and holder is not None and holder.identity == self.identity:
                spec = {**(lease.get("spec") or {}), "holderIdentity": None}
                spec["renewTime"] = micro_time()
                self.api.replace_own(KIND, self.name, {**lease, "spec": spec})

    @contextlib.contextmanager
    def held(self) -> Iterator[RunLease]:
        self.claim()
        try:
            yield self
        finally:
            self.release()
