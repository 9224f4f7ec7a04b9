"""Validate the decision latency CHECK added NOT VALID in 0003 (scan without blocking writes).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
Phase: expand
"""

from __future__ import annotations

from credit_assessment.store.migrations.online import validate_constraint

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    validate_constraint("assessments", "ck_assessments_decision_latency_nonnegative")


def downgrade() -> None:
    """Nothing to undo: a validated constraint is the same constraint."""
