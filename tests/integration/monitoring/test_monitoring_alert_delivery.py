"""End to end: a fault on a scraped target fires an alert that reaches a webhook, then resolves.

Real Prometheus scrapes a real HTTP target every second and evaluates the committed rules
(with `for: 0s`); real Alertmanager routes with the committed routing tree and delivers to
a webhook receiver in the test. The measured delays are printed (run with -s to see them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DELIVERY_TIMEOUT_S = 30.0


def _about(alertname: str, status: str):
    def match(delivery) -> bool:
        payload = delivery.payload
        return payload.get("status") == status and any(
            alert["labels"].get("alertname") == alertname and alert["status"] == status
            for alert in payload.get("alerts", [])
        )

    return match


def test_not_ready_instance_alert_is_delivered_then_resolved(monitoring_stack) -> None:
    stack = monitoring_stack
    assert stack.green is not None

    fault_at = time.time()
    stack.green.set(ready=0)
    try:
        fired = stack.webhook.wait_for(
            _about("CreditAssessmentInstanceNotReady", "firing"),
            timeout_s=DELIVERY_TIMEOUT_S,
            what="CreditAssessmentInstanceNotReady firing",
        )
    finally:
        cleared_at = time.time()
        stack.green.set(ready=1)
    resolved = stack.webhook.wait_for(
        _about("CreditAssessmentInstanceNotReady", "resolved"),
        timeout_s=DELIVERY_TIMEOUT_S,
        what="CreditAssessmentInstanceNotReady resolved",
    )

    alert = next(
        a
        for a in fired.payload["alerts"]
        if a["labels"]["alertname"] == "CreditAssessmentInstanceNotReady"
    )
    # Routed by severity through the committed routing tree: warning goes to the team's Slack.
    assert fired.payload["receiver"] == "team-slack"
    assert alert["labels"]["slot"] == "green"
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["job"] == "credit-assessment"
    assert "credit_assessment_ready = 0" in alert["annotations"]["description"]
    assert alert["annotations"]["runbook_url"] == (
        "docs/runbook.md#alert-creditassessmentinstancenotready"
    )
    assert resolved.payload["receiver"] == "team-slack"

    to_alert_s = fired.received_at - fault_at
    to_resolved_s = resolved.received_at - cleared_at
    print(
        f"\nfault -> alert delivered: {to_alert_s:.1f} s; "
        f"fault cleared -> resolved delivered: {to_resolved_s:.1f} s"
    )
    assert to_alert_s < DELIVERY_TIMEOUT_S
    assert to_resolved_s < DELIVERY_TIMEOUT_S


def test_critical_alert_pages_oncall_and_inhibits_its_warning(monitoring_stack) -> None:
    """A saturated pool fires both variants; only the critical one is delivered, to the pager."""
    stack = monitoring_stack
    assert stack.blue is not None
    stack.blue.set(db_in_use=10)  # 100% of the pool: the critical and the warning variants fire
    try:
        paged = stack.webhook.wait_for(
            _about("CreditAssessmentDbPoolSaturated", "firing"),
            timeout_s=DELIVERY_TIMEOUT_S,
            what="CreditAssessmentDbPoolSaturated firing",
        )
    finally:
        stack.blue.set(db_in_use=2)
    stack.webhook.wait_for(
        _about("CreditAssessmentDbPoolSaturated", "resolved"),
        timeout_s=DELIVERY_TIMEOUT_S,
        what="CreditAssessmentDbPoolSaturated resolved",
    )
    assert paged.payload["receiver"] == "oncall-pager"
    # the warning variant on the same instance is inhibited by the critical one
    warnings = [
        d
        for d in stack.webhook.deliveries
        if d.payload.get("receiver") == "team-slack"
        and d.payload.get("commonLabels", {}).get("alertname") == "CreditAssessmentDbPoolSaturated"
    ]
    assert warnings == []


def _service_available() -> bool:
    executable = shutil.which("credit-assessment") or str(
        Path(sys.executable).parent / "credit-assessment"
    )
    if not Path(executable).exists():
        return False
    try:
        result = subprocess.run(
            [executable, "serve", "--help"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.mark.skipif(not _service_available(), reason="service not available")
def test_real_service_down_alert_is_delivered_then_resolved(
    stack_factory, managed_process, free_tcp_port, wait, tmp_path
) -> None:
    """Against `credit-assessment serve`: stop it, InstanceDown pages; restart it, resolved."""
    import httpx

    executable = shutil.which("credit-assessment") or str(
        Path(sys.executable).parent / "credit-assessment"
    )
    port = free_tcp_port()
    args = [executable, "serve", "--host", "127.0.0.1", "--port", str(port)]
    # Own data directory (embedded PostgreSQL), no shutdown drain: the fault is "process gone".
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "SLOT": "blue",
        "SHUTDOWN_DRAIN_S": "0",
    }

    def start_service(n: int):
        service = managed_process(
            f"credit-assessment-{n}", args, tmp_path / f"service-{n}.log", env
        )
        service.wait_http_ok(f"http://127.0.0.1:{port}/metrics", timeout_s=90)
        return service

    service = start_service(1)
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "credit_assessment_ready" in body

    with stack_factory(tmp_path / "stack", blue_target=f"127.0.0.1:{port}") as stack:
        stack.wait_for_samples('up{job="credit-assessment", slot="blue"} == 1')
        fault_at = time.time()
        service.stop()
        fired = stack.webhook.wait_for(
            _about("CreditAssessmentInstanceDown", "firing"),
            timeout_s=DELIVERY_TIMEOUT_S,
            what="CreditAssessmentInstanceDown firing",
        )
        restarted_at = time.time()
        start_service(2)
        resolved = stack.webhook.wait_for(
            _about("CreditAssessmentInstanceDown", "resolved"),
            timeout_s=DELIVERY_TIMEOUT_S,
            what="CreditAssessmentInstanceDown resolved",
        )
    assert fired.payload["receiver"] == "oncall-pager"
    print(
        f"\nreal service: stop -> page {fired.received_at - fault_at:.1f} s; "
        f"restart -> resolved {resolved.received_at - restarted_at:.1f} s"
    )
