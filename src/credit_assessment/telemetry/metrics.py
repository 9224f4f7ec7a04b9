"""Prometheus metrics of the service.

With several worker processes (``--workers``), ``PROMETHEUS_MULTIPROC_DIR`` must be set before
``prometheus_client`` is imported: the CLI does that, and then ``/metrics`` aggregates every
worker's samples so one scrape sees the whole instance.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values

from credit_assessment.telemetry import MULTIPROCESS_ENV


class _ProcessId:
    """This process's id, read once and again after a fork.

    In multiprocess mode prometheus_client asks for the process id on every update, to notice a
    fork; asking the kernel each time costs a system call per update. Refreshed in every forked
    child, the cached id tells running processes apart just as well.
    """

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()

    @classmethod
    def get(cls) -> int:
        return cls.value


os.register_at_fork(after_in_child=_ProcessId.refresh)
if os.environ.get(MULTIPROCESS_ENV):
    _values.ValueClass = _values.MultiProcessValue(process_identifier=_ProcessId.get)

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DECISIONS = ("APPROVED", "DECLINED", "REFER", "COUNTER_OFFER")
ENGINES = ("new", "legacy")


class Metrics:
    """The service's metric families, registered on one registry per app."""

    def __init__(self, version: str, registry: CollectorRegistry | None = None) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.assessments = Counter(
            "credit_assessments",
            "Assessments decided, by decision and engine.",
            ["decision", "engine"],
            registry=reg,
        )
        self.request_duration = Histogram(
            "credit_assessment_http_request_duration_seconds",
            "HTTP request duration by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.in_flight = Gauge(
            "credit_assessment_http_requests_in_flight",
            "HTTP requests being served.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.db_pool = Gauge(
            "credit_assessment_db_pool_connections",
            "Database pool connections by state.",
            ["state"],
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.db_pool_max = Gauge(
            "credit_assessment_db_pool_max_connections",
            "Database pool capacity.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.group_commit_batch = Histogram(
            "credit_assessment_group_commit_batch_size",
            "Assessments committed per transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=reg,
        )
        self.decision_duration = Histogram(
            "credit_assessment_decision_duration_seconds",
            "Time to decide one application, by the engine that decided.",
            ["engine"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.shadow_comparisons = Counter(
            "credit_assessment_shadow_comparisons",
            "Legacy decisions compared with the new engine's shadow decision, per field.",
            ["outcome", "field"],
            registry=reg,
        )
        self.decision_errors = Counter(
            "credit_assessment_decision_errors",
            "Requests whose deciding engine failed (the legacy system, or the new engine).",
            ["engine"],
            registry=reg,
        )
        self.rate_limited = Counter(
            "credit_assessment_rate_limited",
            "Assessment requests refused with 429: their token subject was over its rate limit.",
            registry=reg,
        )
        self.legacy_requests = Counter(
            "credit_assessment_legacy_requests",
            "Calls to the legacy system by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.flag_weight = Gauge(
            "credit_assessment_flag_weight_percent",
            "Share of clients the traffic flag sends to the new engine, as loaded.",
            ["flag"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.bureau_requests = Counter(
            "credit_assessment_bureau_requests",
            "Credit bureau lookups by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.bureau_circuit_open = Gauge(
            "credit_assessment_bureau_circuit_open",
            "1 while the bureau circuit breaker is open.",
            registry=reg,
            multiprocess_mode="max",
        )
        self.build_info = Gauge(
            "credit_assessment_build_info",
            "Build of the running service.",
            ["version"],
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.ready = Gauge(
            "credit_assessment_ready",
            "1 when /ready passes, else 0.",
            registry=reg,
            multiprocess_mode="livemin",
        )
        # Every decision and engine starts at zero, so the series exist (and rate() works) before
        # the first assessment.
        for decision in DECISIONS:
            for engine in ENGINES:
                self.assessments.labels(decision=decision, engine=engine)
        for field in ("decision", "grade", "score", "reasons", "all"):
            for outcome in ("match", "mismatch"):
                self.shadow_comparisons.labels(outcome=outcome, field=field)
        for outcome in ("ok", "error", "timeout"):
            self.legacy_requests.labels(outcome=outcome)
        for engine in ENGINES:
            self.decision_duration.labels(engine=engine)
            self.decision_errors.labels(engine=engine)
        for outcome in (
            "ok",
            "cached",
            "not_found",
            "timeout",
            "error",
            "circuit_open",
            "disabled",
        ):
            self.bureau_requests.labels(outcome=outcome)
        self.build_info.labels(version=version).set(1)
        self.ready.set(0)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: hot paths skip the label checks and lock."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric (all workers' when multiprocess)."""
        if self.multiprocess:
            registry = CollectorRegistry()
            _multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
