"""Migration ledger: which migration ran, in which phase, when and for how long.

Written by the migration environment in each migration's own transaction; read by the go-live
tool (time of each migration on the clone) and by readiness (is a newer schema expand-only?).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
Phase: expand
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE IF NOT EXISTS migration_history (
            revision text PRIMARY KEY,
            phase text NOT NULL CHECK (phase IN ('expand', 'contract')),
            applied_at timestamptz NOT NULL DEFAULT now(),
            duration_ms bigint
        )
        """
    )
    op.execute(
        "INSERT INTO migration_history (revision, phase) VALUES ('0001', 'expand') "
        "ON CONFLICT (revision) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS migration_history")
