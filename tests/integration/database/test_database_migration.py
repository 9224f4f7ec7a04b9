"""The v2 migration on a live database: phases, the ledger, failures half way, lock waits."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from credit_assessment.store import schema
from credit_assessment.store.schema import (
    MigrationLockTimeout,
    MigrationPhaseError,
    MigrationPolicy,
)
from credit_assessment.store.tables import assessment_insights, assessments

EXPAND_HEAD = "0006"


def revision(conn: psycopg.Connection) -> str:
    return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def columns(conn: psycopg.Connection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
    )
    return {r[0] for r in rows}


def test_expand_stops_before_the_contract_migration(v1_url: str, conn_of: Any):
    assert schema.upgrade(v1_url, phase="expand") == EXPAND_HEAD
    conn = conn_of(v1_url)
    assert {"score_breakdown", "decision_latency_ms", "reason_codes"} <= columns(
        conn, "assessments"
    )
    nulls = conn.execute("SELECT count(*) FROM assessments WHERE reason_codes IS NULL").fetchone()[
        0
    ]
    assert nulls == 0, "the batched backfill filled every existing row"
    nullable = conn.execute(
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_name = 'assessments' AND column_name = 'reason_codes'"
    ).fetchone()[0]
    assert nullable == "YES", "the contract migration did not run"
    # a second expand is a no-op; contract then applies 0007 alone
    assert schema.upgrade(v1_url, phase="expand") == EXPAND_HEAD
    assert schema.upgrade(v1_url, phase="contract") == "0007"
    assert schema.upgrade(v1_url, phase="contract") == "0007"


def test_contract_is_refused_while_expand_migrations_are_pending(v1_url: str):
    with pytest.raises(MigrationPhaseError, match="run the expand phase first"):
        schema.upgrade(v1_url, phase="contract")


def test_every_migration_is_recorded_with_its_phase_and_duration(v1_url: str, conn_of: Any):
    schema.upgrade(v1_url, phase="expand")
    rows = (
        conn_of(v1_url)
        .execute("SELECT revision, phase, duration_ms FROM migration_history ORDER BY revision")
        .fetchall()
    )
    assert [r[0] for r in rows] == ["0001", "0002", "0003", "0004", "0005", "0006"]
    assert {r[1] for r in rows} == {"expand"}
    assert all(r[2] is not None and r[2] >= 0 for r in rows[1:])


def test_trigger_fills_reason_codes_for_rows_written_by_the_previous_release(
    v1_url: str, conn_of: Any
):
    schema.upgrade(v1_url, phase="expand")
    conn = conn_of(v1_url)
    conn.execute(
        """
        INSERT INTO assessments (id, client_id, loan_amount, loan_term, decision, score, risk_grade,
            reasons, engine, model_version, policy_version, input_snapshot, created_at)
        SELECT gen_random_uuid(), id, 100, 12, 'DECLINED', 400, 'E',
            '[{"code": "R09", "description": "x"}, {"code": "R02", "description": "y"}]',
            'new', 'm', 'p', '{}', now() FROM clients LIMIT 1
        """
    )
    codes = conn.execute(
        "SELECT reason_codes FROM assessments WHERE decision = 'DECLINED' AND score = 400"
    ).fetchone()[0]
    assert codes == ["R09", "R02"]


def test_tables_module_mirrors_the_migrated_schema(v1_url: str, conn_of: Any):
    schema.upgrade(v1_url)
    present = columns(conn_of(v1_url), "assessments")
    mirrored = {c.name for c in assessments.columns} | {c.name for c in assessment_insights.columns}
    assert present == mirrored


def test_a_migration_failing_half_way_leaves_the_previous_revision(v1_url: str, conn_of: Any):
    """0003 adds its columns, then fails creating its trigger function: all of 0003 rolls back."""
    conn = conn_of(v1_url)
    conn.execute(
        "CREATE FUNCTION assessments_fill_reason_codes() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
    )
    with pytest.raises(Exception, match="return type"):
        schema.upgrade(v1_url, phase="expand")

    assert revision(conn) == "0002"
    assert "score_breakdown" not in columns(conn, "assessments")

    conn.execute("DROP FUNCTION assessments_fill_reason_codes()")
    assert schema.upgrade(v1_url, phase="expand") == EXPAND_HEAD


def test_an_interrupted_concurrent_index_is_rebuilt_on_the_next_run(v1_url: str, conn_of: Any):
    """CREATE INDEX CONCURRENTLY killed by its timeout leaves an invalid index; a rerun drops it."""
    hurried = MigrationPolicy(long_statement_timeout_ms=1)
    with pytest.raises(Exception, match="statement timeout"):
        schema.upgrade(v1_url, phase="expand", policy=hurried)
    conn = conn_of(v1_url)
    assert revision(conn) == "0003"

    assert schema.upgrade(v1_url, phase="expand") == EXPAND_HEAD
    valid = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'ix_assessments_decision_created'"
    ).fetchall()
    assert valid == [(True,)]


class AppTraffic:
    """Application-like queries in a loop on their own connection, with their latencies."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> AppTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '5s'")
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute("SELECT count(*) FROM assessments WHERE score > 700")
                    conn.execute(
                        "INSERT INTO clients (id, full_name) VALUES (gen_random_uuid(), 'live')"
                    )
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.01)


def test_a_long_transaction_makes_the_migration_retry_then_give_up_without_blocking_traffic(
    v1_url: str, conn_of: Any
):
    schema.upgrade(v1_url, revision="0002")
    holder = conn_of(v1_url, autocommit=False)
    holder.execute("SELECT 1 FROM assessments LIMIT 1")  # AccessShareLock, held: idle in txn
    holder_pid = holder.info.backend_pid
    policy = MigrationPolicy(lock_timeout_ms=100, retry_budget_s=2.0, backoff_initial_s=0.05)

    with AppTraffic(v1_url) as traffic, pytest.raises(MigrationLockTimeout) as caught:
        schema.upgrade(v1_url, phase="expand", policy=policy)

    error = caught.value
    assert error.revision == "0003"
    assert error.attempts >= 3
    assert f"pid {holder_pid}" in error.blocker and "assessments" in error.blocker
    assert "0003" in str(error) and "blocking lock" in str(error)
    assert not traffic.errors
    assert len(traffic.latencies) > 20
    # queued behind the waiting ALTER at most for one lock_timeout, never for the budget
    assert max(traffic.latencies) < 1.5
    holder.rollback()
    assert revision(conn_of(v1_url)) == "0002"


def test_the_migration_goes_through_once_the_long_transaction_ends(v1_url: str, conn_of: Any):
    schema.upgrade(v1_url, revision="0002")
    holder = conn_of(v1_url, autocommit=False)
    holder.execute("SELECT 1 FROM assessments LIMIT 1")
    threading.Timer(1.0, holder.rollback).start()
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    policy = MigrationPolicy(lock_timeout_ms=100, retry_budget_s=30.0, backoff_initial_s=0.05)
    assert schema.upgrade(v1_url, phase="expand", policy=policy, sleep=sleep) == EXPAND_HEAD
    assert sleeps, "the migration retried while the lock was held"
    assert sleeps == sorted(sleeps) or len(sleeps) < 3 or max(sleeps) <= 5.0
