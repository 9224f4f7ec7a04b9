"""Make reason codes required: every assessment carries them once the backfill is complete.

Contract: it narrows what the schema accepts, so it runs only after the go-live has retired the
previous release and the backfill (0006) has finished; the NOT NULL is proved by a validated
CHECK first, so SET NOT NULL does not scan the table under an ACCESS EXCLUSIVE lock.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
Phase: contract
"""

from __future__ import annotations

from alembic import op

from credit_assessment.store.migrations.online import set_not_null

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    set_not_null("assessments", "reason_codes")


def downgrade() -> None:
    op.execute("ALTER TABLE assessments ALTER COLUMN reason_codes DROP NOT NULL")
