"""Is monitoring live? The checking core of golive's ``verify-monitoring`` step.

The judges are pure: they take the JSON bodies of Prometheus' HTTP API as plain dicts
(``/api/v1/targets``, ``/api/v1/rules``, ``/api/v1/alerts``, ``/api/v1/query``) and return
``Check`` objects, one per thing checked, passed or not — the step's evidence:

- every slot has at least one ``up`` scrape target of the service's job, and none is down;
- the alerting rules are loaded and healthy (and the expected ones are there);
- no alert of a blocking severity (critical) is firing;
- ``credit_assessments_total`` has fresh samples (the service is scraped right now).

``PrometheusMonitoring`` fetches those bodies over HTTP with httpx and runs the judges.
A Prometheus that cannot be reached or answers an error is a failed finding, not an
exception, when going through ``verify``; the fetch methods raise
``MonitoringUnavailableError``. golive never imports the service: the contract is the
metric and label names (docs/monitoring.md).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from golive.checks import Check
from golive.errors import MonitoringUnavailableError

SERVICE_JOB = "credit-assessment"
SLOTS = ("blue", "green")
BLOCKING_SEVERITIES = ("critical",)
FRESHNESS_METRIC = "credit_assessments_total"
# Alerts the go-live relies on: without them a gate could pass while the service burns.
REQUIRED_ALERTS = (
    "CreditAssessmentErrorBudgetBurnFast",
    "CreditAssessmentInstanceDown",
    "CreditAssessmentInstanceNotReady",
    "CreditAssessmentLatencyP99High",
)

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Expectations:
    """What live monitoring means for one go-live."""

    job: str = SERVICE_JOB
    slots: tuple[str, ...] = SLOTS
    required_alerts: tuple[str, ...] = REQUIRED_ALERTS
    blocking_severities: tuple[str, ...] = BLOCKING_SEVERITIES
    freshness_metric: str = FRESHNESS_METRIC
    # Slots that must have fresh samples of the metric; empty: any series will do.
    fresh_slots: tuple[str, ...] = ()
    max_sample_age_s: float = 60.0
    # Per slot, the labels of every instance that must be an up target of its own (the pods:
    # {"pod": name}); empty: one up target per slot is enough.
    instances: Mapping[str, tuple[Mapping[str, str], ...]] = field(default_factory=dict)

    @property
    def freshness_query(self) -> str:
        return f'max by (slot) (timestamp({self.freshness_metric}{{job="{self.job}"}}))'


@dataclass(frozen=True)
class Snapshot:
    """The bodies of the four Prometheus API answers, taken at ``taken_at`` (Unix seconds)."""

    targets: Json
    rules: Json
    alerts: Json
    freshness: Json
    taken_at: float


@dataclass
class _Checks:
    items: list[Check] = field(default_factory=list)

    def add(self, check: str, passed: bool, detail: str) -> None:
        self.items.append(Check(check, passed, detail))


def failures(findings: Iterable[Check]) -> list[Check]:
    return [f for f in findings if not f.passed]


def _data(body: Json, check: str, out: _Checks) -> Any:
    """The ``data`` of a successful API answer, or None after recording a failed finding."""
    if body.get("status") != "success":
        out.add(
            check,
            False,
            f"Prometheus answered {body.get('errorType', 'error')}: {body.get('error', body)}",
        )
        return None
    return body.get("data")


def check_targets(
    body: Json,
    *,
    job: str = SERVICE_JOB,
    slots: Collection[str] = SLOTS,
    instances: Mapping[str, tuple[Mapping[str, str], ...]] | None = None,
) -> list[Check]:
    """Every slot has a healthy scrape target of ``job``, and so does every instance named in
    ``instances`` (each pod); no target of ``job`` is down."""
    out = _Checks()
    data = _data(body, "targets", out)
    if data is None:
        return out.items
    targets = [t for t in data.get("activeTargets", []) if t.get("labels", {}).get("job") == job]
    for slot in slots:
        in_slot = [t for t in targets if t["labels"].get("slot") == slot]
        up = [t for t in in_slot if t.get("health") == "up"]
        if up:
            names = ", ".join(sorted(t["labels"].get("instance", "?") for t in up))
            out.add(f"targets/{slot}", True, f"{len(up)} of {len(in_slot)} up ({names})")
        elif in_slot:
            errors = "; ".join(
                sorted({t.get("lastError") or t.get("health", "?") for t in in_slot})
            )
            out.add(f"targets/{slot}", False, f"no target up: {errors}")
        else:
            out.add(f"targets/{slot}", False, f"no scrape target with job={job!r}, slot={slot!r}")
    for slot, wanted in (instances or {}).items():
        in_slot = [t for t in targets if t["labels"].get("slot") == slot]
        missing = [
            ",".join(f"{k}={v}" for k, v in labels.items())
            for labels in wanted
            if not any(
                t.get("health") == "up" and all(t["labels"].get(k) == v for k, v in labels.items())
                for t in in_slot
            )
        ]
        if missing:
            out.add(f"targets/{slot}/instances", False, f"not an up target: {'; '.join(missing)}")
        else:
            out.add(f"targets/{slot}/instances", True, f"all {len(wanted)} instances up")
    for target in targets:
        if target.get("health") == "down" and target["labels"].get("slot") in slots:
            out.add(
                f"targets/{target['labels']['slot']}/{target['labels'].get('instance', '?')}",
                False,
                f"down: {target.get('lastError') or 'no error given'}",
            )
    return out.items


def check_rules(body: Json, *, required_alerts: Collection[str] = REQUIRED_ALERTS) -> list[Check]:
    """Rule groups are loaded, every rule evaluates without error, required alerts exist."""
    out = _Checks()
    data = _data(body, "rules", out)
    if data is None:
        return out.items
    groups = data.get("groups", [])
    rules = [rule for group in groups for rule in group.get("rules", [])]
    alerting = {rule["name"] for rule in rules if rule.get("type") == "alerting"}
    if not groups:
        out.add("rules/loaded", False, "no rule groups loaded")
        return out.items
    out.add(
        "rules/loaded", True, f"{len(groups)} groups, {len(rules)} rules ({len(alerting)} alerting)"
    )
    broken = [rule for rule in rules if rule.get("health") == "err"]
    for rule in broken:
        out.add(f"rules/{rule['name']}", False, f"evaluation fails: {rule.get('lastError', '')}")
    if not broken:
        out.add("rules/health", True, "every rule evaluates without error")
    missing = sorted(set(required_alerts) - alerting)
    if missing:
        out.add("rules/required", False, f"alerting rules missing: {', '.join(missing)}")
    else:
        out.add("rules/required", True, f"{len(required_alerts)} required alerts present")
    return out.items


def check_alerts(
    body: Json, *, blocking_severities: Collection[str] = BLOCKING_SEVERITIES
) -> list[Check]:
    """No alert of a blocking severity is firing (pending ones are not yet a verdict)."""
    out = _Checks()
    data = _data(body, "alerts", out)
    if data is None:
        return out.items
    firing = [a for a in data.get("alerts", []) if a.get("state") == "firing"]
    blocking = [a for a in firing if a.get("labels", {}).get("severity") in blocking_severities]
    for alert in blocking:
        labels = alert["labels"]
        where = ", ".join(f"{k}={labels[k]}" for k in ("slot", "instance", "stage") if k in labels)
        out.add(
            f"alerts/{labels.get('alertname', '?')}",
            False,
            f"{labels.get('severity')} alert firing ({where or 'service-wide'})",
        )
    if not blocking:
        out.add(
            "alerts",
            True,
            f"no {'/'.join(blocking_severities)} alert firing ({len(firing)} other firing)",
        )
    return out.items


def check_freshness(
    body: Json,
    *,
    now: float,
    max_age_s: float = 60.0,
    slots: Collection[str] = (),
    metric: str = FRESHNESS_METRIC,
) -> list[Check]:
    """The answer to ``max by (slot) (timestamp(<metric>))`` shows recent samples."""
    out = _Checks()
    data = _data(body, "freshness", out)
    if data is None:
        return out.items
    newest: dict[str, float] = {}
    for sample in data.get("result", []):
        slot = sample.get("metric", {}).get("slot", "")
        newest[slot] = max(newest.get(slot, 0.0), float(sample["value"][1]))
    if not newest:
        out.add(f"samples/{metric}", False, f"no samples of {metric} in the last 5 minutes")
        return out.items
    for slot in slots or sorted(newest):
        label = f"samples/{metric}/{slot or 'all'}"
        if slot not in newest:
            out.add(label, False, f"no samples of {metric} from slot {slot!r}")
            continue
        age_s = now - newest[slot]
        out.add(
            label, age_s <= max_age_s, f"newest sample {age_s:.0f} s old (limit {max_age_s:.0f} s)"
        )
    return out.items


def evaluate(snapshot: Snapshot, expectations: Expectations | None = None) -> list[Check]:
    """Every check on one snapshot of Prometheus' answers."""
    want = expectations or Expectations()
    return [
        *check_targets(snapshot.targets, job=want.job, slots=want.slots, instances=want.instances),
        *check_rules(snapshot.rules, required_alerts=want.required_alerts),
        *check_alerts(snapshot.alerts, blocking_severities=want.blocking_severities),
        *check_freshness(
            snapshot.freshness,
            now=snapshot.taken_at,
            max_age_s=want.max_sample_age_s,
            slots=want.fresh_slots,
            metric=want.freshness_metric,
        ),
    ]


class PrometheusMonitoring:
    """Reads Prometheus' HTTP API and judges whether monitoring is live."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusMonitoring:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Json:
        try:
            response = self._client.get(path, params=params)
            body: Json = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise MonitoringUnavailableError(
                f"Prometheus at {self.base_url}{path}: {exc!r}"
            ) from exc
        return body

    def targets(self) -> Json:
        return self._get("/api/v1/targets", {"state": "active"})

    def rules(self) -> Json:
        return self._get("/api/v1/rules")

    def alerts(self) -> Json:
        return self._get("/api/v1/alerts")

    def query(self, expr: str) -> Json:
        return self._get("/api/v1/query", {"query": expr})

    def snapshot(self, expectations: Expectations | None = None) -> Snapshot:
        want = expectations or Expectations()
        taken_at = time.time()
        return Snapshot(
            targets=self.targets(),
            rules=self.rules(),
            alerts=self.alerts(),
            freshness=self.query(want.freshness_query),
            taken_at=taken_at,
        )

    def verify(self, expectations: Expectations | None = None) -> list[Check]:
        """All findings; an unreachable Prometheus is one failed finding."""
        try:
            snapshot = self.snapshot(expectations)
        except MonitoringUnavailableError as exc:
            return [Check("prometheus", False, exc.message)]
        return [
            Check("prometheus", True, f"answering at {self.base_url}"),
            *evaluate(snapshot, expectations),
        ]
