"""Smoke's "metrics flowing" through a URL that balances over several instances: the counter is
summed over each instance's own /metrics, so a test assessment counted on another instance
than the one a single read reaches is still seen (and a missing instance is a failure)."""

from __future__ import annotations

import json

import httpx

from golive.smoke import SmokeCheck, SmokeReport, run_smoke

PODS = ("http://api/pods/a/proxy", "http://api/pods/b/proxy")


def _service(pod_b_answers: int = 200) -> httpx.MockTransport:
    """A balanced URL whose assessment is counted on pod b; pod a's counter never moves."""
    counted = {"a": 3.0, "b": 5.0}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/pods/"):
            pod = path.split("/")[2]
            if pod == "b" and pod_b_answers != 200:
                return httpx.Response(pod_b_answers)
            text = f'credit_assessments_total{{decision="APPROVED"}} {counted[pod]}\n'
            return httpx.Response(200, text=text)
        if path == "/metrics":  # the balanced URL: always lands on pod a
            return httpx.Response(200, text=f"credit_assessments_total {counted['a']}\n")
        if path == "/api/v1/assessment" and request.method == "POST":
            counted["b"] += 1
            return httpx.Response(201, json={"id": "x1", "decision": "APPROVED", "engine": "new"})
        if path == "/api/v1/assessment/x1":
            return httpx.Response(200, content=json.dumps({"id": "x1"}))
        return httpx.Response(200, json={"status": "ok"})

    return httpx.MockTransport(handle)


def _check(report: SmokeReport, name: str) -> SmokeCheck:
    return next(c for c in report.checks if c.name == name)


def test_one_read_of_a_balanced_url_misses_the_assessment_counted_elsewhere() -> None:
    report = run_smoke("http://live", "token", transport=_service())
    assert _check(report, "metrics flowing").status == "failed"


def test_the_counter_is_summed_over_every_instance() -> None:
    report = run_smoke("http://live", "token", metrics_urls=PODS, transport=_service())
    assert _check(report, "metrics").detail.endswith("= 8 over 2 instance(s)")
    flowing = _check(report, "metrics flowing")
    assert flowing.status == "passed" and "8 -> 9" in flowing.detail


def test_an_instance_without_metrics_fails_the_check_naming_its_status() -> None:
    report = run_smoke(
        "http://live", "token", metrics_urls=PODS, transport=_service(pod_b_answers=503)
    )
    assert _check(report, "metrics").status == "failed"
    assert "503" in _check(report, "metrics").detail
