"""golive.monitoring.PrometheusMonitoring against the real Prometheus of the monitoring stack."""

from __future__ import annotations

import pytest

from golive.monitoring import Expectations, PrometheusMonitoring, failures

pytestmark = pytest.mark.slow


def test_live_stack_passes_every_check(monitoring_stack) -> None:
    monitoring_stack.wait_for_samples('up{job="credit-assessment", slot="green"} == 1')
    with PrometheusMonitoring(monitoring_stack.prometheus_url) as prometheus:
        findings = prometheus.verify(
            Expectations(fresh_slots=("blue", "green"), max_sample_age_s=15)
        )
    assert failures(findings) == [], "\n".join(map(str, findings))
    checks = {f.name for f in findings}
    assert {
        "prometheus",
        "targets/blue",
        "targets/green",
        "rules/loaded",
        "rules/required",
        "alerts",
    } <= checks


def test_every_committed_alert_is_loaded(monitoring_stack) -> None:
    with PrometheusMonitoring(monitoring_stack.prometheus_url) as prometheus:
        rules = prometheus.rules()
    loaded = {
        r["name"] for g in rules["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"
    }
    assert {
        "CreditAssessmentErrorBudgetBurnFast",
        "GoLiveStageOverdue",
        "CreditAssessmentApprovalRateShift",
    } <= loaded


def test_a_slot_without_targets_is_reported(monitoring_stack) -> None:
    with PrometheusMonitoring(monitoring_stack.prometheus_url) as prometheus:
        findings = prometheus.verify(Expectations(slots=("blue", "green", "purple")))
    assert [f.name for f in failures(findings)] == ["targets/purple"]


def test_an_unreachable_prometheus_is_a_failed_finding(free_tcp_port) -> None:
    with PrometheusMonitoring(f"http://127.0.0.1:{free_tcp_port()}", timeout_s=2) as prometheus:
        findings = prometheus.verify()
    assert len(findings) == 1
    assert not findings[0].passed
