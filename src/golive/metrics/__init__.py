"""Where the numbers come from: the ``MetricSource`` port and its providers.

A source measures a *window*: ``open_window()`` when a traffic stage starts (after the new
weight is verified) or the hold begins, ``measure(window)`` at every analysis interval. The
answer is a :class:`~golive.analysis.WindowMetrics` -- counts since the window opened, summed
over every serving instance -- that the pure judges in ``golive.analysis`` turn into verdicts.

Providers, one module each:

    prometheus   PrometheusSource: PromQL ``increase(...[window])`` over Prometheus's HTTP API
    scrape       ScrapeSource: every instance's ``/metrics`` read directly, counters subtracted
    fake         FakeSource: scripted windows and failures for unit tests

A source that cannot answer raises :class:`MetricSourceError`; the runner records an ERROR
measurement (``Analysis.record_error``) -- never a pass. A metric family no instance exposes is
listed in ``WindowMetrics.missing`` and the gates that need it are judged ERROR too.
``provider(name)`` fails loudly on an unknown name: there is no default provider.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from golive.analysis import Histogram, ShadowCounts, WindowMetrics
from golive.analysis import gates as families
from golive.errors import PlanError

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # sample name, sorted labels
Samples = dict[SeriesKey, float]


@dataclass(frozen=True, slots=True)
class ServiceMetricNames:
    """The service's metric families the gates read (sample names as exposed)."""

    decisions: str = "credit_assessments_total"  # {decision, engine}
    errors: str = "credit_assessment_decision_errors_total"  # {engine}
    decision_duration: str = "credit_assessment_decision_duration_seconds"  # histogram {engine}
    shadow: str = "credit_assessment_shadow_comparisons_total"  # {outcome, field}
    legacy_calls: str = "credit_assessment_legacy_requests_total"  # {outcome}
    bureau_calls: str = "credit_assessment_bureau_requests_total"  # {outcome}
    http_duration: str = "credit_assessment_http_request_duration_seconds"  # {route,method,status}
    api_route_prefix: str = "/api/"  # the routes ``WindowMetrics.api`` counts

    @property
    def histograms(self) -> tuple[str, ...]:
        """The families exposed as histograms (their samples: ``_bucket``, ``_count``, ``_sum``)."""
        return (self.decision_duration, self.http_duration)

    def logical(self) -> dict[str, str]:
        """Logical family (``WindowMetrics.missing`` vocabulary) -> exposed name."""
        return {
            families.DECISIONS: self.decisions,
            families.ERRORS: self.errors,
            families.LATENCY: self.decision_duration,
            families.SHADOW: self.shadow,
            families.LEGACY_CALLS: self.legacy_calls,
            families.BUREAU_CALLS: self.bureau_calls,
            families.API_REQUESTS: self.http_duration,
        }


@dataclass(frozen=True, slots=True)
class Window:
    """A measurement window: when it opened and, for sources that need one, a baseline."""

    started_at: float  # Unix time, seconds
    label: str = ""
    baseline: Mapping[str, Samples] = field(default_factory=dict)


class MetricSource(Protocol):
    """Measures the service over a window."""

    name: str

    def open_window(self, label: str = "", since: float | None = None) -> Window:
        """Start a window now (a scrape source reads its baseline here); ``since`` (epoch
        seconds) opens it back then where the source keeps history (Prometheus): a stage
        resumed after a restart is judged on everything since its weight was in place. A
        source without history opens it now."""
        ...

    def measure(self, window: Window) -> WindowMetrics:
        """Counts since ``window`` opened; raises :class:`MetricSourceError` when it cannot."""
        ...


def build_window(
    samples: Mapping[SeriesKey, float],
    names: ServiceMetricNames,
    *,
    duration_s: float,
    present: Iterable[str],
    source: str,
) -> WindowMetrics:
    """Fold flat samples (deltas over the window) into ``WindowMetrics``."""
    decisions: dict[str, float] = {}
    errors: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    shadow: dict[str, dict[str, float]] = {}
    legacy: dict[str, float] = {}
    bureau: dict[str, float] = {}
    bucket_name = names.decision_duration + "_bucket"
    for (name, label_pairs), value in samples.items():
        labels = dict(label_pairs)
        if name == names.decisions:
            _add(decisions, labels.get("engine", ""), value)
        elif name == names.errors:
            _add(errors, labels.get("engine", ""), value)
        elif name == bucket_name:
            per_engine = buckets.setdefault(labels.get("engine", ""), {})
            le = float(labels.get("le", "+Inf"))
            per_engine[le] = per_engine.get(le, 0.0) + value
        elif name == names.shadow:
            per_field = shadow.setdefault(labels.get("field", ""), {})
            _add(per_field, labels.get("outcome", ""), value)
        elif name == names.legacy_calls:
            _add(legacy, labels.get("outcome", ""), value)
        elif name == names.bureau_calls:
            _add(bureau, labels.get("outcome", ""), value)
    exposed = set(present)
    missing = tuple(
        logical
        for logical, name in names.logical().items()
        if not {name, name.removesuffix("_total"), name + "_bucket"} & exposed
    )
    return WindowMetrics(
        duration_s=duration_s,
        decisions=_counts(decisions),
        errors=_counts(errors),
        latency={
            engine: Histogram.from_cumulative(by_le)
            for engine, by_le in buckets.items()
            if any(le == float("inf") for le in by_le)
        },
        shadow={
            name: ShadowCounts(round(v.get("match", 0.0)), round(v.get("mismatch", 0.0)))
            for name, v in shadow.items()
        },
        legacy_calls=_counts(legacy),
        bureau_calls=_counts(bureau),
        api=_api_requests(samples, names),
        missing=missing,
        source=source,
    )


def _api_requests(
    samples: Mapping[SeriesKey, float], names: ServiceMetricNames
) -> families.ApiRequests:
    """Requests to the API routes: every status counted, 5xx as server errors, one histogram."""
    buckets: dict[float, float] = {}
    total = server_errors = 0.0
    for (name, label_pairs), value in samples.items():
        labels = dict(label_pairs)
        if not labels.get("route", "").startswith(names.api_route_prefix):
            continue
        if name == names.http_duration + "_bucket":
            le = float(labels.get("le", "+Inf"))
            buckets[le] = buckets.get(le, 0.0) + value
        elif name == names.http_duration + "_count":
            total += value
            if labels.get("status", "").startswith("5"):
                server_errors += value
    return families.ApiRequests(
        total=max(0, round(total)),
        server_errors=max(0, round(server_errors)),
        latency=Histogram.from_cumulative(buckets) if float("inf") in buckets else Histogram(()),
    )


def _add(into: dict[str, float], key: str, value: float) -> None:
    into[key] = into.get(key, 0.0) + value


def _counts(values: Mapping[str, float]) -> dict[str, int]:
    return {key: max(0, round(value)) for key, value in values.items()}


# --------------------------------------------------------------------------- registry

_BUILTIN = {
    "prometheus": "golive.metrics.prometheus:PrometheusSource",
    "scrape": "golive.metrics.scrape:ScrapeSource",
    "fake": "golive.metrics.fake:FakeSource",
}
_REGISTERED: dict[str, Callable[..., MetricSource]] = {}


def register(name: str, factory: Callable[..., MetricSource]) -> None:
    if name in _BUILTIN or (name in _REGISTERED and _REGISTERED[name] is not factory):
        raise ValueError(f"metric source {name!r} is already registered")
    _REGISTERED[name] = factory


def registered() -> tuple[str, ...]:
    return tuple(sorted({*_BUILTIN, *_REGISTERED}))


def provider(name: str) -> Callable[..., MetricSource]:
    """The factory of the named source; an unknown name is a plan error, never a fallback."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    target = _BUILTIN.get(name)
    if target is None:
        raise PlanError(
            [f"metrics.provider: no metric source {name!r} (known: {', '.join(registered())})"]
        )
    module, _, attribute = target.partition(":")
    factory: Callable[..., MetricSource] = getattr(importlib.import_module(module), attribute)
    return factory


def create(name: str, **options: Any) -> MetricSource:
    return provider(name)(**options)


__all__ = [
    "MetricSource",
    "Samples",
    "SeriesKey",
    "ServiceMetricNames",
    "Window",
    "build_window",
    "create",
    "provider",
    "register",
    "registered",
]
