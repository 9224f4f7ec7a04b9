"""The scan summary: pip-audit's and bandit's findings, the reviewed ignores, one verdict.

Severities are ``critical``, ``high``, ``medium``, ``low`` and ``unknown``. bandit gives its own
(HIGH, MEDIUM, LOW). pip-audit gives the advisories of a dependency but no severity: a finding
carries one when the advisory does (``severity``, or CVSS ``score``), and is ``unknown``
otherwise -- and an unknown one blocks like a high one: no dependency vulnerability passes
unexamined. A finding is *blocking* when it is critical, high or unknown and not ignored.

The ignore file (``deploy/security/audit-ignore.yaml``) lists reviewed findings, each with a
reason and an expiry date::

    ignores:
      - id: GHSA-xxxx-xxxx-xxxx      # an advisory id or alias, or a bandit "B608:src/path.py"
        reason: the vulnerable function is never called: ...
        expires: 2027-03-31          # the day it stops ignoring (a re-review is due)

An entry whose expiry has passed no longer ignores anything and is listed as expired.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from golive.errors import UsageError

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
BLOCKING = ("critical", "high", "unknown")


class Ignore(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10)]
    expires: date
    package: str | None = None


class IgnoreFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ignores: list[Ignore] = []


def load_ignores(path: Path) -> list[Ignore]:
    """The reviewed ignores; a missing file ignores nothing; an invalid one is a UsageError."""
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return IgnoreFile.model_validate(data).ignores
    except (yaml.YAMLError, ValidationError) as exc:
        raise UsageError(
            f"{path}: not a valid ignore file: {exc}",
            hint="every entry needs id, reason (10+ characters) and expires (YYYY-MM-DD)",
        ) from exc


@dataclass
class Finding:
    source: str  # pip-audit | bandit
    id: str
    severity: str
    title: str
    package: str = ""  # pip-audit: the dependency
    version: str = ""
    location: str = ""  # bandit: path:line
    aliases: list[str] = field(default_factory=list)
    fix_versions: list[str] = field(default_factory=list)
    ignored: bool = False
    ignore_reason: str = ""
    ignore_expires: str = ""

    @property
    def keys(self) -> set[str]:
        return {self.id, *self.aliases}


def _cvss_severity(score: float) -> str:
    if score >= 9:
        return "critical"
    if score >= 7:
        return "high"
    if score >= 4:
        return "medium"
    return "low"


def _advisory_severity(vuln: dict[str, Any]) -> str:
    given = str(vuln.get("severity") or "").lower()
    if given in SEVERITIES:
        return given
    if given == "moderate":
        return "medium"
    score = vuln.get("score")
    if isinstance(score, int | float):
        return _cvss_severity(float(score))
    return "unknown"


def pip_audit_findings(report: dict[str, Any]) -> tuple[list[Finding], list[str], int]:
    """(findings, dependencies that could not be audited, dependencies audited)."""
    findings: list[Finding] = []
    skipped: list[str] = []
    audited = 0
    for dep in report.get("dependencies", []):
        name, version = str(dep.get("name", "")), str(dep.get("version", ""))
        if dep.get("skip_reason"):
            skipped.append(f"{name}: {dep['skip_reason']}")
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            findings.append(
                Finding(
                    source="pip-audit",
                    id=str(vuln.get("id", "")),
                    severity=_advisory_severity(vuln),
                    title=str(vuln.get("description", "")).strip().split("\n")[0][:200],
                    package=name,
                    version=version,
                    aliases=[str(a) for a in vuln.get("aliases", [])],
                    fix_versions=[str(v) for v in vuln.get("fix_versions", [])],
                )
            )
    return findings, skipped, audited


def bandit_findings(report: dict[str, Any], root: str = "") -> list[Finding]:
    found = []
    for result in report.get("results", []):
        path = str(result.get("filename", ""))
        if root and path.startswith(root):
            path = path[len(root) :].lstrip("/")
        test_id = str(result.get("test_id", ""))
        found.append(
            Finding(
                source="bandit",
                id=f"{test_id}:{path}",
                severity=str(result.get("issue_severity", "unknown")).lower(),
                title=f"{result.get('test_name', '')}: {result.get('issue_text', '')}"[:200],
                location=f"{path}:{result.get('line_number', '')}",
                aliases=[test_id],
            )
        )
    return found


def apply_ignores(findings: list[Finding], ignores: list[Ignore], today: date) -> list[Ignore]:
    """Mark the findings a current ignore covers; returns the expired entries."""
    current = [i for i in ignores if i.expires >= today]
    for finding in findings:
        entry = next(
            (
                i
                for i in current
                if i.id in finding.keys and (i.package is None or i.package == finding.package)
            ),
            None,
        )
        if entry is not None:
            finding.ignored = True
            finding.ignore_reason = entry.reason
            finding.ignore_expires = entry.expires.isoformat()
    return [i for i in ignores if i.expires < today]


def summarise(
    *,
    version: str,
    scanned_at: str,
    pip_audit: dict[str, Any],
    bandit: dict[str, Any],
    ignores: list[Ignore],
    today: date,
    tools: dict[str, str] | None = None,
    root: str = "",
) -> dict[str, Any]:
    """The summary ``summary.json`` holds (and the preflight reads)."""
    dependency_findings, skipped, audited = pip_audit_findings(pip_audit)
    findings = dependency_findings + bandit_findings(bandit, root)
    expired = apply_ignores(findings, ignores, today)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    open_counts = {
        s: sum(1 for f in findings if f.severity == s and not f.ignored) for s in SEVERITIES
    }
    blocking = [f for f in findings if f.severity in BLOCKING and not f.ignored]
    return {
        "version": version,
        "scanned_at": scanned_at,
        "tools": tools or {},
        "dependencies_audited": audited,
        "dependencies_not_audited": skipped,
        "complete": not skipped,
        "counts": counts,
        "open": open_counts,
        "blocking": len(blocking),
        "ignored": sum(1 for f in findings if f.ignored),
        "expired_ignores": [
            {"id": i.id, "expires": i.expires.isoformat(), "reason": i.reason} for i in expired
        ],
        "findings": [asdict(f) for f in findings],
    }


def verdict(summary: dict[str, Any]) -> str:
    """One line: what the scan found and whether it passes."""
    counts = ", ".join(f"{summary['open'].get(s, 0)} {s}" for s in SEVERITIES)
    line = f"version {summary['version']}, scanned {summary['scanned_at']}: open {counts}"
    if summary.get("ignored"):
        line += f"; {summary['ignored']} ignored (reviewed)"
    if not summary.get("complete", True):
        line += f"; {len(summary['dependencies_not_audited'])} dependencies not audited"
    return line


def read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data
