"""The absolute-threshold judge the hold relies on, case by case."""

from __future__ import annotations

import math

import pytest

from golive.analysis import (
    ApiRequests,
    Histogram,
    SourceWindow,
    Thresholds,
    Verdict,
    WindowMetrics,
    judge_thresholds,
)

LIMITS = Thresholds(max_error_ratio=0.01, max_p99_ms=200, min_requests=50)


def green(requests: int, errors: int, p99_ms: float) -> SourceWindow:
    return SourceWindow("green /metrics", requests, errors, p99_ms)


def clients(requests: int, errors: int, p99_ms: float) -> SourceWindow:
    return SourceWindow("clients (background load)", requests, errors, p99_ms)


@pytest.mark.parametrize(
    ("windows", "verdict", "reasons"),
    [
        ([green(1000, 0, 20.0)], Verdict.PASS, ()),
        (
            [green(1000, 11, 20.0)],
            Verdict.FAIL,
            ("green /metrics: error ratio 1.1000% > 1.0000% (11/1000)",),
        ),
        ([green(1000, 10, 20.0)], Verdict.PASS, ()),  # exactly at the limit passes
        ([green(1000, 0, 250.0)], Verdict.FAIL, ("green /metrics: p99 250.0 ms > 200 ms",)),
        ([green(1000, 0, 200.0)], Verdict.PASS, ()),
        (
            [green(1000, 20, 250.0)],
            Verdict.FAIL,
            (
                "green /metrics: error ratio 2.0000% > 1.0000% (20/1000)",
                "green /metrics: p99 250.0 ms > 200 ms",
            ),
        ),
        # too little data for a verdict, however bad it looks
        (
            [green(10, 10, 900.0)],
            Verdict.INCONCLUSIVE,
            ("fewer than 50 requests (green /metrics 10)",),
        ),
        ([], Verdict.INCONCLUSIVE, ("fewer than 50 requests (no source)",)),
        # every source is judged that has enough requests
        (
            [green(1000, 0, 20.0), clients(1000, 50, 20.0)],
            Verdict.FAIL,
            ("clients (background load): error ratio 5.0000% > 1.0000% (50/1000)",),
        ),
        # one source with enough requests is a verdict; the short one is left out
        ([green(1000, 0, 20.0), clients(10, 10, 900.0)], Verdict.PASS, ()),
        (
            [green(49, 0, 20.0), clients(3, 0, 20.0)],
            Verdict.INCONCLUSIVE,
            ("fewer than 50 requests (green /metrics 49, clients (background load) 3)",),
        ),
        ([green(1000, 0, math.nan)], Verdict.PASS, ()),  # nothing timed breaches no p99 limit
    ],
)
def test_thresholds_table(windows, verdict, reasons) -> None:
    judged = judge_thresholds(LIMITS, windows)
    assert judged.verdict is verdict
    assert judged.reasons == reasons


@pytest.mark.parametrize(
    ("window", "verdict"),
    [
        (green(0, 0, math.nan), Verdict.PASS),  # no minimum: a quiet window passes
        (green(1, 1, 5.0), Verdict.FAIL),  # ... and a single failed request is judged
    ],
)
def test_no_minimum_of_requests(window, verdict) -> None:
    assert judge_thresholds(Thresholds(0.001, 500, 0), [window]).verdict is verdict


def test_the_api_figures_of_a_metric_window() -> None:
    latency = Histogram.from_cumulative({0.01: 50.0, 0.1: 99.0, 0.25: 100.0, math.inf: 100.0})
    window = WindowMetrics(duration_s=60, api=ApiRequests(100, 3, latency))
    figures = SourceWindow.of_api("green /metrics", window)
    assert (figures.requests, figures.errors) == (100, 3)
    assert figures.error_ratio == pytest.approx(0.03)
    # rank 99 of 100 is the last one of the (0.01, 0.1] bucket
    assert figures.p99_ms == pytest.approx(100.0)
    quiet = SourceWindow.of_api("green /metrics", WindowMetrics(duration_s=60))
    assert (quiet.requests, quiet.errors, quiet.error_ratio) == (0, 0, 0.0)
    assert math.isnan(quiet.p99_ms)
