"""Index assessments by decision and time (decision-mix reports and monitoring), built CONCURRENTLY.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
Phase: expand
"""

from __future__ import annotations

from credit_assessment.store.migrations.online import (
    create_index_concurrently,
    drop_index_concurrently,
)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_index_concurrently(
        "ix_assessments_decision_created", "assessments", "decision, created_at"
    )


def downgrade() -> None:
    drop_index_concurrently("ix_assessments_decision_created")
