"""Alembic environment: the connection is handed in by credit_assessment.store.schema.

Online, ``schema.upgrade`` has already set ``lock_timeout`` and ``statement_timeout`` on the
session; each migration runs in its own transaction and, once the ledger table exists, is
recorded in ``migration_history`` (revision, phase, when, how long) in that same transaction.
Offline (``--sql``, what squawk lints), the same session limits are emitted at the top.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from alembic import context

from credit_assessment.store.schema import MigrationPolicy, migration_chain
from credit_assessment.store.tables import metadata

connection = context.config.attributes.get("connection")
policy: MigrationPolicy = context.config.attributes.get("policy") or MigrationPolicy()
_mark = [time.monotonic()]


def record_migration(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    """on_version_apply: write the ledger row in the migration's own transaction."""
    now = time.monotonic()
    duration_ms = round((now - _mark[0]) * 1000)
    _mark[0] = now
    if ctx.as_sql or not step.is_upgrade:
        return
    conn = ctx.connection
    if conn.scalar(sa.text("SELECT to_regclass('migration_history')")) is None:
        return
    revision = step.up_revision_id
    phase = {m.revision: m.phase for m in migration_chain()}[revision]
    conn.execute(
        sa.text(
            "INSERT INTO migration_history (revision, phase, duration_ms) "
            "VALUES (:revision, :phase, :duration_ms) "
            "ON CONFLICT (revision) DO UPDATE SET applied_at = now(), "
            "duration_ms = EXCLUDED.duration_ms"
        ),
        {"revision": revision, "phase": phase, "duration_ms": duration_ms},
    )


def run_migrations_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        transaction_per_migration=True,
    )
    context.execute(f"SET lock_timeout = '{policy.lock_timeout_ms}ms'")
    context.execute(f"SET statement_timeout = '{policy.statement_timeout_ms}ms'")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    if connection is None:
        raise RuntimeError("migrations run through credit_assessment.store.schema.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        transaction_per_migration=True,
        on_version_apply=record_migration,
    )
    _mark[0] = time.monotonic()
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
