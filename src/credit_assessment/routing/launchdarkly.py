"""The traffic flag evaluated by LaunchDarkly's server SDK (``FLAG_PROVIDER=launchdarkly``).

The OpenFeature LaunchDarkly provider wraps the SDK, so a client is decided exactly as with
flagd: ``get_boolean_value(FLAG_KEY, False, targeting_key=<client id>)``; the SDK buckets the
client id with the flag's salt against the rollout's weights (out of 100000), so a client on
the new engine at 10% is still on it at 50% and 100%.

The SDK streams the flags (server-sent events from ``LAUNCHDARKLY_STREAM_URI``): a change
reaches every instance within a second or so, where polling would wait the SDK's minimum of
30 s. Analytics events are off unless ``LAUNCHDARKLY_EVENTS_URI`` names where to send them.

Readiness (``problem``): not ready until the SDK has received the flags, and not ready once its
data source has been lost (stream closed, refused, failing) for longer than
``LAUNCHDARKLY_STALE_S``; meanwhile the SDK keeps evaluating the last flags it received. While
not ready every request goes to legacy. A refused SDK key (401/403) is named as such; the key
itself is never shown.

``/flags`` reports the flag's version in the environment (LaunchDarkly's per-environment
version, which every change raises) and the weight in use: the share of clients the flag's
first rollout (a rule's, else the fallthrough's) serves ``true``, 0 while the flag is off.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from credit_assessment.routing import FLAG_KEY
from credit_assessment.routing.flags import FlagVersion

log = structlog.get_logger()
PROVIDER = "launchdarkly"
TOTAL_WEIGHT = 100_000


def weight_of(flag: Mapping[str, Any] | None) -> int | None:
    """The share of clients (percent) the SDK representation of a flag serves ``true``."""
    if not flag or flag.get("deleted"):
        return None
    variations = flag.get("variations") or []

    def serves_true(index: Any) -> bool:
        return isinstance(index, int) and 0 <= index < len(variations) and variations[index] is True

    if not flag.get("on"):
        return 100 if serves_true(flag.get("offVariation")) else 0
    serves = [rule for rule in flag.get("rules") or [] if rule.get("rollout")]
    serve = serves[0] if serves else (flag.get("fallthrough") or {})
    rollout = serve.get("rollout")
    if not rollout:
        return 100 if serves_true(serve.get("variation")) else 0
    weights = rollout.get("variations") or []
    total = sum(int(w.get("weight", 0)) for w in weights) or TOTAL_WEIGHT
    on = sum(int(w.get("weight", 0)) for w in weights if serves_true(w.get("variation")))
    return round(100 * on / total)


class _QuietStart(logging.Filter):
    """The client is created without waiting (start-up never blocks on LaunchDarkly), so the
    SDK always logs that its initialisation timed out; readiness reports the real state."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Initialization timeout exceeded" not in record.getMessage()


_QUIET_START = _QuietStart()


class LaunchDarklyFlag:
    """The flag through the OpenFeature LaunchDarkly provider; the ``TrafficFlag`` seam."""

    def __init__(
        self,
        sdk_key: str,
        *,
        base_uri: str,
        stream_uri: str,
        events_uri: str | None = None,
        stale_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sdk_key = sdk_key
        self.base_uri = base_uri.rstrip("/")
        self.stream_uri = stream_uri.rstrip("/")
        self.events_uri = events_uri.rstrip("/") if events_uri else None
        self.stale_s = stale_s
        self._clock = clock
        self._domain = f"credit-assessment-ld-{uuid.uuid4().hex}"
        self._provider: Any = None
        self._store: Any = None
        self._of_client: Any = None
        self.last_problem: str | None = None

    def __repr__(self) -> str:
        return f"LaunchDarklyFlag(stream={self.stream_uri}, sdk_key=***)"

    def start(self) -> None:
        """Create the SDK client; it connects in the background (never blocks start-up)."""
        from ld_openfeature import LaunchDarklyProvider
        from ldclient import Config
        from ldclient.feature_store import InMemoryFeatureStore
        from openfeature import api

        sdk_log = logging.getLogger("ldclient.util")
        if _QUIET_START not in sdk_log.filters:
            sdk_log.addFilter(_QUIET_START)
        self._store = InMemoryFeatureStore()
        config = Config(
            self._sdk_key,
            base_uri=self.base_uri,
            stream_uri=self.stream_uri,
            events_uri=self.events_uri or "https://events.launchdarkly.com",
            send_events=self.events_uri is not None,
            diagnostic_opt_out=self.events_uri is None,
            feature_store=self._store,
            initial_reconnect_delay=0.5,
        )
        self._provider = LaunchDarklyProvider(config, start_wait=0)
        api.set_provider(self._provider, domain=self._domain)
        self._of_client = api.get_client(self._domain)
        log.info("flags_provider_started", provider=PROVIDER, stream=self.stream_uri)

    async def stop(self) -> None:
        if self._provider is not None:
            with contextlib.suppress(Exception):
                self._provider.shutdown()

    # ------------------------------------------------------------------ what the SDK holds

    def _sdk(self) -> Any:
        return self._provider.client if self._provider is not None else None

    def _flag(self) -> dict[str, Any] | None:
        if self._store is None:
            return None
        item = self._store.get(_features(), FLAG_KEY, _found)
        if item is None:
            return None
        document = item.to_json_dict() if hasattr(item, "to_json_dict") else item
        return dict(document) if isinstance(document, Mapping) else None

    @property
    def current(self) -> FlagVersion | None:
        flag = self._flag()
        weight = weight_of(flag)
        if flag is None or weight is None:
            return None
        return FlagVersion(str(flag.get("version")), weight, b"")

    @property
    def problem(self) -> str | None:
        kind, found = self._problem()
        if kind != self.last_problem:  # logged once per kind, not at every probe
            if found:
                (log.info if kind == "connecting" else log.warning)(
                    "flags_unavailable", provider=PROVIDER, problem=found
                )
            else:
                log.info("flags_available", provider=PROVIDER)
            self.last_problem = kind
        return found

    def _problem(self) -> tuple[str | None, str | None]:
        """Why the instance cannot route now (None: it can), and what kind of reason it is."""
        client = self._sdk()
        if client is None:
            return "not started", "LaunchDarkly SDK not started"
        status = client.data_source_status_provider.status
        refused = _refusal(status)
        if not client.is_initialized():
            if refused:
                return "refused", refused
            kind = "connecting" if status.error is None else "failing"
            return kind, f"LaunchDarkly SDK not initialised ({_describe(status)})"
        state = getattr(status.state, "value", str(status.state))
        if state != "valid":
            lost_s = max(0.0, self._clock() - float(status.since))
            if lost_s > self.stale_s:
                return "stale", (
                    f"LaunchDarkly data source {state} for {lost_s:.0f} s "
                    f"(limit {self.stale_s:g} s): {refused or _describe(status)}"
                )
        if self._store is None or self._store.get(_features(), FLAG_KEY, _found) is None:
            return (
                "missing",
                f"flag {FLAG_KEY!r} is not in LaunchDarkly's data for this environment",
            )
        return None, None

    # ------------------------------------------------------------------ the seam

    def enabled_for(self, client_id: uuid.UUID) -> bool:
        if self._of_client is None or self.problem is not None:
            return False
        from openfeature.evaluation_context import EvaluationContext

        return bool(
            self._of_client.get_boolean_value(
                FLAG_KEY, False, EvaluationContext(targeting_key=str(client_id))
            )
        )

    def state(self) -> dict[str, Any]:
        current = self.current
        client = self._sdk()
        status = client.data_source_status_provider.status if client is not None else None
        return {
            "flagSetVersion": current.version if current else None,
            "flags": {FLAG_KEY: {"weightPercent": current.weight_percent if current else 0}},
            "provider": PROVIDER,
            "source": self.stream_uri,
            "dataSource": _describe(status) if status is not None else "not started",
            "problem": self.problem,
        }


def _found(item: Any) -> Any:
    return item


def _features() -> Any:
    from ldclient.versioned_data_kind import FEATURES

    return FEATURES


def _refusal(status: Any) -> str | None:
    error = getattr(status, "error", None)
    code = getattr(error, "status_code", 0) or 0
    if code in (401, 403):
        return f"LaunchDarkly refused the SDK key ({code}): check LAUNCHDARKLY_SDK_KEY"
    return None


def _describe(status: Any) -> str:
    state = getattr(status.state, "value", str(status.state))
    error = getattr(status, "error", None)
    if error is None or state == "valid":  # a recovered source keeps its last error
        return state
    kind = getattr(error.kind, "value", str(error.kind))
    code = getattr(error, "status_code", 0)
    return f"{state}, last error {kind}" + (f" {code}" if code else "")
