"""Static checks of the monitoring configuration with the real tools (promtool, amtool).

Skipped, with the reason printed, when the Debian packages are not installed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "deploy" / "monitoring"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((MONITORING / "prometheus" / "tests").glob("*.test.yml"))
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"
DOCS = REPO / "docs" / "monitoring.md"
SEVERITIES = {"critical", "warning", "info"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def alert_rules() -> list[dict]:
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return rules


def test_prometheus_config_is_valid(promtool: str) -> None:
    run(promtool, "check", "config", str(MONITORING / "prometheus" / "prometheus.local.yml"))


def test_rule_files_are_valid(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, RULES))
    assert "SUCCESS" in result.stdout


@pytest.mark.slow
def test_rule_unit_tests_pass(promtool: str) -> None:
    run(promtool, "test", "rules", *map(str, RULE_TESTS))


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts without a case where they fire"
    assert names - quiet == set(), "alerts without a case where they must not fire"


@pytest.mark.parametrize(
    "rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']['severity']}"
)
def test_alert_carries_severity_summary_value_and_runbook(rule: dict) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert "$value" in annotations["description"], "the description must quote the measured value"
    anchor = f"alert-{rule['alert'].lower()}"
    assert annotations["runbook_url"] == f"docs/runbook.md#{anchor}"
    assert f"#{anchor}" in DOCS.read_text(), f"{anchor} is not listed in docs/monitoring.md"


def test_rules_use_only_documented_metrics() -> None:
    """Every raw metric a rule reads is in the metric table of docs/monitoring.md."""
    documented = set(re.findall(r"^\| `([a-z_:]+)`", DOCS.read_text(), flags=re.M))
    recorded = set()
    used = set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recorded.add(rule["record"])
                expr = re.sub(r'"[^"]*"', '""', rule["expr"])
                used |= set(re.findall(r"(?<![:\w])((?:credit_|golive_)[a-z_]+|up)(?![:\w])", expr))
    raw = {re.sub(r"_(bucket|count|sum)$", "", name) for name in used if name not in recorded}
    assert raw - documented == set()


def test_alertmanager_config_is_valid(amtool: str) -> None:
    run(amtool, "check-config", str(ALERTMANAGER))


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=CreditAssessmentInstanceDown"], "oncall-pager"),
        (["severity=warning", "alertname=CreditBureauCircuitOpen"], "team-slack"),
        (["severity=info", "alertname=CreditAssessmentVersionSkew"], "team-email"),
        (["alertname=SomethingWithoutSeverity"], "team-email"),
    ],
)
def test_alertmanager_routes_by_severity(amtool: str, labels: list[str], receiver: str) -> None:
    result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert result.stdout.strip() == receiver


def test_alertmanager_keeps_secrets_out_of_the_repo() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert "smtp_auth_password" not in config["global"]
    assert config["global"]["smtp_auth_password_file"].startswith("/etc/alertmanager/secrets/")
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert "api_url" not in slack
        for email in receiver.get("email_configs", []):
            assert "auth_password" not in email


def test_alertmanager_inhibits_latency_and_errors_of_a_down_instance() -> None:
    rules = yaml.safe_load(ALERTMANAGER.read_text())["inhibit_rules"]
    down = next(
        r for r in rules if r["source_matchers"] == ['alertname="CreditAssessmentInstanceDown"']
    )
    target = down["target_matchers"][0]
    for alertname in ("CreditAssessmentLatencyP99High", "CreditAssessmentErrorBudgetBurnFast"):
        pattern = target.split("=~", 1)[1].strip('"')
        assert re.fullmatch(pattern, alertname)
    critical = next(r for r in rules if r["source_matchers"] == ['severity="critical"'])
    assert {"alertname", "instance"} <= set(critical["equal"])


def test_derived_end_to_end_alertmanager_config_is_valid(
    amtool: str, alertmanager_e2e_config, tmp_path: Path
) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_e2e_config("http://127.0.0.1:9/hook")))
    run(amtool, "check-config", str(path))
