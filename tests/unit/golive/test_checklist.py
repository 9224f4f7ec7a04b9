"""The pre-deployment checklist: each item's verdict and evidence from files and journals
written here (no network), and the preflight that refuses a release whose required item fails,
on the fake target, with a real on-call delivery to a local webhook."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from golive import checklist, cli
from golive import journal as j
from golive.errors import PlanError, TargetUnreachableError
from golive.plan import (
    OncallNotifiedItem,
    Plan,
    RollbackTestedItem,
    SecurityScanItem,
    StagingTestsItem,
    parse,
)
from golive.runner import Runner
from golive.steps.base import Clock
from golive.steps.preflight import Preflight
from golive.targets.fake import FakeTarget

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests/fixtures/audit"
SCANNED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def write_scan(out: Path, bandit: str = "bandit-clean.json", version: str = "2.0.0") -> None:
    """``golive audit`` of saved outputs: the summary.json a real `make audit` writes."""
    code = cli.main(
        [
            "audit",
            *("--out", str(out), "--version", version),
            *("--pip-audit-json", str(FIXTURES / "pip-audit-clean.json")),
            *("--bandit-json", str(FIXTURES / bandit)),
        ]
    )
    assert code in (0, 22)
    summary = out / version / "summary.json"
    data = json.loads(summary.read_text(encoding="utf-8"))
    data["scanned_at"] = SCANNED.isoformat()  # the instant the verdicts below are judged from
    summary.write_text(json.dumps(data), encoding="utf-8")


# --- security scan ---------------------------------------------------------------------------


def test_a_clean_scan_of_this_version_passes_with_its_evidence(tmp_path):
    write_scan(tmp_path / "audit")
    item = SecurityScanItem(summaries=tmp_path / "audit", max_age_days=7)
    result = checklist.security_scan(item, "2.0.0", SCANNED + timedelta(days=2))
    assert result.passed and result.status == "ok"
    assert "summary.json: scanned 2026-12-06T10:00:00+00:00 (2 d ago)" in result.evidence
    assert "open 0 critical, 0 high, 0 unknown" in result.evidence


@pytest.mark.parametrize(
    ("bandit", "version", "days", "says"),
    [
        ("bandit-high.json", "2.0.0", 0, "blocking: B602:src/golive/targets/local.py (high)"),
        ("bandit-clean.json", "2.0.0", 8, "older than 7 days"),
        ("bandit-clean.json", "1.9.0", 0, "no scan summary for 2.0.0"),
    ],
)
def test_a_scan_that_blocks_is_too_old_or_of_another_version_fails(
    tmp_path, bandit, version, days, says
):
    write_scan(tmp_path / "audit", bandit, version)
    item = SecurityScanItem(summaries=tmp_path / "audit")
    result = checklist.security_scan(item, "2.0.0", SCANNED + timedelta(days=days))
    assert not result.passed and result.status == "fail" and says in result.evidence


def test_an_item_not_required_warns_instead():
    item = SecurityScanItem(summaries=Path("/nonexistent"), required=False)
    result = checklist.security_scan(item, "2.0.0", SCANNED)
    assert result.status == "warn" and "run `make audit`" in result.evidence


# --- staging tests ---------------------------------------------------------------------------

JUNIT_OK = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="2" tests="120" time="30.1">
<testcase classname="t" name="a"/></testsuite></testsuites>"""
JUNIT_FAILED = """<?xml version="1.0" encoding="utf-8"?>
<testsuite name="pytest" errors="1" failures="2" skipped="0" tests="50"><testcase name="a"/>
</testsuite>"""


def junit(tmp_path: Path, text: str) -> StagingTestsItem:
    path = tmp_path / "staging" / "2.0.0" / "junit.xml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return StagingTestsItem(junit=str(tmp_path / "staging/{version}/junit.xml"))


def test_a_staging_report_of_this_version_with_no_failure_passes(tmp_path):
    result = checklist.staging_tests(junit(tmp_path, JUNIT_OK), "2.0.0")
    assert result.passed
    assert result.evidence.endswith("120 tests, 0 failures, 0 errors, 2 skipped")


def test_failures_errors_or_no_report_fail(tmp_path):
    failed = checklist.staging_tests(junit(tmp_path, JUNIT_FAILED), "2.0.0")
    assert not failed.passed and "2 failures, 1 errors" in failed.evidence
    missing = checklist.staging_tests(
        StagingTestsItem(junit=str(tmp_path / "x/{version}.xml")), "2.0.0"
    )
    assert not missing.passed and "no JUnit XML for 2.0.0" in missing.evidence


# --- rollback tested -------------------------------------------------------------------------


def rehearsal(state_dir: Path, run_id: str, release: str, steps: list[str], outcome: str) -> None:
    journal = j.open_run(state_dir, run_id)
    journal.append(j.RUN_STARTED, run_id=run_id, release=release)
    for step in steps:
        journal.append(j.STEP_STARTED, step=step)
        journal.append(j.STEP_FINISHED, step=step, figures={})
    journal.append(j.RUN_FINISHED, outcome=outcome)


def test_a_succeeded_rehearsal_of_this_version_with_the_drill_passes(tmp_path):
    state = tmp_path / "rehearsals"
    rehearsal(state, "r1-2.0.0", "2.0.0", ["switch-to-green"], "succeeded")  # no drill
    rehearsal(state, "r2-2.0.0", "2.0.0", ["rollback-drill"], "rolled_back")  # failed
    rehearsal(state, "r3-1.9.0", "1.9.0", ["rollback-drill"], "succeeded")  # other version
    item = RollbackTestedItem(state_dir=state)
    assert not checklist.rollback_tested(item, "2.0.0", tmp_path).passed
    rehearsal(state, "r4-2.0.0", "2.0.0", ["switch-to-green", "rollback-drill"], "succeeded")
    result = checklist.rollback_tested(item, "2.0.0", tmp_path)
    assert result.passed and "run r4-2.0.0 of 2.0.0" in result.evidence


# --- on-call notified ------------------------------------------------------------------------


class Ticking:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1

    def monotonic(self) -> float:
        return self.now


def ev(event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "ts": "2026-12-06T10:00:01+00:00", **fields}


SENDING = ev("notification_sending", id="n1", target="oncall", kind="run_started")


@pytest.mark.parametrize(
    ("events", "passed", "says"),
    [
        ([SENDING, ev("notification_sent", id="n1", target="oncall", attempts=1)], True, "at "),
        ([ev("notification_target_off", target="oncall", error="GOLIVE_X unset")], False, "off"),
        ([SENDING, ev("notification_failed", id="n1", target="oncall", error="502")], False, "502"),
        ([SENDING, ev("notification_sent", id="n1", target="chat", attempts=1)], False, "within"),
        ([], False, "not delivered to oncall within 5 s"),
    ],
)
def test_the_start_of_the_run_delivered_to_the_oncall_target(events, passed, says):
    clock = Ticking()
    item = OncallNotifiedItem(target="oncall", within_s=5)
    result = checklist.oncall_notified(item, lambda: events, clock.sleep, clock.monotonic)
    assert result.passed is passed and says in result.evidence
    assert clock.now <= 5.25  # waited at most within_s


# --- the preflight ---------------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class FixedWall(Clock):
    def wall(self) -> datetime:
        return SCANNED + timedelta(hours=1)


def make_plan(tmp_path: Path, url: str, bandit: str = "bandit-clean.json") -> Plan:
    write_scan(tmp_path / "audit", bandit)
    junit(tmp_path, JUNIT_OK)
    rehearsal(tmp_path / "rehearsals", "r1-2.0.0", "2.0.0", ["rollback-drill"], "succeeded")
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["target"]["state_dir"] = str(tmp_path / "state")
    data["database"]["backup_dir"] = str(tmp_path / "backups")
    data["notify"] = {"targets": [{"name": "oncall", "url": url}], "drain_s": 2}
    data["checklist"] = {
        "security_scan": {"summaries": str(tmp_path / "audit")},
        "staging_tests": {"junit": str(tmp_path / "staging/{version}/junit.xml")},
        "rollback_tested": {"state_dir": str(tmp_path / "rehearsals")},
        "oncall_notified": {"target": "oncall", "within_s": 20},
    }
    source = tmp_path / "plan.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    return parse(source.read_text(encoding="utf-8"), str(source))


def preflight() -> Preflight:
    return Preflight(probe=lambda url: ("credit", 1_000_000))


def test_the_preflight_checks_every_item_and_the_report_shows_the_evidence(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    with webhook() as url:
        plan = make_plan(tmp_path, url)
        journal = Runner(plan, FakeTarget(), steps=[preflight()], clock=FixedWall()).run()
    assert journal.state().outcome == "succeeded"
    items = journal.state().figures("preflight")["checklist"]
    assert [(i["name"], i["status"]) for i in items] == [
        ("Security scan", "ok"),
        ("Staging tests", "ok"),
        ("Rollback tested", "ok"),
        ("On-call notified", "ok"),
    ]
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    section = report.split("## Pre-deployment checklist", 1)[1].split("\n## ", 1)[0]
    assert "| ✅ | Security scan |" in section and "open 0 critical, 0 high" in section
    assert "| ✅ | Staging tests |" in section and "120 tests, 0 failures" in section
    assert "| ✅ | Rollback tested |" in section and "run r1-2.0.0" in section
    assert "| ✅ | On-call notified |" in section and "delivered to oncall" in section
    assert "| ✅ | Maintenance window |" in section


def test_a_required_item_that_fails_stops_the_go_live_with_nothing_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    target = FakeTarget()
    with webhook() as url:
        plan = make_plan(tmp_path, url, bandit="bandit-high.json")
        runner = Runner(plan, target, steps=[preflight()], clock=FixedWall())
        with pytest.raises(TargetUnreachableError) as caught:
            runner.run()
    assert caught.value.exit_code == 6
    assert "[FAIL] checklist: Security scan" in str(caught.value)
    assert "B602:src/golive/targets/local.py (high)" in str(caught.value)
    assert target.calls == ["preflight"]  # it read, and changed nothing
    assert runner.journal is not None
    report = (runner.journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "| ❌ | Security scan |" in report and "| ✅ | Staging tests |" in report


def test_a_required_oncall_item_must_name_a_notify_target(tmp_path):
    data = yaml.safe_load((REPO / "deploy/golive/rehearsal.yaml").read_text(encoding="utf-8"))
    data["checklist"]["oncall_notified"] = {"target": "pager"}
    with pytest.raises(PlanError, match=r"'pager' is not one of notify\.targets"):
        parse(yaml.safe_dump(data), "plan.yaml")
    data["checklist"]["oncall_notified"] = {"target": "pager", "required": False}
    assert parse(yaml.safe_dump(data), "plan.yaml").checklist is not None


def test_the_shipped_plans_check_the_checklist():
    production = yaml.safe_load(
        (REPO / "deploy/golive/production.yaml").read_text(encoding="utf-8")
    )
    assert set(production["checklist"]) == {
        "security_scan",
        "staging_tests",
        "rollback_tested",
        "oncall_notified",
    }
    assert not any(item.get("required") is False for item in production["checklist"].values())
