"""The story's smoke tests, in Python, with evidence: each check passed, failed or skipped.

1. ``/health`` answers 200;  2. ``/ready`` answers 200;  3. ``/metrics`` has
``credit_assessments_total``;  4. a real assessment with a token returns an id (not empty),
and reading it back by id returns it;  5. each external service the service depends on gives its
own health answer (a 200 whose JSON carries the fields the dependency is known to answer with, so
a 404 or 401 from the wrong host fails; one check per dependency, from the plan and the target;
skipped, saying so, when there are none);  6. metrics are flowing: ``credit_assessments_total``
rose after the test assessment.

``golive smoke URL`` runs them standalone; the go-live runs them against green before the
switch and through the router after it.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from golive.errors import SmokeFailed, UsageError

COUNTER = "credit_assessments_total"
_SAMPLE = re.compile(rf"^{COUNTER}(?:\{{[^}}]*\}})?\s+([0-9.eE+-]+)\s*$", re.M)


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    status: str  # passed | failed | skipped
    detail: str
    elapsed_ms: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def __str__(self) -> str:
        mark = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}[self.status]
        return f"[{mark}] {self.name}: {self.detail}"


@dataclass
class SmokeReport:
    url: str
    checks: list[SmokeCheck] = field(default_factory=list)
    assessment_id: str | None = None
    unauthorized: bool = False  # the service answered 401 to the token

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[SmokeCheck]:
        return [c for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "passed": self.passed,
            "assessment_id": self.assessment_id,
            "checks": [asdict(c) for c in self.checks],
        }


@dataclass(frozen=True)
class Dependency:
    """An external service the service needs, and the health answer that proves it is that one."""

    name: str
    health_url: str
    expect: Mapping[str, str] = field(default_factory=dict)  # JSON fields the answer must carry


@dataclass(frozen=True)
class SmokeRequest:
    client_id: str = "123e4567-e89b-12d3-a456-426614174000"
    loan_amount: float = 50000
    loan_term: int = 12
    dependencies: tuple[Dependency, ...] = ()
    timeout_s: float = 10.0


def health_answer(dependency: Dependency, status: int, body: bytes) -> tuple[str, str]:
    """Judge a dependency's health answer: 200, and every expected JSON field as expected."""
    said = f"GET {dependency.health_url} -> {status}"
    if status != 200:
        return "failed", f"{said}, not its health answer"
    if not dependency.expect:
        return "passed", said
    try:
        data = json.loads(body)
    except ValueError:
        return "failed", f"{said}, but the body is not JSON"
    if not isinstance(data, dict):
        return "failed", f"{said}, but the body is not a JSON object"
    wrong = {k: data.get(k) for k, v in dependency.expect.items() if str(data.get(k)) != v}
    if wrong:
        expected = ", ".join(f"{k}={v}" for k, v in dependency.expect.items())
        return "failed", f"{said}, but it answered {wrong} where {expected} was expected"
    return "passed", f"{said} " + ", ".join(f"{k}={data[k]}" for k in dependency.expect)


def counter_total(metrics_text: str) -> float | None:
    values = [float(v) for v in _SAMPLE.findall(metrics_text)]
    return sum(values) if values else None


def counter_over(
    client: httpx.Client, metrics_urls: Sequence[str], reader: httpx.Client | None = None
) -> tuple[int, float | None]:
    """The counter summed over every instance of ``metrics_urls`` (none: the client's own
    ``/metrics``), read with ``reader`` (default ``client``); the status is the first that was
    not 200, the total None then."""
    if not metrics_urls:
        response = client.get("/metrics")
        return response.status_code, counter_total(response.text)
    total = 0.0
    for base in metrics_urls:
        response = (reader or client).get(f"{base.rstrip('/')}/metrics")
        value = counter_total(response.text)
        if response.status_code != 200 or value is None:
            return response.status_code, None
        total += value
    return 200, total


class _Run:
    def __init__(self, report: SmokeReport) -> None:
        self.report = report

    def check(self, name: str, probe: Callable[[], tuple[str, str]]) -> bool:
        started = time.perf_counter()
        try:
            status, detail = probe()
        except httpx.HTTPError as exc:
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        elapsed = (time.perf_counter() - started) * 1000
        self.report.checks.append(SmokeCheck(name, status, detail, round(elapsed, 1)))
        return status != "failed"


def run_smoke(
    url: str,
    token: str,
    request: SmokeRequest | None = None,
    *,
    metrics_urls: Sequence[str] = (),
    metrics_reader: httpx.Client | None = None,
    transport: httpx.BaseTransport | None = None,
) -> SmokeReport:
    """Run every check (a failed one does not hide the others) and return the evidence.

    ``metrics_urls``: where the counter of "metrics flowing" is read and summed, one URL per
    instance, when ``url`` balances over several (each request may land on another instance,
    so one ``/metrics`` of many need not see the test assessment); default ``url`` itself.
    ``metrics_reader`` reaches those URLs (through a pod proxy: the API's identity)."""
    want = request or SmokeRequest()
    url = url.rstrip("/")
    report = SmokeReport(url)
    run = _Run(report)
    with httpx.Client(base_url=url, timeout=want.timeout_s, transport=transport) as client:

        def counter_now() -> tuple[int, float | None]:
            return counter_over(client, metrics_urls, metrics_reader)

        def status_200(path: str) -> Callable[[], tuple[str, str]]:
            def probe() -> tuple[str, str]:
                response = client.get(path)
                ok = response.status_code == 200
                return ("passed" if ok else "failed"), f"GET {path} -> {response.status_code}"

            return probe

        run.check("health", status_200("/health"))
        run.check("ready", status_200("/ready"))
        before: dict[str, float | None] = {"total": None}

        def metrics() -> tuple[str, str]:
            status, before["total"] = counter_now()
            if status != 200 or before["total"] is None:
                return "failed", f"GET /metrics -> {status}, no {COUNTER}"
            over = f" over {len(metrics_urls)} instance(s)" if metrics_urls else ""
            return "passed", f"{COUNTER} = {before['total']:g}{over}"

        run.check("metrics", metrics)

        def assessment() -> tuple[str, str]:
            body = {
                "clientId": want.client_id,
                "loanAmount": want.loan_amount,
                "loanTerm": want.loan_term,
            }
            response = client.post(
                "/api/v1/assessment", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            report.unauthorized = response.status_code == 401
            try:
                data = response.json()
            except ValueError:
                data = {}
            assessment_id = data.get("id") if isinstance(data, dict) else None
            if response.status_code != 201 or not assessment_id:
                detail = data.get("detail") or data.get("title") if isinstance(data, dict) else ""
                return "failed", f"POST /api/v1/assessment -> {response.status_code} {detail or ''}"
            report.assessment_id = str(assessment_id)
            read = client.get(
                f"/api/v1/assessment/{assessment_id}", headers={"Authorization": f"Bearer {token}"}
            )
            report.unauthorized = read.status_code == 401
            if read.status_code != 200 or read.json().get("id") != assessment_id:
                return (
                    "failed",
                    f"created {assessment_id} but reading it back -> {read.status_code}",
                )
            return "passed", (
                f"id {assessment_id}: {data.get('decision')} by engine {data.get('engine')}"
            )

        created = run.check("assessment", assessment)

        def dependency_probe(dependency: Dependency) -> Callable[[], tuple[str, str]]:
            def probe() -> tuple[str, str]:
                response = httpx.get(dependency.health_url, timeout=want.timeout_s)
                return health_answer(dependency, response.status_code, response.content)

            return probe

        for dependency in want.dependencies:
            run.check(f"external service: {dependency.name}", dependency_probe(dependency))
        if not want.dependencies:
            run.check(
                "external services",
                lambda: ("skipped", "no external service named by the plan or the target"),
            )

        def flowing() -> tuple[str, str]:
            if not created or before["total"] is None:
                return "failed", "no test assessment to count"
            after = counter_now()[1] or 0.0
            if after > before["total"]:
                return "passed", f"{COUNTER} rose {before['total']:g} -> {after:g}"
            return "failed", f"{COUNTER} did not rise ({before['total']:g} -> {after:g})"

        run.check("metrics flowing", flowing)
    return report


def token_from_env(name: str) -> str:
    token = os.environ.get(name, "").strip()
    if not token:
        raise UsageError(
            f"no token: ${name} is empty",
            hint=f"export {name}=$(credit-assessment token --ttl 600)",
        )
    return token


def main(url: str, token_env: str, dependencies: list[Dependency]) -> None:
    """``golive smoke URL``: print every check; fail (SmokeFailed, exit 15) when one failed."""
    report = run_smoke(
        url, token_from_env(token_env), SmokeRequest(dependencies=tuple(dependencies))
    )
    for check in report.checks:
        print(check)
    if not report.passed:
        raise SmokeFailed(
            f"smoke tests failed against {url}: " + ", ".join(c.name for c in report.failures()),
            hint="fix the slot before any traffic reaches it",
        )
    print(f"all smoke tests passed against {url}")
