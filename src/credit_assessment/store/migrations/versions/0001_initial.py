"""Initial schema: clients, assessments, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
Phase: expand
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 2)


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("full_name", sa.Text, nullable=False),
        sa.Column("monthly_income", MONEY),
        sa.Column("monthly_expenses", MONEY),
        sa.Column("monthly_debt_payments", MONEY, nullable=False, server_default="0"),
        sa.Column("outstanding_debt", MONEY),
        sa.Column("assets", MONEY),
        sa.Column("employment", sa.String(16)),
        sa.Column("seniority_years", sa.Integer),
        sa.Column("home", sa.String(16)),
        sa.Column("purchase_price", MONEY),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "assessments",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("loan_amount", MONEY, nullable=False),
        sa.Column("loan_term", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("risk_grade", sa.String(2), nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("engine", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("offer_amount", MONEY),
        sa.Column("monthly_instalment", MONEY),
        sa.Column("input_snapshot", JSONB, nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("loan_amount > 0", name="ck_assessments_loan_amount_positive"),
        sa.CheckConstraint("loan_term > 0", name="ck_assessments_loan_term_positive"),
        sa.CheckConstraint(
            "decision IN ('APPROVED', 'DECLINED', 'REFER', 'COUNTER_OFFER')",
            name="ck_assessments_decision",
        ),
    )
    op.create_index(
        "ix_assessments_client_created", "assessments", ["client_id", "created_at", "id"]
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "assessment_id",
            UUID(as_uuid=True),
            sa.ForeignKey("assessments.id", deferrable=True, initially="DEFERRED"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("assessments")
    op.drop_table("clients")
