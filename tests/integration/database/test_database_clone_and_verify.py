"""Rehearsal on a clone, verification after the migration, and the previous release's queries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from credit_assessment.store import schema
from golive.database.backup import backup
from golive.database.clone import clone_test
from golive.database.migrate import ledger, migrate
from golive.database.postgres import revision
from golive.database.verify import baseline, verify
from golive.errors import CloneTestError, MigrationError, VerificationError
from tests.conftest import PostgresServer
from tests.integration.database.conftest import CONTRACT, EXPAND


def test_clone_test_migrates_a_restored_copy_and_leaves_production_alone(
    v1_url: str, postgres: PostgresServer, tmp_path: Path
):
    taken = backup(v1_url, tmp_path)

    report = clone_test(taken, postgres.admin_url, EXPAND)

    assert report.revision == "0006"
    assert [m.revision for m in report.migration.applied] == [
        "0002",
        "0003",
        "0004",
        "0005",
        "0006",
    ]
    assert all(m.duration_ms is not None for m in report.migration.applied[1:])
    assert report.verification.ok
    assert {c.name for c in report.verification.checks} >= {"integrity", "previous release (N-1)"}
    assert revision(v1_url) == "0001", "production untouched"


def test_a_failing_migration_stops_the_clone_test(
    v1_url: str, postgres: PostgresServer, tmp_path: Path
):
    taken = backup(v1_url, tmp_path)
    broken = (sys.executable, "-c", "raise SystemExit('migration 0003 failed: boom')")

    with pytest.raises(CloneTestError, match="boom"):
        clone_test(taken, postgres.admin_url, broken)
    assert revision(v1_url) == "0001"


def test_migrate_then_verify_on_the_live_database(v1_url: str):
    before = baseline(v1_url)

    run = migrate(v1_url, EXPAND)
    report = verify(v1_url, expected_revision=run.revision_after or "", before=before)

    assert run.revision_before == "0001" and run.revision_after == "0006"
    assert report.ok, report.failures
    assert [c.name for c in report.checks] == [
        "revision",
        "schema objects",
        "validity",
        "integrity",
        "previous release (N-1)",
    ]
    assert all(c.duration_s >= 0 for c in report.checks)


def test_previous_release_queries_succeed_after_the_contract_too(v1_url: str):
    migrate(v1_url, EXPAND)
    migrate(v1_url, CONTRACT)
    assert verify(v1_url, expected_revision="0007").ok
    assert [m.revision for m in ledger(v1_url)][-1] == "0007"


def test_verify_catches_changed_rows_invalid_constraints_and_a_wrong_revision(
    v1_url: str, conn_of: Any
):
    before = baseline(v1_url)
    schema.upgrade(v1_url, phase="expand")
    conn = conn_of(v1_url)
    conn.execute(
        "UPDATE assessments SET score = score + 1 "
        "WHERE id = (SELECT min(id::text)::uuid FROM assessments)"
    )
    conn.execute("ALTER TABLE assessments ADD CONSTRAINT ck_extra CHECK (score >= 0) NOT VALID")

    with pytest.raises(VerificationError) as caught:
        verify(v1_url, expected_revision="0007", before=before)

    failures = "\n".join(caught.value.failures)
    assert "revision: database at revision 0006" in failures
    assert "assessments: content checksum differs" in failures
    assert "ck_extra is NOT VALID" in failures


def test_verify_reports_missing_objects_and_a_broken_previous_release(v1_url: str, conn_of: Any):
    schema.upgrade(v1_url, phase="expand")
    conn_of(v1_url).execute("ALTER TABLE assessments RENAME COLUMN request_id TO correlation_id")

    report = verify(v1_url, expected_revision="0006", raise_on_failure=False)

    assert not report.ok
    n1 = next(c for c in report.checks if c.name == "previous release (N-1)")
    assert not n1.ok and "request_id" in n1.detail


def test_migration_failure_is_reported_with_the_revision_left(v1_url: str):
    hurried = {"MIGRATION_LONG_STATEMENT_TIMEOUT_MS": "1"}
    with pytest.raises(MigrationError, match="stays at revision 0003"):
        migrate(v1_url, EXPAND, env=hurried)
