"""Verify monitoring is live: every slot an ``up`` target, rules loaded, no critical alert
firing, fresh samples of ``credit_assessments_total`` after a test request, golive's own
metrics of this run scraped (the go-live alerts read them), Alertmanager reachable.

Prometheus is the plan's ``monitoring.prometheus_url``, else the one the rehearsal started
(``LocalTarget.monitoring()``). Without either the step says plainly why it is skipped —
``skipped: prometheus not installed (apt-get install prometheus)`` when the rehearsal found no
binary — and does not fail. Every finding goes into the journal and the report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx

from golive.checks import Check
from golive.errors import MonitoringUnavailableError
from golive.monitoring import Expectations, PrometheusMonitoring, failures
from golive.plan import SLOT_NAMES, Plan
from golive.steps.base import StepContext, StepResult

FLOW_TIMEOUT_S = 20.0
FLOW_QUERY = 'sum(credit_assessments_total{job="credit-assessment",slot="%s"})'
# Three scrapes of the PodMonitor's 15 s interval.
EXPORTER_TIMEOUT_S = 45.0
# The step golive reports running, from the exporter of this very run (golive.exporter).
EXPORTER_QUERY = (
    'golive_step_info{job="golive",step="%s"} '
    'and on (job, instance) golive_run_info{job="golive",run="%s"}'
)


def _urls(ctx: StepContext) -> tuple[str | None, str | None, str | None]:
    """(prometheus, alertmanager, why skipped)."""
    configured = ctx.plan.monitoring
    if configured.prometheus_url:
        return configured.prometheus_url, configured.alertmanager_url, None
    started = ctx.target.monitoring()
    if started.get("skipped"):
        return None, None, f"skipped: {started['skipped']}"
    prometheus = (started.get("prometheus") or {}).get("url")
    if not prometheus:
        return None, None, "skipped: no Prometheus configured (plan: monitoring.prometheus_url)"
    return prometheus, (started.get("alertmanager") or {}).get("url"), None


def _counter(prometheus: PrometheusMonitoring, slot: str) -> float | None:
    body = prometheus.query(FLOW_QUERY % slot)
    result = body.get("data", {}).get("result", []) if body.get("status") == "success" else []
    return float(result[0]["value"][1]) if result else None


def check_flow(ctx: StepContext, prometheus: PrometheusMonitoring, slot: str) -> Check:
    """One assessment straight to ``slot``; Prometheus must see its counter grow."""
    name = f"samples/flow/{slot}"
    before = _counter(prometheus, slot) or 0.0
    smoke = ctx.plan.smoke

    def assess(token: str) -> httpx.Response:
        return httpx.post(
            ctx.target.slot_url(slot) + "/api/v1/assessment",  # type: ignore[arg-type]
            json={
                "clientId": smoke.client_id,
                "loanAmount": smoke.loan_amount,
                "loanTerm": smoke.loan_term,
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=smoke.timeout_s,
        )

    try:
        response = ctx.authorized(assess, lambda answer: answer.status_code == 401)
    except httpx.HTTPError as exc:
        return Check(name, False, f"test request to {slot} failed: {exc!r}")
    if response.status_code >= 300:
        return Check(name, False, f"test request to {slot} answered {response.status_code}")
    started = time.monotonic()
    while time.monotonic() - started < FLOW_TIMEOUT_S:
        after = _counter(prometheus, slot)
        if after is not None and after > before:
            return Check(
                name,
                True,
                f"test request scraped after {time.monotonic() - started:.1f} s "
                f"(credit_assessments_total {before:g} -> {after:g})",
            )
        time.sleep(0.5)
    return Check(name, False, f"the test request was not scraped within {FLOW_TIMEOUT_S:g} s")


def _instances(ctx: StepContext) -> dict[str, tuple[Mapping[str, str], ...]]:
    """Every ready instance of each running slot that Prometheus must scrape on its own
    (each pod); none where a slot is one server."""
    wanted: dict[str, tuple[Mapping[str, str], ...]] = {}
    for slot in SLOT_NAMES:
        if ctx.target.slot_status(slot).running:
            labels = tuple(i.labels for i in ctx.target.instances(slot) if i.labels)
            if labels:
                wanted[slot] = labels
    return wanted


def check_golive_scraped(
    ctx: StepContext, prometheus: PrometheusMonitoring, step: str, timeout_s: float
) -> Check:
    """Prometheus has this run's own metrics, with ``step`` running: GoLiveStageOverdue and
    GoLiveBackupTooOld can fire."""
    name = "samples/golive"
    if ctx.plan.monitoring.exporter is None:
        return Check(
            name, True, "golive's metrics are off (monitoring.exporter: null): not checked"
        )
    run = ctx.state.run_id
    started = time.monotonic()
    while True:
        try:
            body = prometheus.query(EXPORTER_QUERY % (step, run))
        except MonitoringUnavailableError as exc:
            return Check(name, False, exc.message)
        found = body.get("data", {}).get("result", []) if body.get("status") == "success" else []
        if found:
            instance = found[0].get("metric", {}).get("instance", "?")
            return Check(
                name,
                True,
                f"this run's metrics scraped from {instance} (job golive) after "
                f"{time.monotonic() - started:.1f} s",
            )
        if time.monotonic() - started >= timeout_s:
            return Check(
                name,
                False,
                f"golive's metrics of run {run} are not in Prometheus after {timeout_s:g} s: "
                "scrape job golive (the PodMonitor, or file_sd_configs on "
                "<state_dir>/exporter/targets.json)",
            )
        time.sleep(0.5)


def check_alertmanager(url: str | None) -> Check:
    if not url:
        return Check("alertmanager", True, "not configured: alert delivery not checked here")
    try:
        response = httpx.get(f"{url}/api/v2/status", timeout=5.0)
    except httpx.HTTPError as exc:
        return Check("alertmanager", False, f"not reachable at {url}: {exc!r}")
    if response.status_code != 200:
        return Check("alertmanager", False, f"{url} answered {response.status_code}")
    version = response.json().get("versionInfo", {}).get("version", "?")
    return Check("alertmanager", True, f"reachable at {url} (version {version})")


class VerifyMonitoring:
    name = "verify-monitoring"
    title = "Verify monitoring: Prometheus targets, rules, alerts, fresh samples, Alertmanager"

    def run(self, ctx: StepContext) -> StepResult:
        url, alertmanager, skipped = _urls(ctx)
        if url is None:
            return StepResult(skipped or "skipped", {"skipped": True, "reason": skipped})
        with PrometheusMonitoring(url) as prometheus:
            findings = prometheus.verify(
                Expectations(fresh_slots=("green",), instances=_instances(ctx))
            )
            if not failures(findings[:1]):  # Prometheus answers: prove data flows end to end
                findings.append(check_flow(ctx, prometheus, "green"))
                findings.append(
                    check_golive_scraped(ctx, prometheus, self.name, EXPORTER_TIMEOUT_S)
                )
        findings.append(check_alertmanager(alertmanager))
        for finding in findings:
            ctx.observer.message(f"  {finding}")
        figures = {
            "prometheus_url": url,
            "alertmanager_url": alertmanager,
            "findings": [
                {"check": f.name, "passed": f.passed, "detail": f.detail} for f in findings
            ],
        }
        failed = failures(findings)
        if failed:
            raise MonitoringUnavailableError(
                "monitoring is not live: " + "; ".join(map(str, failed)),
                hint=f"Prometheus at {url}: /targets, /rules and /alerts show the same",
            )
        return StepResult(f"{len(findings)} monitoring checks passed ({url})", figures)

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 5

    def manual(self, plan: Plan) -> list[str]:
        prom = plan.monitoring.prometheus_url or "$PROMETHEUS"
        alertmanager = plan.monitoring.alertmanager_url or "$ALERTMANAGER"
        return [
            f"curl -s {prom}/api/v1/targets "
            "| jq '.data.activeTargets[] | {slot: .labels.slot, health}'",
            f"curl -s {prom}/api/v1/rules | jq '.data.groups[].name'",
            f"curl -s {prom}/api/v1/alerts "
            "| jq '.data.alerts[] | select(.labels.severity==\"critical\")'",
            f"curl -s '{prom}/api/v1/query?query=sum by (slot) (credit_assessments_total)'",
            f"curl -s '{prom}/api/v1/query?query=golive_step_info' | jq '.data.result[].metric'",
            f"curl -s {alertmanager}/api/v2/status | jq .versionInfo",
        ]
