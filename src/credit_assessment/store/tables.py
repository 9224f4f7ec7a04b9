"""Table definitions. The migrations under ``migrations/versions`` are the source of truth for
the live schema; these mirror them for queries (a test checks the two agree)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = sa.MetaData()

MONEY = sa.Numeric(14, 2)
DECISIONS = ("APPROVED", "DECLINED", "REFER", "COUNTER_OFFER")

clients = sa.Table(
    "clients",
    metadata,
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

assessments = sa.Table(
    "assessments",
    metadata,
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
    sa.Index("ix_assessments_client_created", "client_id", "created_at", "id"),
    sa.Index("ix_assessments_decision_created", "decision", "created_at"),  # 0004
)

# Columns added to ``assessments`` by migration 0003 (expand). They are a separate view of the
# table until the service writes them: the writer COPYs every column of ``assessments`` and maps
# each to a field of AssessmentRecord. ``reason_codes`` is filled by a trigger meanwhile (0003),
# backfilled for older rows (0006) and NOT NULL after the contract migration 0007.
assessment_insights = sa.Table(
    "assessments",
    sa.MetaData(),
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("score_breakdown", JSONB),
    sa.Column("decision_latency_ms", sa.BigInteger),
    sa.Column("reason_codes", ARRAY(sa.Text), nullable=False),
    sa.CheckConstraint(
        "decision_latency_ms >= 0", name="ck_assessments_decision_latency_nonnegative"
    ),
)

# The migration ledger (0002): written by the migration environment, read by golive.
migration_history = sa.Table(
    "migration_history",
    metadata,
    sa.Column("revision", sa.Text, primary_key=True),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column(
        "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("duration_ms", sa.BigInteger),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
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
