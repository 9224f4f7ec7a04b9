"""``FakeSource`` for unit tests, and synthetic stage windows with known truth.

``FakeSource`` replays a script: each ``measure`` returns the next ``WindowMetrics`` or raises
the next exception (a ``MetricSourceError`` stands for an unreachable Prometheus).
``synthetic_stage`` draws a stage's cumulative windows from stated rates with a seed, so a test
can say "the new path fails 5% of requests" and check when the gates notice.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate

from golive.analysis import LEGACY, NEW, Histogram, ShadowCounts, WindowMetrics
from golive.errors import MetricSourceError
from golive.metrics import Window

# The service's latency buckets (credit_assessment telemetry), in seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Script = Iterable[WindowMetrics | Exception] | Callable[[Window], WindowMetrics]


class FakeSource:
    """A metric source that answers from a script."""

    name = "fake"

    def __init__(self, script: Script = (), *, clock: Callable[[], float] = time.time) -> None:
        self._call = script if callable(script) else None
        self._items: Iterator[WindowMetrics | Exception] = iter(() if callable(script) else script)
        self._clock = clock
        self.opened: list[Window] = []
        self.measured = 0

    def open_window(self, label: str = "", since: float | None = None) -> Window:
        window = Window(started_at=self._clock() if since is None else since, label=label)
        self.opened.append(window)
        return window

    def measure(self, window: Window) -> WindowMetrics:
        self.measured += 1
        if self._call is not None:
            return self._call(window)
        try:
            item = next(self._items)
        except StopIteration:
            raise MetricSourceError("the fake metric source has no more windows") from None
        if isinstance(item, Exception):
            raise item
        return item


@dataclass(frozen=True, slots=True)
class Traffic:
    """What one analysis interval of a stage looks like (the truth a simulation draws from)."""

    new_requests: int = 100
    legacy_requests: int = 900
    new_error_ratio: float = 0.002
    legacy_error_ratio: float = 0.002
    new_latency_s: float = 0.004  # median of a log-normal
    legacy_latency_s: float = 0.015
    latency_sigma: float = 0.6
    new_extra_latency_s: float = 0.0  # a fault: added to every new-path decision
    shadow_mismatch_ratio: float = 0.02  # share of legacy decisions the new engine disagrees with
    bureau_failure_ratio: float = 0.005


def synthetic_stage(traffic: Traffic, seed: int, intervals: int) -> list[WindowMetrics]:
    """Cumulative windows after each of ``intervals`` analysis intervals (seeded, reproducible)."""
    rng = random.Random(seed)
    totals = WindowMetrics(duration_s=0.0)
    new_buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
    legacy_buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
    windows = []
    for index in range(intervals):
        t = traffic
        new_errors = _binomial(rng, t.new_requests, t.new_error_ratio)
        legacy_errors = _binomial(rng, t.legacy_requests, t.legacy_error_ratio)
        mismatches = _binomial(rng, t.legacy_requests - legacy_errors, t.shadow_mismatch_ratio)
        bureau_total = t.new_requests + t.legacy_requests
        bureau_failed = _binomial(rng, bureau_total, t.bureau_failure_ratio)
        for _ in range(t.new_requests - new_errors):
            seconds = rng.lognormvariate(math.log(t.new_latency_s), t.latency_sigma)
            new_buckets[bisect_left(LATENCY_BUCKETS_S, seconds + t.new_extra_latency_s)] += 1
        for _ in range(t.legacy_requests - legacy_errors):
            seconds = rng.lognormvariate(math.log(t.legacy_latency_s), t.latency_sigma)
            legacy_buckets[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1
        shadow = totals.shadow.get("decision", ShadowCounts())
        totals = replace(
            totals,
            duration_s=float(index + 1),
            decisions={
                NEW: totals.decisions.get(NEW, 0) + t.new_requests - new_errors,
                LEGACY: totals.decisions.get(LEGACY, 0) + t.legacy_requests - legacy_errors,
            },
            errors={
                NEW: totals.errors.get(NEW, 0) + new_errors,
                LEGACY: totals.errors.get(LEGACY, 0) + legacy_errors,
            },
            latency={
                NEW: _histogram(new_buckets),
                LEGACY: _histogram(legacy_buckets),
            },
            shadow={
                "decision": ShadowCounts(
                    shadow.match + t.legacy_requests - legacy_errors - mismatches,
                    shadow.mismatch + mismatches,
                )
            },
            bureau_calls={
                "ok": totals.bureau_calls.get("ok", 0) + bureau_total - bureau_failed,
                "error": totals.bureau_calls.get("error", 0) + bureau_failed,
            },
            source=f"synthetic seed {seed}",
        )
        windows.append(totals)
    return windows


def _histogram(per_bucket: list[int]) -> Histogram:
    bounds = (*LATENCY_BUCKETS_S, math.inf)
    return Histogram(tuple(zip(bounds, map(float, accumulate(per_bucket)), strict=True)))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    return (
        rng.binomialvariate(n, p)
        if hasattr(rng, "binomialvariate")
        else sum(rng.random() < p for _ in range(n))
    )
