"""After a migration: is the database what the new release needs, and what the old one needs?

``verify`` checks, and reports each check with its timing:

1. revision: the database is at the expected revision (the one the clone test reached);
2. schema objects: the tables, columns, indexes and constraints the new release expects exist;
3. validity: no constraint left NOT VALID (``pg_constraint.convalidated``), no index left invalid
   by an interrupted CREATE INDEX CONCURRENTLY (``pg_index.indisvalid``);
4. integrity: the rows that existed before (under the baseline's watermark) are unchanged: same
   row counts and the same checksums over the columns they had;
5. N-1: the statements of the previous release (``previous_release.yaml``) still succeed, run in
   one transaction that is rolled back, so a rollback to the previous release stays possible.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from golive.database.fingerprint import (
    BOOKKEEPING_TABLES,
    DatabaseFingerprint,
    differences,
    fingerprint,
    refingerprint,
    user_tables,
)
from golive.database.postgres import connect
from golive.errors import VerificationError

PREVIOUS_RELEASE_QUERIES = Path(__file__).with_name("previous_release.yaml")
WATERMARK_MARGIN = timedelta(minutes=5)  # rows decided just before the baseline commit later


@dataclass(frozen=True, slots=True)
class SchemaExpectation:
    """Objects the new release needs; usually from the plan (``from_mapping``)."""

    columns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    indexes: Sequence[str] = ()
    constraints: Sequence[str] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SchemaExpectation:
        return cls(
            columns={t: list(c) for t, c in dict(data.get("columns", {})).items()},
            indexes=list(data.get("indexes", [])),
            constraints=list(data.get("constraints", [])),
        )


# What release 2.0 of the service expects after its expand migrations (0002-0006).
RELEASE_2_EXPECTATION = SchemaExpectation(
    columns={
        "assessments": ["score_breakdown", "decision_latency_ms", "reason_codes"],
        "migration_history": ["revision", "phase", "applied_at", "duration_ms"],
    },
    indexes=["ix_assessments_decision_created", "ix_assessments_client_created"],
    constraints=["ck_assessments_decision_latency_nonnegative", "ck_assessments_decision"],
)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.to_dict() for c in self.checks]}


def baseline(url: str, watermark: bool = True) -> DatabaseFingerprint:
    """Fingerprint before a migration: every application table over its current columns; with
    ``watermark`` only rows created before now minus a margin (the service keeps writing)."""
    with connect(url) as conn:
        mark = None
        if watermark:
            db_now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            mark = db_now - WATERMARK_MARGIN
        result = fingerprint(conn, watermark=mark, skip=BOOKKEEPING_TABLES)
        conn.rollback()
        return result


def _timed(name: str, run: Callable[[], list[str]], detail_ok: str) -> Check:
    started = time.monotonic()
    try:
        problems = run()
    except psycopg.Error as exc:
        problems = [f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"]
    elapsed = time.monotonic() - started
    return Check(name, not problems, "; ".join(problems) or detail_ok, elapsed)


def check_revision(conn: psycopg.Connection, expected: str | Sequence[str]) -> list[str]:
    allowed = [expected] if isinstance(expected, str) else list(expected)
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    found = row[0] if row else None
    return [] if found in allowed else [f"database at revision {found}, expected {allowed}"]


def check_objects(conn: psycopg.Connection, expectation: SchemaExpectation) -> list[str]:
    present = user_tables(conn)
    problems = []
    for table, columns in expectation.columns.items():
        if table not in present:
            problems.append(f"table {table} missing")
            continue
        problems += [f"column {table}.{c} missing" for c in columns if c not in present[table]]
    indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes").fetchall()}
    problems += [f"index {i} missing" for i in expectation.indexes if i not in indexes]
    constraints = {r[0] for r in conn.execute("SELECT conname FROM pg_constraint").fetchall()}
    problems += [f"constraint {c} missing" for c in expectation.constraints if c not in constraints]
    return problems


def check_validity(conn: psycopg.Connection) -> list[str]:
    invalid = conn.execute(
        """
        SELECT 'constraint ' || conrelid::regclass || '.' || conname || ' is NOT VALID'
        FROM pg_constraint WHERE NOT convalidated
          AND connamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'index ' || indexrelid::regclass || ' is invalid (interrupted CONCURRENTLY?)'
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace
        """
    ).fetchall()
    return [r[0] for r in invalid]


def check_integrity(conn: psycopg.Connection, before: DatabaseFingerprint) -> list[str]:
    return differences(before, refingerprint(conn, before))


def load_statements(path: Path = PREVIOUS_RELEASE_QUERIES) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["statements"])


def n1_check(conn: psycopg.Connection, path: Path = PREVIOUS_RELEASE_QUERIES) -> list[str]:
    """Run the previous release's statements in a transaction that is always rolled back."""
    now = datetime.now(UTC)
    params = {
        "client_id": str(uuid.uuid4()),
        "assessment_id": str(uuid.uuid4()),
        "subject": "golive-n1-check",
        "key": uuid.uuid4().hex,
        "request_hash": "0" * 64,
        "now": now.isoformat(),
        "later": now + timedelta(days=1),
        "max_id": "ffffffff-ffff-ffff-ffff-ffffffffffff",
    }
    problems: list[str] = []
    conn.rollback()
    try:
        with conn.transaction(force_rollback=True):
            for statement in load_statements(path):
                name = statement["name"]
                try:
                    with conn.transaction():  # a savepoint: one failure does not hide the rest
                        rows = _run_statement(conn, statement, params)
                except psycopg.Error as exc:
                    problems.append(f"{name}: {str(exc).strip().splitlines()[0]}")
                    continue
                expected = statement.get("expect_rows")
                if expected is not None and rows != expected:
                    problems.append(f"{name}: {rows} rows, expected {expected}")
    finally:
        conn.rollback()
    return problems


def _run_statement(
    conn: psycopg.Connection, statement: dict[str, Any], params: dict[str, Any]
) -> int:
    if "copy" in statement:
        spec = statement["copy"]
        row = [None if v is None else str(v) % params for v in spec["row"]]
        columns = ", ".join(spec["columns"])
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY {spec['table']} ({columns}) FROM STDIN") as copy:
                copy.write_row(row)
            return 1
    with conn.cursor() as cursor:
        cursor.execute(statement["sql"], params)
        return cursor.rowcount if cursor.description is None else len(cursor.fetchall())


def verify(
    url: str,
    expected_revision: str | Sequence[str],
    before: DatabaseFingerprint | None = None,
    expectation: SchemaExpectation = RELEASE_2_EXPECTATION,
    previous_release: Path | None = PREVIOUS_RELEASE_QUERIES,
    raise_on_failure: bool = True,
) -> VerifyReport:
    """Run the checks of the module docstring; raise VerificationError when one fails."""
    checks: list[Check] = []
    with connect(url) as conn:
        checks.append(
            _timed(
                "revision", lambda: check_revision(conn, expected_revision), "at expected revision"
            )
        )
        checks.append(
            _timed("schema objects", lambda: check_objects(conn, expectation), "all present")
        )
        checks.append(
            _timed("validity", lambda: check_validity(conn), "constraints and indexes valid")
        )
        if before is not None:
            checks.append(
                _timed(
                    "integrity",
                    lambda: check_integrity(conn, before),
                    f"{len(before.tables)} tables, {before.total_rows} rows unchanged",
                )
            )
        if previous_release is not None:
            checks.append(
                _timed(
                    "previous release (N-1)",
                    lambda: n1_check(conn, previous_release),
                    f"{len(load_statements(previous_release))} statements succeed",
                )
            )
        conn.rollback()
    report = VerifyReport(checks)
    if raise_on_failure and not report.ok:
        raise VerificationError(report.failures)
    return report
