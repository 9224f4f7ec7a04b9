"""The async connection pool the service runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from credit_assessment.store.schema import sync_url


@dataclass(frozen=True, slots=True)
class PoolUsage:
    in_use: int
    idle: int
    capacity: int


class Database:
    """A pool of connections to PostgreSQL; every query of the service goes through it."""

    def __init__(self, url: str, pool_size: int = 8, statement_timeout_ms: int = 5000) -> None:
        self.pool_size = pool_size
        self.engine: AsyncEngine = create_async_engine(
            sync_url(url),
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=10,
            pool_recycle=1800,
            connect_args={
                "options": f"-c statement_timeout={statement_timeout_ms}",
                "application_name": "credit-assessment",
            },
        )

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self.engine.connect() as conn:
            yield conn

    async def revision(self) -> str | None:
        """The schema revision the database is at (also proves it is reachable)."""
        async with self.connect() as conn:
            exists = await conn.scalar(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            if not exists:
                return None
            return await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))

    def pool_usage(self) -> PoolUsage:
        pool = self.engine.pool
        in_use = int(getattr(pool, "checkedout", lambda: 0)())
        idle = int(getattr(pool, "checkedin", lambda: 0)())
        return PoolUsage(in_use=in_use, idle=idle, capacity=self.pool_size)

    async def dispose(self) -> None:
        await self.engine.dispose()
