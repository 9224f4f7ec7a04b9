"""Stored assessments: the group-commit writer and the read queries.

The writer gathers the inserts of concurrent requests into one transaction: while one commit is in
flight the next batch fills, so a busy service commits many assessments per fsync and an idle one
commits each at once. A request is answered only after the commit that holds its row, so a 201
always means the row is durable.

Idempotency keys are claimed in the same transaction with ``INSERT .. ON CONFLICT DO NOTHING``: the
unique key makes PostgreSQL serialise concurrent claimants (across processes too), and the losers
are answered with the winner's assessment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from credit_assessment.store.database import Database
from credit_assessment.store.tables import assessments, idempotency_keys


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    id: UUID
    client_id: UUID
    loan_amount: Decimal
    loan_term: int
    decision: str
    score: int
    risk_grade: str
    reasons: list[dict[str, str]]
    engine: str
    model_version: str
    policy_version: str
    offer_amount: Decimal | None
    monthly_instalment: Decimal | None
    created_at: datetime
    input_snapshot: dict[str, Any]
    request_id: str | None = None

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AssessmentRecord:
        return cls(**{key: row[key] for key in _COLUMNS})


_COLUMNS = tuple(c.name for c in assessments.columns)


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    subject: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Stored:
    """The assessment was committed by this request."""

    record: AssessmentRecord


@dataclass(frozen=True, slots=True)
class Replayed:
    """The idempotency key was used before with the same request: here is the original."""

    record: AssessmentRecord


@dataclass(frozen=True, slots=True)
class KeyReused:
    """The idempotency key was used before with a different request."""


WriteOutcome = Stored | Replayed | KeyReused


@dataclass(slots=True)
class _Pending:
    record: AssessmentRecord
    claim: IdempotencyClaim | None
    done: asyncio.Future[WriteOutcome]


class WriterStopped(RuntimeError):
    """The writer is shutting down and takes no more work."""


class AssessmentWriter:
    """Commits assessments in batches; see the module docstring."""

    _loop: asyncio.AbstractEventLoop  # from start(); write() refuses work until then

    def __init__(
        self,
        database: Database,
        max_batch: int = 64,
        writers: int = 2,
        on_batch: Any = None,
    ) -> None:
        self._database = database
        self._max_batch = max_batch
        self._writers = writers
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = False
        self._on_batch = on_batch

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        self._tasks = [asyncio.create_task(self._drain()) for _ in range(self._writers)]

    async def stop(self) -> None:
        """Commit everything already queued, then stop."""
        self._accepting = False
        for _ in self._tasks:
            self._queue.put_nowait(None)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def write(
        self, record: AssessmentRecord, claim: IdempotencyClaim | None = None
    ) -> WriteOutcome:
        if not self._accepting:
            raise WriterStopped("the service is shutting down")
        done: asyncio.Future[WriteOutcome] = self._loop.create_future()
        self._queue.put_nowait(_Pending(record, claim, done))
        return await done

    async def _drain(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop_after = False
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop_after = True
                    break
                batch.append(item)
            await self._commit(batch)
            if stop_after:
                return

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes = await _commit_batch(self._database, batch)
        except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        if self._on_batch is not None:
            with contextlib.suppress(Exception):
                self._on_batch(len(batch))
        for item, outcome in zip(batch, outcomes, strict=True):
            if not item.done.done():
                item.done.set_result(outcome)


async def _commit_batch(database: Database, batch: Sequence[_Pending]) -> list[WriteOutcome]:
    claims: dict[tuple[str, str], int] = {}
    for index, item in enumerate(batch):
        if item.claim is not None:
            claims.setdefault((item.claim.subject, item.claim.key), index)
    async with database.direct() as conn:
        if not claims:  # the common case: one COPY, in autocommit its own transaction
            await _copy_rows(conn, [item.record for item in batch])
            return [Stored(item.record) for item in batch]
        async with conn.transaction():
            won = await _claim_keys(conn, [batch[i] for i in claims.values()])
            winners = [
                i
                for i, item in enumerate(batch)
                if item.claim is None
                or (
                    (item.claim.subject, item.claim.key) in won
                    and claims[(item.claim.subject, item.claim.key)] == i
                )
            ]
            if winners:
                await _copy_rows(conn, [batch[i].record for i in winners])
    outcomes: list[WriteOutcome | None] = [None] * len(batch)
    for i in winners:
        outcomes[i] = Stored(batch[i].record)
    losers = [i for i in range(len(batch)) if outcomes[i] is None]
    if losers:
        async with database.connect() as sa_conn:
            for i in losers:
                claim = batch[i].claim
                assert claim is not None
                outcomes[i] = await _resolve_claim(sa_conn, claim)
    return [o for o in outcomes if o is not None]


_CLAIM_SQL = (
    "INSERT INTO idempotency_keys (subject, key, request_hash, assessment_id) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::uuid[]) "
    "ON CONFLICT DO NOTHING RETURNING subject, key"
)


async def _claim_keys(conn: Any, claimants: Sequence[_Pending]) -> set[tuple[str, str]]:
    """Claim each key in one statement; the keys this batch won (the rest were taken)."""
    columns: tuple[list[Any], ...] = ([], [], [], [])
    for item in claimants:
        assert item.claim is not None
        for column, value in zip(
            columns,
            (item.claim.subject, item.claim.key, item.claim.request_hash, item.record.id),
            strict=True,
        ):
            column.append(value)
    cursor = await conn.execute(_CLAIM_SQL, columns)
    return {(subject, key) for subject, key in await cursor.fetchall()}


# The columns ``copy_line`` writes, in its order (a unit test holds them to the table's).
COPY_COLUMNS = (
    "id",
    "client_id",
    "loan_amount",
    "loan_term",
    "decision",
    "score",
    "risk_grade",
    "reasons",
    "engine",
    "model_version",
    "policy_version",
    "offer_amount",
    "monthly_instalment",
    "input_snapshot",
    "request_id",
    "created_at",
)
_COPY_SQL = f"COPY assessments ({', '.join(COPY_COLUMNS)}) FROM STDIN"


async def _copy_rows(conn: Any, records: Sequence[AssessmentRecord]) -> None:
    """Insert with one COPY: the cheapest bulk path. ``conn`` is a psycopg AsyncConnection."""
    data = b"".join(copy_line(record) for record in records)
    async with conn.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        await copy.write(data)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    """A string as a field of COPY's text format (backslash, tab and line breaks escaped)."""
    return value.translate(_ESCAPES)


def _json(value: Any) -> str:
    # orjson escapes control characters inside strings, so only backslashes need doubling
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def _money(value: Decimal | None) -> str:
    return "\\N" if value is None else str(value)


def copy_line(record: AssessmentRecord) -> bytes:
    """One row of ``COPY assessments (<columns>) FROM STDIN`` in text format, columns in order."""
    fields = (
        str(record.id),
        str(record.client_id),
        str(record.loan_amount),
        str(record.loan_term),
        _text(record.decision),
        str(record.score),
        _text(record.risk_grade),
        _json(record.reasons),
        _text(record.engine),
        _text(record.model_version),
        _text(record.policy_version),
        _money(record.offer_amount),
        _money(record.monthly_instalment),
        _json(record.input_snapshot),
        "\\N" if record.request_id is None else _text(record.request_id),
        record.created_at.isoformat(),
    )
    return ("\t".join(fields) + "\n").encode()


async def _resolve_claim(conn: AsyncConnection, claim: IdempotencyClaim) -> WriteOutcome:
    found = await find_claim(conn, claim.subject, claim.key)
    if found is None:  # the winner rolled back; extremely rare: ask the client to retry
        raise RuntimeError("idempotency key was released by a failed request; retry")
    request_hash, record = found
    if request_hash != claim.request_hash:
        return KeyReused()
    return Replayed(record)


async def find_claim(
    conn: AsyncConnection, subject: str, key: str
) -> tuple[str, AssessmentRecord] | None:
    """The request hash and assessment stored under an idempotency key, if any."""
    query = (
        sa.select(idempotency_keys.c.request_hash, assessments)
        .join(assessments, assessments.c.id == idempotency_keys.c.assessment_id)
        .where(idempotency_keys.c.subject == subject, idempotency_keys.c.key == key)
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return row["request_hash"], AssessmentRecord.from_row(row)


async def get_assessment(conn: AsyncConnection, assessment_id: UUID) -> AssessmentRecord | None:
    row = (
        (await conn.execute(sa.select(assessments).where(assessments.c.id == assessment_id)))
        .mappings()
        .first()
    )
    return AssessmentRecord.from_row(row) if row is not None else None


async def list_for_client(
    conn: AsyncConnection,
    client_id: UUID,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
) -> list[AssessmentRecord]:
    """A client's assessments, newest first, ``limit`` at a time (keyset pagination)."""
    query = sa.select(assessments).where(assessments.c.client_id == client_id)
    if before is not None:
        query = query.where(
            sa.tuple_(assessments.c.created_at, assessments.c.id) < sa.tuple_(*before)
        )
    query = query.order_by(assessments.c.created_at.desc(), assessments.c.id.desc()).limit(limit)
    return [AssessmentRecord.from_row(r) for r in (await conn.execute(query)).mappings()]
