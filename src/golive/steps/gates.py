"""Gates: pure judgement of live figures against a plan's thresholds.

A ``Window`` is what one source measured over a span: requests, errors, p99. ``judge`` returns
``passed``, ``failed`` (any source with enough data breaches a threshold) or ``inconclusive``
(no source has the minimum of data — a quiet window proves nothing; Kayenta's ``mustHaveData``).
``histogram_window`` turns two scrapes of the service's ``/metrics`` into a window (5xx ratio
and p99 of the API routes, interpolated inside the bucket like PromQL's histogram_quantile).
No I/O here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from golive.plan import Gates

HISTOGRAM = "credit_assessment_http_request_duration_seconds"
_LINE = re.compile(rf"^{HISTOGRAM}_(bucket|count)\{{([^}}]*)\}}\s+([0-9.eE+-]+)\s*$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Window:
    source: str
    requests: int
    errors: int
    p99_ms: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    status: str  # passed | failed | inconclusive
    reasons: tuple[str, ...] = ()


def judge(gates: Gates, windows: Sequence[Window]) -> Verdict:
    enough = [w for w in windows if w.requests >= max(gates.min_requests, 1)]
    reasons = []
    for w in enough:
        if w.error_ratio > gates.max_error_ratio:
            reasons.append(
                f"{w.source}: error ratio {w.error_ratio:.4%} > {gates.max_error_ratio:.4%} "
                f"({w.errors}/{w.requests})"
            )
        if not math.isnan(w.p99_ms) and w.p99_ms > gates.max_p99_ms:
            reasons.append(f"{w.source}: p99 {w.p99_ms:.1f} ms > {gates.max_p99_ms:g} ms")
    if reasons:
        return Verdict("failed", tuple(reasons))
    if not enough and gates.min_requests > 0:
        seen = ", ".join(f"{w.source} {w.requests}" for w in windows) or "no source"
        return Verdict("inconclusive", (f"fewer than {gates.min_requests} requests ({seen})",))
    return Verdict("passed")


@dataclass(frozen=True)
class HistogramSnapshot:
    buckets: Mapping[float, float]  # upper bound -> cumulative count (API routes, all statuses)
    count: float
    errors: float  # 5xx


def parse_histogram(metrics_text: str, route_prefix: str = "/api/") -> HistogramSnapshot:
    buckets: dict[float, float] = {}
    count = errors = 0.0
    for kind, labels_text, value in _LINE.findall(metrics_text):
        labels = dict(_LABEL.findall(labels_text))
        if not labels.get("route", "").startswith(route_prefix):
            continue
        if kind == "bucket":
            bound = math.inf if labels["le"] == "+Inf" else float(labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + float(value)
        else:
            count += float(value)
            if labels.get("status", "").startswith("5"):
                errors += float(value)
    return HistogramSnapshot(buckets, count, errors)


def quantile_ms(q: float, buckets: Mapping[float, float]) -> float:
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower_bound * 1000
            span = cumulative - lower_count
            fraction = (rank - lower_count) / span if span > 0 else 1.0
            return (lower_bound + (bound - lower_bound) * fraction) * 1000
        lower_bound, lower_count = bound, cumulative
    return lower_bound * 1000


def histogram_window(source: str, start: HistogramSnapshot, end: HistogramSnapshot) -> Window:
    delta = {b: max(0.0, c - start.buckets.get(b, 0.0)) for b, c in end.buckets.items()}
    requests = int(max(0.0, end.count - start.count))
    return Window(
        source,
        requests,
        int(max(0.0, end.errors - start.errors)),
        quantile_ms(0.99, delta) if requests else math.nan,
    )
