"""The pure gate judge and the /metrics histogram window the hold and stages rely on."""

from __future__ import annotations

import math

import pytest

from golive.plan import Gates
from golive.steps.gates import Window, histogram_window, judge, parse_histogram, quantile_ms

GATES = Gates(max_error_ratio=0.01, max_p99_ms=200, min_requests=50, interval_s=5)


@pytest.mark.parametrize(
    ("windows", "status"),
    [
        ([Window("green", 1000, 0, 20.0)], "passed"),
        ([Window("green", 1000, 11, 20.0)], "failed"),  # 1.1% > 1%
        ([Window("green", 1000, 10, 20.0)], "passed"),  # exactly at the threshold
        ([Window("green", 1000, 0, 250.0)], "failed"),
        ([Window("green", 10, 10, 900.0)], "inconclusive"),  # too little data for a verdict
        ([], "inconclusive"),
        ([Window("green", 1000, 0, 20.0), Window("clients", 1000, 50, 20.0)], "failed"),
        ([Window("green", 1000, 0, math.nan)], "passed"),
    ],
)
def test_judge(windows, status):
    verdict = judge(GATES, windows)
    assert verdict.status == status
    assert bool(verdict.reasons) == (status != "passed")


def test_no_minimum_means_a_quiet_window_passes():
    assert judge(Gates(min_requests=0), [Window("green", 0, 0, math.nan)]).status == "passed"


H = "credit_assessment_http_request_duration_seconds"
API = 'method="POST",route="/api/v1/assessment"'


def metrics(ok_fast: int, ok: int, errors: int) -> str:
    lines = ["# HELP credit_assessment_http_request_duration_seconds Request duration"]
    for status, fast, total in (("201", ok_fast, ok), ("503", 0, errors)):
        for le, value in (("0.01", fast), ("0.1", total), ("+Inf", total)):
            lines.append(f'{H}_bucket{{le="{le}",{API},status="{status}"}} {value}')
        lines.append(f'{H}_count{{{API},status="{status}"}} {total}')
    lines.append(f'{H}_count{{method="GET",route="/ready",status="200"}} 999')
    return "\n".join(lines) + "\n"


def test_histogram_window_between_two_scrapes():
    start = parse_histogram(metrics(100, 100, 0))
    end = parse_histogram(metrics(1000, 1100, 10))
    window = histogram_window("green", start, end)
    assert window.requests == 1010 and window.errors == 10  # /ready is not an API route
    assert 10 < window.p99_ms <= 100


def test_quantile_interpolates_inside_the_bucket():
    assert quantile_ms(0.5, {0.1: 50.0, 0.2: 100.0, math.inf: 100.0}) == pytest.approx(100.0)
    assert quantile_ms(0.99, {0.1: 0.0, math.inf: 0.0}) != quantile_ms(0.99, {0.1: 1.0})
