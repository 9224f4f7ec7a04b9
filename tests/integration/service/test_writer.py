"""The group-commit writer on a real PostgreSQL: rows come back exactly, and a lost connection
costs only the batch that was on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from credit_assessment.seed import SMOKE_CLIENT_ID
from credit_assessment.store.assessments import (
    AssessmentRecord,
    AssessmentWriter,
    IdempotencyClaim,
    KeyReused,
    Replayed,
    Stored,
    get_assessment,
)
from credit_assessment.store.database import Database
from credit_assessment.store.schema import sync_url

AWKWARD = 'back\\slash, tab\t, line\nbreak, return\r, "quotes", é, ☃, \\N, \\.'


def _record(**overrides: object) -> AssessmentRecord:
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "client_id": SMOKE_CLIENT_ID,
        "loan_amount": Decimal("50000.00"),
        "loan_term": 12,
        "decision": "APPROVED",
        "score": 640,
        "risk_grade": "B1",
        "reasons": [{"code": "OK", "description": AWKWARD}],
        "engine": "new",
        "model_version": "scorecard-" + AWKWARD[:20],
        "policy_version": "policy-1",
        "offer_amount": None,
        "monthly_instalment": Decimal("4321.09"),
        "created_at": datetime(2026, 11, 29, 5, 6, 7, 891011, tzinfo=UTC),
        "input_snapshot": {"nested": {"text": AWKWARD, "list": [1, 2.5, None, True]}},
        "request_id": "req\\id\t1",
    }
    values.update(overrides)
    return AssessmentRecord(**values)  # type: ignore[arg-type]


async def test_stored_rows_read_back_exactly_even_with_escapes(database_url: str) -> None:
    database = Database(database_url)
    writer = AssessmentWriter(database, writers=1)
    await writer.start()
    try:
        records = [_record(), _record(request_id=None, offer_amount=Decimal("1000.50"))]
        outcomes = [await writer.write(r) for r in records]
        async with database.connect() as conn:
            stored = [await get_assessment(conn, r.id) for r in records]
    finally:
        await writer.stop()
        await database.dispose()
    assert outcomes == [Stored(r) for r in records]
    assert stored == records


async def test_a_claimed_key_replays_and_a_reused_key_is_refused(database_url: str) -> None:
    database = Database(database_url)
    writer = AssessmentWriter(database, writers=1)
    await writer.start()
    try:
        first = _record()
        stored = await writer.write(first, IdempotencyClaim("subject", "key-1", "hash-a"))
        replay = await writer.write(_record(), IdempotencyClaim("subject", "key-1", "hash-a"))
        reused = await writer.write(_record(), IdempotencyClaim("subject", "key-1", "hash-b"))
    finally:
        await writer.stop()
        await database.dispose()
    assert stored == Stored(first)
    assert replay == Replayed(first)
    assert reused == KeyReused()
    assert _count(database_url) == 1


async def test_a_dropped_connection_fails_its_batch_and_the_next_one_reconnects(
    database_url: str,
) -> None:
    database = Database(database_url)
    writer = AssessmentWriter(database, writers=1)
    await writer.start()
    try:
        await writer.write(_record())
        _terminate_service_connections(database_url)
        with pytest.raises(psycopg.OperationalError):
            await writer.write(_record())
        after = _record()
        assert await writer.write(after) == Stored(after)
    finally:
        await writer.stop()
        await database.dispose()
    assert _count(database_url) == 2  # the failed write stored nothing and was answered so


async def test_a_connection_dropped_while_idle_is_replaced_before_the_next_batch(
    database_url: str,
) -> None:
    database = Database(database_url, idle_check_s=0)  # every reuse counts as after a quiet spell
    writer = AssessmentWriter(database, writers=1)
    await writer.start()
    try:
        await writer.write(_record())
        _terminate_service_connections(database_url)  # a restart or an idle timeout meanwhile
        after = _record()
        assert await writer.write(after) == Stored(after)  # no failed batch this time
    finally:
        await writer.stop()
        await database.dispose()
    assert _count(database_url) == 2


def _terminate_service_connections(url: str) -> None:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            killed = conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'credit-assessment' AND pid <> pg_backend_pid()"
                )
            )
        assert killed
    finally:
        engine.dispose()


def _count(url: str) -> int:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM assessments")) or 0)
    finally:
        engine.dispose()


def test_the_copy_columns_are_the_tables_columns() -> None:
    from credit_assessment.store.assessments import COPY_COLUMNS
    from credit_assessment.store.tables import assessments

    assert sorted(COPY_COLUMNS) == sorted(c.name for c in assessments.columns)
    assert len(set(COPY_COLUMNS)) == len(COPY_COLUMNS)
