"""docs/runbook.md is the production plan's rendering: a test fails when it is out of date."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from golive.plan import load
from golive.report.runbook import read_alerts, render, slug
from golive.steps import build_steps

REPO = Path(__file__).resolve().parents[3]
PRODUCTION = Path("deploy/golive/production.yaml")
ALERTS = Path("deploy/monitoring/prometheus/rules/alerts.rules.yml")


def rendered(monkeypatch) -> str:
    monkeypatch.chdir(REPO)
    return render(load(PRODUCTION), ALERTS)


def test_committed_runbook_is_up_to_date(monkeypatch):
    committed = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
    assert committed == rendered(monkeypatch), (
        "docs/runbook.md is stale: run "
        "`golive runbook deploy/golive/production.yaml -o docs/runbook.md`"
    )


def anchors(markdown: str) -> set[str]:
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", markdown, re.M)}


def test_every_alert_has_its_runbook_anchor(monkeypatch):
    text = rendered(monkeypatch)
    rules = yaml.safe_load((REPO / ALERTS).read_text(encoding="utf-8"))
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert names and {a["name"] for a in read_alerts(REPO / ALERTS)} == names
    for name in names:
        assert f"alert-{name.lower()}" in anchors(text), name
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                url = rule["annotations"]["runbook_url"]
                assert url.split("#")[1] in anchors(text), url


def test_runbook_has_the_story_sections_and_every_step(monkeypatch):
    text = rendered(monkeypatch)
    for heading in (
        "Pre-deployment checklist",
        "Deployment steps",
        "Smoke-test procedure",
        "Rollback",
        "Escalation contacts",
        "Post-deployment",
        "Alerts",
    ):
        assert f"## {heading}\n" in text
    plan = load(REPO / PRODUCTION)
    for index, step in enumerate(build_steps(plan), 1):
        assert f"### {index}. {step.title}" in text
        assert f"(#{slug(f'{index} {step.title}')})" in text  # the table links resolve
    assert "kubectl -n credit-assessment patch service credit-assessment" in text
    assert "pg_restore --clean --if-exists" in text and "pg_dump -Fc" in text
    assert "| Chanda Mwale | Release manager |" in text
    assert "Traffic stage: 50% of legacy traffic" in text and "| 24 h |" in text
    assert "- [ ] Maintenance window scheduled: 2026-12-05T22:00:00+02:00" in text


def test_local_plan_runbook_names_the_runtime_api_switch(monkeypatch):
    monkeypatch.chdir(REPO)
    text = render(load("deploy/golive/rehearsal.yaml"), ALERTS)
    assert "set server be/green state ready; set server be/blue state drain" in text
