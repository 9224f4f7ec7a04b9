"""Assessment insights: score breakdown, decision latency and reason codes on each assessment.

New nullable columns (no default, no table rewrite), a CHECK added NOT VALID (validated in 0005),
and a trigger that derives ``reason_codes`` from ``reasons`` on insert, so rows written by the
previous release (which does not know the column) are filled too. Backward compatible: the
previous release lists its columns explicitly in every INSERT and SELECT.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
Phase: expand
"""

from __future__ import annotations

from alembic import op

from credit_assessment.store.migrations.online import add_check_not_valid

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The codes of a reasons array ([{"code": .., "description": ..}, ..]); '{}' for anything else.
REASON_CODES = (
    "CASE WHEN jsonb_typeof({reasons}) = 'array' THEN ARRAY(SELECT r ->> 'code' "
    "FROM jsonb_array_elements({reasons}) AS r WHERE r ? 'code') ELSE '{{}}'::text[] END"
)


def upgrade() -> None:
    op.execute("ALTER TABLE assessments ADD COLUMN IF NOT EXISTS score_breakdown jsonb")
    op.execute("ALTER TABLE assessments ADD COLUMN IF NOT EXISTS decision_latency_ms bigint")
    op.execute("ALTER TABLE assessments ADD COLUMN IF NOT EXISTS reason_codes text[]")
    add_check_not_valid(
        "assessments",
        "ck_assessments_decision_latency_nonnegative",
        "decision_latency_ms >= 0",
    )
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION assessments_fill_reason_codes() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.reason_codes IS NULL THEN
                NEW.reason_codes := {REASON_CODES.format(reasons="NEW.reasons")};
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("DROP TRIGGER IF EXISTS trg_assessments_reason_codes ON assessments")
    op.execute(
        "CREATE TRIGGER trg_assessments_reason_codes BEFORE INSERT ON assessments "
        "FOR EACH ROW EXECUTE FUNCTION assessments_fill_reason_codes()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_assessments_reason_codes ON assessments")
    op.execute("DROP FUNCTION IF EXISTS assessments_fill_reason_codes()")
    op.execute(
        "ALTER TABLE assessments DROP CONSTRAINT IF EXISTS "
        "ck_assessments_decision_latency_nonnegative"
    )
    for column in ("reason_codes", "decision_latency_ms", "score_breakdown"):
        op.execute(f"ALTER TABLE assessments DROP COLUMN IF EXISTS {column}")
