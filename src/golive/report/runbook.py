"""The human runbook, rendered from the same plan `golive run` executes, so the two never drift.

Sections (stable anchors, GitHub-style slugs of their headings): pre-deployment checklist, the
steps in order with their expected duration and the commands a human runs when golive is not
available, the smoke-test procedure, rollback, pause and resume, escalation contacts,
post-deployment, and one section per alert of the Prometheus rules
(``#alert-<alertname in lower case>``, the ``runbook_url`` of every rule). ``docs/runbook.md``
is the production plan's rendering; a test fails when it is stale.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from golive import schedule
from golive.credentials import shell_export
from golive.plan import Plan
from golive.steps import build_steps
from golive.steps.shift import approve_command

DEFAULT_ALERT_RULES = Path("deploy/monitoring/prometheus/rules/alerts.rules.yml")

FIRST_RESPONSE = {
    "CreditAssessmentErrorBudgetBurnFast": (
        "During a go-live: `golive rollback` now (the gates should already have done it). "
        "Otherwise find the failing route and status in the Service overview dashboard, check "
        "the database and the bureau panels, and roll back the last change."
    ),
    "CreditAssessmentErrorBudgetBurnSlow": (
        "Not urgent, but the month's budget is going: open a ticket, look for a failing route "
        "or client segment, and pause any go-live in progress (`golive pause`)."
    ),
    "CreditAssessmentLatencyP99High": (
        "Check database pool saturation and the bureau latency panels; during a go-live compare "
        "the slots — if only green is slow, `golive rollback`."
    ),
    "CreditAssessmentInstanceDown": (
        "`kubectl -n credit-assessment get pods -l app=credit-assessment -o wide`; look at the "
        "pod's events and last logs (`kubectl logs --previous`). If it is the serving slot and "
        "others are not absorbing the load, switch to the other slot."
    ),
    "CreditAssessmentTargetsMissing": (
        "Prometheus sees no service target: check the ServiceMonitor and the Service's endpoints "
        "(`kubectl get endpoints credit-assessment`). A go-live must not proceed blind."
    ),
    "CreditAssessmentInstanceNotReady": (
        "`curl <pod>/ready` shows which check fails (database, schema, model, lifecycle). A "
        "draining pod is expected to be unready for a few seconds."
    ),
    "CreditAssessmentVersionSkew": (
        "Expected while blue and green both run during a go-live; otherwise retire the old slot "
        "(`golive status` shows what runs)."
    ),
    "CreditAssessmentDbPoolSaturated": (
        "Check slow queries (`pg_stat_activity`) and the request rate; raise DB_POOL_SIZE only if "
        "PostgreSQL has connections to spare."
    ),
    "CreditBureauCircuitOpen": (
        "The bureau is failing: decisions fall back to REFER. Call the bureau's support (see the "
        "escalation contacts) and check the network path."
    ),
    "CreditBureauFailureRatioHigh": (
        "More than 10% of bureau calls fail: check timeouts and the bureau's status page; "
        "pause a go-live in progress."
    ),
    "CreditAssessmentShadowMismatchSpike": (
        "Legacy and new disagree more than usual: pause the traffic migration (`golive pause`) "
        "and review the mismatching fields before raising the weight again."
    ),
    "CreditAssessmentApprovalRateShift": (
        "The approval share moved by more than 10 points against last week: check the traffic "
        "mix and the model version before continuing a migration stage."
    ),
    "GoLiveBackupTooOld": (
        "Take a fresh backup (`golive run` does it as its second step) before any migration."
    ),
    "GoLiveStageOverdue": (
        "A go-live stage is past its deadline: `golive status` shows where it stands; decide "
        "with the release manager whether to resume, pause or roll back."
    ),
}

GENERIC_RESPONSE = "see the alert description and the dashboards; escalate to the on-call SRE."

CHECKLIST = [
    ("All tests passing in staging", "staging_tests"),
    (
        "Performance tests meet SLA requirements (golive measures green before the switch: {perf})",
        "",
    ),
    ("Security scan completed with no critical issues", "security_scan"),
    (
        "Database backup completed (golive's `backup` step: pg_dump -Fc, size and SHA-256 "
        "journaled)",
        "",
    ),
    (
        "Rollback plan tested (`make run` rehearses the go-live, including a switch back to blue)",
        "rollback_tested",
    ),
    ("On-call team notified (escalation contacts below)", "oncall_notified"),
    ("Maintenance window scheduled: {window}", "window"),
]


def _evidence(plan: Plan, key: str) -> str:
    """What golive checks for a checklist item, and where it finds the evidence."""
    if key == "window":
        if plan.maintenance_window.always:
            return ""
        return (
            " — enforced: the database steps refuse to start outside it unless "
            "`--outside-window --reason TEXT` (journaled)"
        )
    items = plan.checklist
    if items is None or not key:
        return ""
    version = plan.release.version
    texts = {
        "staging_tests": "the JUnit XML "
        f"`{items.staging_tests.junit.replace('{version}', version)}` shows tests ran with 0 "
        "failures and 0 errors",
        "security_scan": f"`{items.security_scan.summaries}/{version}/summary.json` "
        f"(`make audit`) at most {items.security_scan.max_age_days} days old, complete, no "
        "critical, high or unknown finding that is not ignored",
        "rollback_tested": f"a succeeded run of {version} with the rollback drill in "
        f"`{items.rollback_tested.state_dir or plan.state_dir}` (`golive history`)",
        "oncall_notified": "this run's start delivered to the notify target "
        f"`{items.oncall_notified.target}` within {items.oncall_notified.within_s:g} s",
    }
    required = getattr(items, key).required
    return f" — preflight checks{'' if required else ' (not required)'}: {texts[key]}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}".removesuffix(".0") + " h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def read_alerts(path: Path) -> list[dict[str, Any]]:
    """One entry per alert name: severities, summary and the `for` durations."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    alerts: dict[str, dict[str, Any]] = {}
    for group in data.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            entry = alerts.setdefault(
                name, {"name": name, "severities": [], "summary": "", "expr": []}
            )
            severity = (rule.get("labels") or {}).get("severity", "?")
            entry["severities"].append(f"{severity} (for {rule.get('for', '0m')})")
            entry["summary"] = entry["summary"] or (rule.get("annotations") or {}).get(
                "summary", ""
            )
            entry["expr"].append(" ".join(str(rule.get("expr", "")).split()))
    return list(alerts.values())


def _code(commands: list[str]) -> list[str]:
    return ["```bash", *commands, "```"]


def render(plan: Plan, alert_rules: Path = DEFAULT_ALERT_RULES) -> str:
    steps = build_steps(plan)
    window = plan.maintenance_window
    perf = plan.performance
    total = sum(step.expected_s(plan) for step in steps)
    lines = [
        f"# Credit assessment service — go-live runbook ({plan.name})",
        "",
        f"<!-- Rendered by `golive runbook {plan.source}` from the plan; do not edit by hand. -->",
        "",
        f"Release **{plan.release.version}** (`{plan.release.image}`) replacing "
        f"{plan.slots.blue.version}; target **{plan.target.kind}**"
        + (f" (namespace `{plan.target.namespace}`)" if plan.target.kind == "kubernetes" else "")
        + f". Maintenance window {schedule.describe(window)}. "
        f"Expected duration of the whole go-live: **{_duration(total)}**.",
        "",
        "golive runs every step below, journals it and undoes it on failure: "
        f"`golive run {plan.source}`. The commands under each step are for a human when the tool "
        "is unavailable.",
        "",
        *_in_cluster_section(plan),
        "## Pre-deployment checklist",
        "",
    ]
    perf_text = (
        f"p99 ≤ {perf.slo.p99_ms:g} ms and errors ≤ {perf.slo.max_error_ratio:.2%} "
        f"at {perf.rate_per_s:g} req/s"
    )
    window_text = schedule.describe(window)
    lines += [
        f"- [ ] {item.format(perf=perf_text, window=window_text)}{_evidence(plan, key)}"
        for item, key in CHECKLIST
    ]
    lines += ["", "## Deployment steps", ""]
    lines += ["| # | step | expected |", "|---|---|---|"]
    lines += [
        f"| {i} | [{s.title}](#{slug(f'{i} {s.title}')}) | {_duration(s.expected_s(plan))} |"
        for i, s in enumerate(steps, 1)
    ]
    lines.append("")
    for index, step in enumerate(steps, 1):
        lines += [
            f"### {index}. {step.title}",
            "",
            f"Step `{step.name}` — expected {_duration(step.expected_s(plan))}. By hand:",
            "",
            *_code(step.manual(plan)),
            "",
        ]
    lines += _smoke_section(plan)
    lines += _rollback_section(plan)
    lines += [
        "## Pause and resume",
        "",
        "`golive pause` stops the go-live at the next checkpoint (between steps, or within a "
        "dwell: the countdown freezes); `golive resume` continues it. `golive status` shows where "
        "it stands. After a crash or `kill -9`: `golive run PLAN --resume` continues from the last "
        "completed step; a switch already made is not repeated.",
        "",
        *_approval_section(plan),
        "## Escalation contacts",
        "",
        "| name | role | how to reach |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {c.role} | {c.reach} |" for c in plan.escalation]
    lines += [
        "",
        "## Post-deployment",
        "",
        f"- Monitor error rates and latency for {_duration(plan.hold.post_switch_s)} (golive's "
        f"`hold` step judges them every {plan.gates.interval_s:g} s: error ratio ≤ "
        f"{plan.gates.max_error_ratio:.2%}, p99 ≤ {plan.gates.max_p99_ms:g} ms)",
        "- Verify all alerts functioning (the Alerts section below; `verify-monitoring` step)",
        "- Update status page",
        "- Read the go-live report: `<state dir>/runs/<run-id>/report.md` (printed at the end)",
        "",
    ]
    lines += _alerts_section(alert_rules)
    return "\n".join(lines).rstrip() + "\n"


def _in_cluster_section(plan: Plan) -> list[str]:
    """On Kubernetes the production way: golive in its Job, steered from an operator's shell."""
    if plan.target.kind != "kubernetes":
        return []
    source = plan.source
    lease = plan.target.kubernetes.lease
    return [
        "## Running in the cluster",
        "",
        "The go-live runs in the cluster, not on a laptop: the Job `golive` of `deploy/k8s/golive` "
        "runs `golive run --resume-or-start` with its own ServiceAccount (a Role that grants "
        "exactly what the steps use), its journal, runs and backups on the volume `golive-state`. "
        "A pod that dies, is evicted or loses its node is replaced, and the new runner resumes "
        "from the journal by itself: it first reads the live Service, the flag and the slots' "
        "images, so a switch or weight made just before the crash is not made twice, and a dwell "
        "goes on with the time it has left. One runner at a time: the Lease "
        f"`{plan.target.kubernetes.lease.name}` (renewed every {lease.renew_s:g} s, lost after "
        f"{lease.duration_s:g} s without renewal); a second runner exits with code 7, naming the "
        'holder. docs/deploy.md ("golive in the cluster") has the details.',
        "",
        *_code(
            [
                "kubectl apply -k deploy/k8s/golive-production      # starts the go-live",
                f"golive status  --plan {source}   # step, weight, dwell, gates, the runner",
                f"golive approve --plan {source} --by NAME   # when a stage waits for a person",
                f"golive pause|resume|rollback --plan {source}",
                "kubectl -n credit-assessment port-forward job/golive 9464   # live page: /live",
                f"golive fetch-run --plan {source}   # the run's journal and report, afterwards",
            ]
        ),
        "",
        "Operators need kubectl access to the namespace only: their requests and the runner's "
        f"status meet in the ConfigMap `{plan.target.kubernetes.control_configmap}`.",
        "",
    ]


def _approval_section(plan: Plan) -> list[str]:
    manual = [s.weight for s in plan.traffic.stages if s.approval == "manual"]
    if not manual:
        return []
    weights = " and ".join(", ".join(f"{w}%" for w in manual).rsplit(", ", 1))
    return [
        "## Approvals",
        "",
        f"The traffic stages at {weights} wait for a person: once a stage's gates pass at the end "
        "of its dwell, golive journals the request, prints the command below and holds the "
        "weight — still judging the gates every interval (a breach still rolls back; "
        "`golive pause` and `golive rollback` still work) — until someone approves. The "
        "approval closes that stage; the next one starts. Who approved, when and why go into "
        "the journal, `golive status` and the report. A go-live resumed after a crash keeps "
        "waiting, or takes an approval given meanwhile.",
        "",
        *_code([approve_command(plan)]),
        "",
    ]


def _smoke_section(plan: Plan) -> list[str]:
    url = plan.slot_address("green")
    deps = plan.smoke.dependencies
    named = "; ".join(
        f"{d.name}: `GET {d.url}` answers 200"
        + (" with " + ", ".join(f"`{k}={v}`" for k, v in d.expect.items()) if d.expect else "")
        for d in deps
    )
    flags = " ".join(
        f"--dependency '{d.name}={','.join([d.url, *(f'{k}={v}' for k, v in d.expect.items())])}'"
        for d in deps
    )
    return [
        "## Smoke-test procedure",
        "",
        "golive runs these against green before the switch and through the service after it:",
        "",
        "1. `GET /health` answers 200",
        "2. `GET /ready` answers 200",
        "3. `GET /metrics` contains `credit_assessments_total`",
        f"4. `POST /api/v1/assessment` for client `{plan.smoke.client_id}` "
        f"({plan.smoke.loan_amount:g} over {plan.smoke.loan_term} months) returns an `id`, "
        "and `GET /api/v1/assessment/{id}` returns it",
        "5. each external service gives its own health answer ("
        + (named or "none in this plan: the check is skipped, saying so")
        + ")",
        "6. metrics flowing: `credit_assessments_total` rose after the test assessment",
        "",
        "By hand:",
        "",
        *_code(
            [
                shell_export(plan.auth),
                f"./scripts/smoke-tests.sh {url}",
                f"golive smoke {url} --token-env API_TOKEN" + (f" {flags}" if flags else ""),
            ]
        ),
        "",
    ]


def _rollback_section(plan: Plan) -> list[str]:
    if plan.target.kind == "kubernetes":
        manual = [
            "# Switch traffic back to blue",
            f"kubectl -n {plan.target.namespace} patch service {plan.target.service} "
            '-p \'{"spec":{"selector":{"slot":"blue"}}}\'',
            "# Flags back to 0%: restore deploy/k8s/production/flags.json",
            "kubectl apply -k deploy/k8s/production -l app.kubernetes.io/component=feature-flags",
            "# Database, only if the migration must be undone (the backup path is in the report):",
            'pg_restore --clean --if-exists -d "$DATABASE_URL" backup_TIMESTAMP.dump',
        ]
    else:
        sock = f"{plan.state_dir}/local/haproxy.sock"
        manual = [
            'echo "set server be/blue state ready; set server be/green state drain" '
            f"| socat stdio unix-connect:{sock}",
            f'echo "show servers state be" | socat stdio unix-connect:{sock}',
            "# only if the data must go back:",
            'pg_restore --clean --if-exists -d "$DATABASE_URL" backup_TIMESTAMP.dump',
        ]
    return [
        "## Rollback",
        "",
        "Automatic: when a step fails or a gate breaches, golive undoes the failing step and "
        "then every completed step in reverse order — the service back to blue (blue is kept "
        "running until the plan retires it; restarted first if it was retired), the traffic flag "
        "back to its previous weight, green stopped — journals each undo, writes the report, and "
        "exits non-zero naming the failed step and what was undone. The backup is kept; the "
        "schema stays (migrations are expand-only, blue runs on it).",
        "",
        "By an operator: `golive rollback` (a running go-live rolls itself back at its next "
        "checkpoint; a finished one is undone from its journal). `golive switch blue` only moves "
        "the router.",
        "",
        "By hand:",
        "",
        *_code(manual),
        "",
    ]


def _alerts_section(alert_rules: Path) -> list[str]:
    lines = ["## Alerts", ""]
    if not alert_rules.exists():
        return [*lines, f"(alert rules not found at `{alert_rules}`)", ""]
    lines += [
        f"One section per alert of `{alert_rules}`; each rule's `runbook_url` points here.",
        "",
    ]
    for alert in read_alerts(alert_rules):
        name = alert["name"]
        lines += [
            f"### Alert: {name}",
            "",
            f"{alert['summary']}. Severity: {', '.join(alert['severities'])}.",
            "",
            f"First response: {FIRST_RESPONSE.get(name, GENERIC_RESPONSE)}",
            "",
        ]
    return lines
