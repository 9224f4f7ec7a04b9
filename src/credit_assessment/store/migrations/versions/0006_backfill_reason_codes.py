"""Backfill reason codes of assessments stored before 0003, in batches with a pause between them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
Phase: expand
"""

from __future__ import annotations

from credit_assessment.store.migrations.online import backfill_in_batches

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The same expression as the trigger of 0003 (migrations are frozen: each keeps its own copy).
REASON_CODES = (
    "CASE WHEN jsonb_typeof(t.reasons) = 'array' THEN ARRAY(SELECT r ->> 'code' "
    "FROM jsonb_array_elements(t.reasons) AS r WHERE r ? 'code') ELSE '{}'::text[] END"
)


def upgrade() -> None:
    backfill_in_batches(
        "assessments",
        assignments=f"reason_codes = {REASON_CODES}",
        condition="t.reason_codes IS NULL",
    )


def downgrade() -> None:
    """Nothing to undo: the column is dropped by 0003's downgrade."""
