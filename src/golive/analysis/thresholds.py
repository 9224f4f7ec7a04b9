"""Absolute thresholds: live figures against fixed limits, with no baseline to compare.

The hold judges green this way once all traffic is on it: every source (green's own API
requests, and in a rehearsal the background load as its clients saw it) must keep its error
ratio at most ``max_error_ratio`` and its p99 at most ``max_p99_ms``. A source with fewer than
``min_requests`` requests is not judged; when no source has that many the verdict is
INCONCLUSIVE -- a quiet window proves nothing (Kayenta's ``mustHaveData``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from golive.analysis.gates import WindowMetrics
from golive.analysis.verdict import Verdict


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_error_ratio: float
    max_p99_ms: float
    min_requests: int = 0  # 0: a window without requests passes


@dataclass(frozen=True, slots=True)
class SourceWindow:
    """What one source measured over the window so far."""

    source: str
    requests: int
    errors: int
    p99_ms: float  # NaN: nothing was timed

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of_api(cls, source: str, window: WindowMetrics) -> SourceWindow:
        """The API requests of a metric source's window: 5xx as errors, their p99."""
        api = window.api
        p99_ms = api.latency.quantile(0.99) * 1000 if api.total else math.nan
        return cls(source, api.total, api.server_errors, p99_ms)


@dataclass(frozen=True, slots=True)
class ThresholdVerdict:
    verdict: Verdict  # PASS, FAIL or INCONCLUSIVE
    reasons: tuple[str, ...] = ()  # every breach, or why there is no verdict; none on a PASS


def judge_thresholds(thresholds: Thresholds, windows: Sequence[SourceWindow]) -> ThresholdVerdict:
    """FAIL when any source with enough requests breaches a threshold (each breach a reason);
    INCONCLUSIVE when no source has ``min_requests``; PASS otherwise.

    A limit is breached only when exceeded: an error ratio exactly at ``max_error_ratio``
    passes. A NaN p99 (nothing timed) breaches nothing.
    """
    t = thresholds
    enough = [w for w in windows if w.requests >= max(t.min_requests, 1)]
    reasons = []
    for w in enough:
        if w.error_ratio > t.max_error_ratio:
            reasons.append(
                f"{w.source}: error ratio {w.error_ratio:.4%} > {t.max_error_ratio:.4%} "
                f"({w.errors}/{w.requests})"
            )
        if not math.isnan(w.p99_ms) and w.p99_ms > t.max_p99_ms:
            reasons.append(f"{w.source}: p99 {w.p99_ms:.1f} ms > {t.max_p99_ms:g} ms")
    if reasons:
        return ThresholdVerdict(Verdict.FAIL, tuple(reasons))
    if not enough and t.min_requests > 0:
        seen = ", ".join(f"{w.source} {w.requests}" for w in windows) or "no source"
        return ThresholdVerdict(
            Verdict.INCONCLUSIVE, (f"fewer than {t.min_requests} requests ({seen})",)
        )
    return ThresholdVerdict(Verdict.PASS)
