"""Operations that keep a live database serving while a migration runs.

Each helper works both online and offline (``--sql``, what squawk lints):

- ``create_index_concurrently``: outside a transaction, after dropping an invalid leftover of an
  earlier interrupted attempt (CONCURRENTLY leaves one behind when it fails).
- ``validate_constraint``: ``VALIDATE CONSTRAINT`` takes SHARE UPDATE EXCLUSIVE, so reads and
  writes go on while it scans; it gets the long statement timeout.
- ``backfill_in_batches``: one short transaction per batch of ``policy.batch_size`` rows, walking
  the primary key, with ``policy.batch_pause_ms`` between batches; idempotent, so a retried or
  resumed migration carries on where it stopped.
- ``set_not_null``: CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL (no scan: the
  valid check proves it), drop the check; each its own transaction.

Session limits (``lock_timeout``, ``statement_timeout``) come from ``schema.upgrade``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import context, op

from credit_assessment.store.schema import MigrationPolicy

_NIL_UUID = "00000000-0000-0000-0000-000000000000"


def policy() -> MigrationPolicy:
    found = context.config.attributes.get("policy")
    return found if isinstance(found, MigrationPolicy) else MigrationPolicy()


def _offline() -> bool:
    return bool(op.get_context().as_sql)


@contextmanager
def long_running() -> Iterator[None]:
    """A long statement timeout for statements that do not block traffic while they run."""
    limits = policy()
    op.execute(f"SET statement_timeout = '{limits.long_statement_timeout_ms}ms'")
    try:
        yield
    finally:
        op.execute(f"SET statement_timeout = '{limits.statement_timeout_ms}ms'")


def _exists(sql: str, **params: object) -> bool:
    return bool(op.get_bind().scalar(sa.text(sql), params))


def create_index_concurrently(name: str, table: str, columns: str) -> None:
    ctx = op.get_context()
    with ctx.autocommit_block(), long_running():
        if not _offline() and _exists(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND NOT i.indisvalid",
            name=name,
        ):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns})")


def drop_index_concurrently(name: str) -> None:
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def add_check_not_valid(table: str, name: str, condition: str) -> None:
    if not _offline() and _exists("SELECT 1 FROM pg_constraint WHERE conname = :name", name=name):
        return
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")


def validate_constraint(table: str, name: str) -> None:
    with long_running():
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")


def backfill_in_batches(table: str, assignments: str, condition: str, key: str = "id") -> int:
    """``UPDATE table SET assignments WHERE condition`` a batch at a time; returns rows updated."""
    limits = policy()
    # identifiers and expressions are the migration's own constants, values are bound
    batch = " ".join(
        [
            f"WITH batch AS (SELECT {key} FROM {table} WHERE {key} > :last",  # noqa: S608
            f"ORDER BY {key} LIMIT :size),",
            f"updated AS (UPDATE {table} t SET {assignments} FROM batch b",  # noqa: S608
            f"WHERE t.{key} = b.{key} AND {condition} RETURNING 1)",
            f"SELECT (SELECT {key} FROM batch ORDER BY {key} DESC LIMIT 1) AS last,",  # noqa: S608
            "(SELECT count(*) FROM updated) AS updated",
        ]
    )
    ctx = op.get_context()
    with ctx.autocommit_block(), long_running():
        if _offline():
            op.execute(
                batch.replace(":last", f"'{_NIL_UUID}'").replace(":size", str(limits.batch_size))
            )
            return 0
        conn = op.get_bind()
        last, total = _NIL_UUID, 0
        while True:
            row = conn.execute(sa.text(batch), {"last": last, "size": limits.batch_size}).one()
            if row.last is None:
                return total
            last, total = str(row.last), total + int(row.updated)
            time.sleep(limits.batch_pause_ms / 1000)


def lint_ignore(rules: str, reason: str) -> None:
    """A ``-- squawk-ignore`` line before the next statement, in offline SQL only, with why."""
    if _offline():
        buffer = op.get_context().impl.output_buffer
        assert buffer is not None
        buffer.write(f"-- squawk-ignore {rules} -- {reason}\n")  # no blank line: it binds below


def set_not_null(table: str, column: str) -> None:
    """NOT NULL without a long ACCESS EXCLUSIVE scan (PostgreSQL 12+ uses the valid check)."""
    check = f"ck_{table}_{column}_not_null"
    outside = (
        "each step commits on its own so no lock is held across the VALIDATE scan; "
        "the step is idempotent (existence checked online), so a rerun carries on"
    )
    with op.get_context().autocommit_block():
        lint_ignore("prefer-robust-stmts", outside)
        add_check_not_valid(table, check, f"{column} IS NOT NULL")
        with long_running():
            lint_ignore("prefer-robust-stmts", outside)
            op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
        lint_ignore("prefer-robust-stmts", outside)
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
        lint_ignore(
            "ban-drop-constraint",
            "the temporary CHECK is dropped only after SET NOT NULL holds the same guarantee",
        )
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")
