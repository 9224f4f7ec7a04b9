"""The pure judges of golive.monitoring, with tables of Prometheus API answers."""

from __future__ import annotations

import httpx
import pytest

from golive.monitoring import (
    Check,
    Expectations,
    PrometheusMonitoring,
    Snapshot,
    check_alerts,
    check_freshness,
    check_rules,
    check_targets,
    evaluate,
    failures,
)

NOW = 1_750_000_000.0


def ok(data: dict) -> dict:
    return {"status": "success", "data": data}


def target(
    slot: str,
    health: str = "up",
    instance: str = "",
    job: str = "credit-assessment",
    error: str = "",
) -> dict:
    return {
        "labels": {
            "job": job,
            "slot": slot,
            "instance": instance or f"127.0.0.1:{8081 if slot == 'blue' else 8082}",
        },
        "health": health,
        "lastError": error,
    }


def failed_checks(findings: list[Check]) -> list[str]:
    return [f.name for f in failures(findings)]


@pytest.mark.parametrize(
    ("targets", "failed"),
    [
        ([target("blue"), target("green")], []),
        ([target("blue"), target("green"), target("green", instance="10.0.0.3:8080")], []),
        ([target("blue")], ["targets/green"]),
        (
            [target("blue"), target("green", "down", error="connection refused")],
            ["targets/green", "targets/green/127.0.0.1:8082"],
        ),
        # one of two green pods down: the slot still serves, the pod is reported
        (
            [target("blue"), target("green"), target("green", "down", instance="10.0.0.9:8080")],
            ["targets/green/10.0.0.9:8080"],
        ),
        # another job's targets do not count
        ([target("blue"), target("green", job="golive")], ["targets/green"]),
        ([], ["targets/blue", "targets/green"]),
    ],
)
def test_every_slot_needs_an_up_target(targets: list[dict], failed: list[str]) -> None:
    findings = check_targets(ok({"activeTargets": targets, "droppedTargets": []}))
    assert failed_checks(findings) == failed


def test_down_target_finding_names_the_scrape_error() -> None:
    findings = check_targets(
        ok({"activeTargets": [target("blue"), target("green", "down", error="refused")]})
    )
    assert "refused" in failures(findings)[0].detail


def test_slots_are_configurable() -> None:
    findings = check_targets(ok({"activeTargets": [target("green")]}), slots=("green",))
    assert failed_checks(findings) == []


def rule(name: str, kind: str = "alerting", health: str = "ok", error: str = "") -> dict:
    return {"name": name, "type": kind, "health": health, "lastError": error}


REQUIRED = ("CreditAssessmentInstanceDown", "CreditAssessmentErrorBudgetBurnFast")


@pytest.mark.parametrize(
    ("groups", "failed"),
    [
        (
            [
                {
                    "name": "a",
                    "rules": [
                        rule("CreditAssessmentInstanceDown"),
                        rule("CreditAssessmentErrorBudgetBurnFast"),
                    ],
                }
            ],
            [],
        ),
        ([], ["rules/loaded"]),
        ([{"name": "a", "rules": [rule("CreditAssessmentInstanceDown")]}], ["rules/required"]),
        # a recording rule of the same name is not the alert
        (
            [
                {
                    "name": "a",
                    "rules": [
                        rule("CreditAssessmentInstanceDown"),
                        rule("CreditAssessmentErrorBudgetBurnFast", "recording"),
                    ],
                }
            ],
            ["rules/required"],
        ),
        (
            [
                {
                    "name": "a",
                    "rules": [
                        rule("CreditAssessmentInstanceDown"),
                        rule("CreditAssessmentErrorBudgetBurnFast"),
                        rule(
                            "slot:x:rate5m", "recording", "err", "many-to-many matching not allowed"
                        ),
                    ],
                }
            ],
            ["rules/slot:x:rate5m"],
        ),
    ],
)
def test_rules_are_loaded_healthy_and_complete(groups: list[dict], failed: list[str]) -> None:
    assert failed_checks(check_rules(ok({"groups": groups}), required_alerts=REQUIRED)) == failed


def alert(name: str, severity: str, state: str = "firing", **labels: str) -> dict:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "state": state,
        "value": "1",
    }


@pytest.mark.parametrize(
    ("alerts", "failed"),
    [
        ([], []),
        (
            [
                alert("CreditAssessmentVersionSkew", "info"),
                alert("CreditBureauCircuitOpen", "warning"),
            ],
            [],
        ),
        ([alert("CreditAssessmentInstanceDown", "critical", "pending")], []),
        (
            [alert("CreditAssessmentInstanceDown", "critical", slot="green")],
            ["alerts/CreditAssessmentInstanceDown"],
        ),
        (
            [
                alert("GoLiveBackupTooOld", "critical"),
                alert("CreditAssessmentDbPoolSaturated", "critical"),
            ],
            ["alerts/GoLiveBackupTooOld", "alerts/CreditAssessmentDbPoolSaturated"],
        ),
    ],
)
def test_no_critical_alert_may_fire(alerts: list[dict], failed: list[str]) -> None:
    assert failed_checks(check_alerts(ok({"alerts": alerts}))) == failed


def test_blocking_severities_are_configurable() -> None:
    body = ok({"alerts": [alert("CreditBureauCircuitOpen", "warning")]})
    assert failed_checks(check_alerts(body, blocking_severities=("critical", "warning"))) == [
        "alerts/CreditBureauCircuitOpen"
    ]


def sample(slot: str, age_s: float) -> dict:
    return {"metric": {"slot": slot}, "value": [NOW, str(NOW - age_s)]}


@pytest.mark.parametrize(
    ("result", "slots", "failed"),
    [
        ([sample("green", 5)], (), []),
        ([sample("green", 5), sample("blue", 3)], ("blue", "green"), []),
        ([sample("green", 120)], (), ["samples/credit_assessments_total/green"]),
        ([], (), ["samples/credit_assessments_total"]),
        ([sample("green", 5)], ("blue", "green"), ["samples/credit_assessments_total/blue"]),
    ],
)
def test_assessment_samples_must_be_fresh(
    result: list[dict], slots: tuple[str, ...], failed: list[str]
) -> None:
    body = ok({"resultType": "vector", "result": result})
    assert failed_checks(check_freshness(body, now=NOW, max_age_s=60, slots=slots)) == failed


@pytest.mark.parametrize("check", [check_targets, check_rules, check_alerts])
def test_an_error_answer_is_a_failed_finding(check) -> None:
    findings = check({"status": "error", "errorType": "bad_data", "error": "parse error"})
    assert len(findings) == 1
    assert not findings[0].passed
    assert "parse error" in findings[0].detail


def healthy_snapshot() -> Snapshot:
    return Snapshot(
        targets=ok({"activeTargets": [target("blue"), target("green")]}),
        rules=ok(
            {"groups": [{"name": "g", "rules": [rule(n) for n in Expectations().required_alerts]}]}
        ),
        alerts=ok({"alerts": [alert("CreditAssessmentVersionSkew", "info")]}),
        freshness=ok({"resultType": "vector", "result": [sample("green", 2)]}),
        taken_at=NOW,
    )


def test_evaluate_reports_every_check_and_passes_a_healthy_stack() -> None:
    findings = evaluate(healthy_snapshot())
    assert failures(findings) == []
    checks = {f.name.split("/")[0] for f in findings}
    assert checks == {"targets", "rules", "alerts", "samples"}
    assert str(findings[0]).startswith("[ok] targets/blue")


def test_freshness_query_names_the_job_and_metric() -> None:
    assert (
        Expectations().freshness_query
        == 'max by (slot) (timestamp(credit_assessments_total{job="credit-assessment"}))'
    )


def test_client_verifies_through_a_transport() -> None:
    snapshot = healthy_snapshot()
    bodies = {
        "/api/v1/targets": snapshot.targets,
        "/api/v1/rules": snapshot.rules,
        "/api/v1/alerts": snapshot.alerts,
    }
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/api/v1/query":
            assert "timestamp(credit_assessments_total" in request.url.params["query"]
            now = __import__("time").time()
            return httpx.Response(
                200,
                json=ok(
                    {
                        "resultType": "vector",
                        "result": [{"metric": {"slot": "green"}, "value": [now, str(now)]}],
                    }
                ),
            )
        return httpx.Response(200, json=bodies[request.url.path])

    with PrometheusMonitoring(
        "http://prometheus.test", transport=httpx.MockTransport(handler)
    ) as prometheus:
        findings = prometheus.verify()
    assert failures(findings) == []
    assert sorted(seen) == ["/api/v1/alerts", "/api/v1/query", "/api/v1/rules", "/api/v1/targets"]


def test_unreachable_prometheus_is_one_failed_finding() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with PrometheusMonitoring(
        "http://prometheus.test", transport=httpx.MockTransport(refuse)
    ) as prometheus:
        findings = prometheus.verify()
    assert [(f.name, f.passed) for f in findings] == [("prometheus", False)]
    assert "connection refused" in findings[0].detail
