"""The async connection pool the service runs on, and the writers' own connections."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from credit_assessment.store.schema import sync_url

IDLE_CHECK_S = 30.0  # a writer connection idle this long is checked before its next batch


@dataclass(frozen=True, slots=True)
class PoolUsage:
    in_use: int
    idle: int
    capacity: int


class Database:
    """A pool of connections to PostgreSQL; every query of the service goes through it."""

    def __init__(
        self,
        url: str,
        pool_size: int = 8,
        statement_timeout_ms: int = 5000,
        idle_check_s: float = IDLE_CHECK_S,
    ) -> None:
        self.pool_size = pool_size
        self._conninfo = "postgresql://" + sync_url(url).split("://", 1)[1]
        self._options = f"-c statement_timeout={statement_timeout_ms}"
        self._idle_check_s = idle_check_s
        self._direct: list[tuple[psycopg.AsyncConnection[Any], float]] = []  # and when last used
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

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A psycopg connection of its own, outside the pool, in autocommit.

        Each statement on it is its own transaction unless wrapped in ``conn.transaction()``. It is
        for the group-commit writers, whose every batch is one statement or one short transaction:
        they skip the pool's bookkeeping. A connection is kept for the next batch unless the
        batch failed, when it is closed (a failure may have broken it). One left idle for longer
        than ``idle_check_s`` is checked before use and replaced if the server dropped it, so a
        quiet spell (a restart, an idle timeout) does not fail the next batch.
        """
        conn = await self._take_direct()
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self._direct.append((conn, time.monotonic()))

    async def _take_direct(self) -> psycopg.AsyncConnection[Any]:
        while self._direct:
            conn, used_at = self._direct.pop()
            if time.monotonic() - used_at < self._idle_check_s:
                return conn
            try:
                await conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                with contextlib.suppress(Exception):
                    await conn.close()
        return await self._connect_direct()

    async def _connect_direct(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            options=self._options,
            application_name="credit-assessment",
        )

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
        direct, self._direct = self._direct, []
        for conn, _ in direct:
            with contextlib.suppress(Exception):
                await conn.close()
        await self.engine.dispose()
