"""The security scan's summary, from saved pip-audit and bandit outputs (tests/fixtures/audit):
counts by severity, each finding, the reviewed ignores and their expiry; and ``golive audit``
summarising them (no network, no scanner run)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from golive import cli
from golive.security import scan
from golive.security import summary as s

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests/fixtures/audit"
TODAY = date(2026, 12, 6)


def fixture(name: str) -> dict[str, Any]:
    return s.read(FIXTURES / name)


def summarise(pip_audit: str, bandit: str, ignores: list[s.Ignore] | None = None) -> dict:
    return s.summarise(
        version="2.0.0",
        scanned_at="2026-12-06T10:00:00+00:00",
        pip_audit=fixture(pip_audit),
        bandit=fixture(bandit),
        ignores=ignores or [],
        today=TODAY,
    )


def ignore(id_: str, expires: date, package: str | None = None) -> s.Ignore:
    return s.Ignore(
        id=id_, reason="reviewed: not reachable from our code", expires=expires, package=package
    )


def test_a_clean_scan_blocks_nothing():
    result = summarise("pip-audit-clean.json", "bandit-clean.json")
    assert result["version"] == "2.0.0" and result["complete"] is True
    assert result["dependencies_audited"] == 3 and result["blocking"] == 0
    assert result["counts"]["medium"] == 3 and result["counts"]["low"] == 1
    assert result["counts"]["critical"] == result["counts"]["high"] == 0
    sql = next(f for f in result["findings"] if f["id"].startswith("B608:"))
    assert sql["source"] == "bandit" and sql["location"].startswith("src/")


def test_a_dependency_advisory_without_severity_blocks_like_a_high_one():
    result = summarise("pip-audit-vulnerable.json", "bandit-clean.json")
    jinja = [f for f in result["findings"] if f["package"] == "jinja2"]
    assert [f["id"] for f in jinja] == ["GHSA-h5c8-rqwp-cp95", "GHSA-h75v-3vvj-5mfj"]
    assert {f["severity"] for f in jinja} == {"unknown"} and jinja[0]["fix_versions"] == ["3.1.3"]
    assert result["blocking"] == 2 and result["open"]["unknown"] == 2
    assert result["complete"] is False
    assert result["dependencies_not_audited"][0].startswith("internal-tool:")


def test_a_high_static_finding_blocks():
    result = summarise("pip-audit-clean.json", "bandit-high.json")
    assert result["counts"]["high"] == 1 and result["blocking"] == 1
    assert "shell=True" in next(f["title"] for f in result["findings"] if f["severity"] == "high")


def test_a_reviewed_ignore_unblocks_until_it_expires():
    by_alias = ignore("CVE-2024-22195", date(2027, 1, 31))
    by_id = ignore("GHSA-h75v-3vvj-5mfj", date(2026, 12, 6), package="jinja2")  # last day
    result = summarise("pip-audit-vulnerable.json", "bandit-clean.json", [by_alias, by_id])
    assert result["blocking"] == 0 and result["ignored"] == 2
    assert all(f["ignore_reason"] for f in result["findings"] if f["package"] == "jinja2")

    expired = ignore("GHSA-h75v-3vvj-5mfj", date(2026, 12, 5))
    result = summarise("pip-audit-vulnerable.json", "bandit-clean.json", [by_alias, expired])
    assert result["blocking"] == 1 and result["ignored"] == 1
    assert result["expired_ignores"] == [
        {"id": "GHSA-h75v-3vvj-5mfj", "expires": "2026-12-05", "reason": expired.reason}
    ]


def test_an_ignore_for_another_package_does_not_apply():
    other = ignore("CVE-2024-22195", date(2027, 1, 31), package="markupsafe")
    result = summarise("pip-audit-vulnerable.json", "bandit-clean.json", [other])
    assert result["blocking"] == 2


def test_a_static_finding_is_ignored_by_test_and_path():
    entry = ignore("B602:src/golive/targets/local.py", date(2027, 1, 31))
    assert summarise("pip-audit-clean.json", "bandit-high.json", [entry])["blocking"] == 0


@pytest.mark.parametrize(
    ("vuln", "severity"),
    [
        ({"severity": "CRITICAL"}, "critical"),
        ({"severity": "moderate"}, "medium"),
        ({"score": 9.8}, "critical"),
        ({"score": 7.5}, "high"),
        ({"score": 5.0}, "medium"),
        ({"score": 2.0}, "low"),
        ({}, "unknown"),
    ],
)
def test_an_advisory_severity_is_read_when_given(vuln: dict[str, Any], severity: str):
    report = {"dependencies": [{"name": "x", "version": "1", "vulns": [{"id": "A-1", **vuln}]}]}
    findings, _, _ = s.pip_audit_findings(report)
    assert findings[0].severity == severity


def test_the_ignore_file_shipped_is_valid_and_an_invalid_one_is_refused(tmp_path):
    assert s.load_ignores(REPO / "deploy/security/audit-ignore.yaml") == []
    bad = tmp_path / "ignore.yaml"
    bad.write_text("ignores:\n  - id: CVE-1\n    reason: because\n", encoding="utf-8")
    with pytest.raises(s.UsageError, match="not a valid ignore file"):
        s.load_ignores(bad)


def audit(tmp_path: Path, pip_audit: str, bandit: str, *extra: str) -> int:
    return cli.main(
        [
            "audit",
            *("--out", str(tmp_path / "audit"), "--version", "2.0.0"),
            *("--ignore", str(REPO / "deploy/security/audit-ignore.yaml")),
            *("--pip-audit-json", str(FIXTURES / pip_audit)),
            *("--bandit-json", str(FIXTURES / bandit)),
            *extra,
        ]
    )


def test_golive_audit_writes_the_summary_of_saved_outputs(tmp_path, capsys):
    assert audit(tmp_path, "pip-audit-clean.json", "bandit-clean.json") == 0
    written = json.loads((tmp_path / "audit/2.0.0/summary.json").read_text(encoding="utf-8"))
    assert written["version"] == "2.0.0" and written["blocking"] == 0
    assert set(written["tools"]) == {"pip-audit", "bandit", "cyclonedx-bom"}
    assert "open 0 critical, 0 high, 3 medium, 1 low, 0 unknown" in capsys.readouterr().out


def test_golive_audit_fails_on_a_blocking_finding_after_writing_the_summary(tmp_path, capsys):
    assert audit(tmp_path, "pip-audit-clean.json", "bandit-high.json") == 22
    assert (
        "1 blocking finding(s): B602:src/golive/targets/local.py (high)" in capsys.readouterr().err
    )
    assert (tmp_path / "audit/2.0.0/summary.json").exists()


def test_golive_audit_fails_on_an_incomplete_scan(tmp_path, capsys):
    ignores = tmp_path / "ignore.yaml"
    ignores.write_text(
        "ignores:\n"
        "  - {id: CVE-2024-22195, reason: reviewed and not reachable, expires: 2999-01-01}\n"
        "  - {id: CVE-2024-34064, reason: reviewed and not reachable, expires: 2999-01-01}\n",
        encoding="utf-8",
    )
    code = audit(
        tmp_path, "pip-audit-vulnerable.json", "bandit-clean.json", "--ignore", str(ignores)
    )
    assert code == 22 and "1 dependencies could not be audited" in capsys.readouterr().err


def test_the_runtime_closure_is_the_service_dependencies_pinned_without_the_dev_tools():
    closure = scan.runtime_closure()
    assert {"fastapi", "sqlalchemy", "pydantic"} <= set(closure)
    assert not {"pytest", "ruff", "bandit", "pip-audit"} & set(closure)
    assert all(version[0].isdigit() for version in closure.values())
