"""The apps our service is measured against, served the same way (uvicorn, uvloop, httptools).

- ``floor``: a bare ASGI app answering a constant JSON document: the most any Python service on
  this server stack can do.
- ``peer``: the conventional way to write the endpoint: FastAPI validates the same body with
  pydantic and commits one insert per request through SQLAlchemy's async pool.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import create_async_engine

_CONSTANT = b'{"id":"00000000-0000-0000-0000-000000000000","decision":"APPROVED"}'


async def floor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_CONSTANT)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _CONSTANT})


metadata = sa.MetaData()
peer_assessments = sa.Table(
    "bench_peer_assessments",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False),
    sa.Column("loan_amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("loan_term", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class PeerRequest(BaseModel):
    clientId: uuid.UUID
    loanAmount: float = Field(gt=0, le=1_000_000)
    loanTerm: int = Field(ge=3, le=72)


def peer() -> FastAPI:
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(
        url, pool_size=int(os.environ.get("DB_POOL_SIZE", "8")), max_overflow=0
    )
    app = FastAPI()

    @app.post("/api/v1/assessment", status_code=201)
    async def create(body: PeerRequest) -> dict[str, Any]:
        row = {
            "id": uuid.uuid4(),
            "client_id": body.clientId,
            "loan_amount": body.loanAmount,
            "loan_term": body.loanTerm,
            "decision": "APPROVED",
            "payload": body.model_dump(mode="json"),
            "created_at": datetime.now(UTC),
        }
        async with engine.begin() as conn:
            await conn.execute(peer_assessments.insert(), row)
        return {"id": str(row["id"]), "decision": "APPROVED", **row["payload"]}

    return app


def create_peer_table(database_url: str) -> None:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    metadata.create_all(engine)
    engine.dispose()
