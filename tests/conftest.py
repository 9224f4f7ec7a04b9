"""Shared fixtures: one real PostgreSQL for the whole session, databases cloned from a migrated
template, settings, tokens, and live servers started as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from credit_assessment.settings import Settings
from credit_assessment.store import embedded, schema
from credit_assessment.store.schema import sync_url

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TEMPLATE_DB = "ca_template"
TEST_JWT_SECRET = "test-signing-secret-" + "0123456789abcdef" * 4


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-skew-s",
        type=float,
        default=0.0,
        help="move this process's wall clock forward by this many seconds once collection is "
        "done, as a slow machine would: a value computed at collection time then looks that old "
        "(tests/integration/service/test_clock_skew.py)",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    skew = session.config.getoption("--clock-skew-s")
    if skew:
        import time_machine

        traveller = time_machine.travel(time.time() + skew, tick=True)
        traveller.start()
        session.config.add_cleanup(traveller.stop)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_database(url: str, name: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


class PostgresServer:
    """A real PostgreSQL: clones of a migrated template database on demand."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._admin = sa.create_engine(sync_url(admin_url), isolation_level="AUTOCOMMIT")

    def url(self, database: str) -> str:
        return _with_database(self.admin_url, database)

    def create(self, name: str, template: str | None = TEMPLATE_DB) -> str:
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
        return self.url(name)

    def fresh(self, prefix: str = "t") -> str:
        return self.create(f"{prefix}_{uuid.uuid4().hex[:12]}")

    def close(self) -> None:
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    given = os.environ.get("TEST_DATABASE_URL")
    admin_url = given or embedded.start(tmp_path_factory.mktemp("pgdata"), database="postgres")
    server = PostgresServer(admin_url)
    template_url = server.create(TEMPLATE_DB, template=None)
    schema.upgrade(template_url)
    seed_template(template_url)
    yield server
    server.close()


def seed_template(url: str) -> None:
    from credit_assessment.seed import client_rows
    from credit_assessment.store.clients import upsert_clients

    engine = sa.create_engine(sync_url(url))
    with engine.begin() as conn:
        upsert_clients(conn, client_rows(200))
    engine.dispose()


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A database of its own for this test, migrated and seeded."""
    return postgres.fresh()


def make_settings(tmp_path: Path, database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "app_env": "test",
        "data_dir": tmp_path,
        "jwt_secret": SecretStr(TEST_JWT_SECRET),
        "database_url": SecretStr(database_url) if database_url else None,
        "log_requests": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def token(tmp_path: Path) -> str:
    from credit_assessment.api.auth import mint_token

    return mint_token(make_settings(tmp_path, None), "test-suite", 3600)


class LiveServer:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


def start_server(
    tmp_path: Path,
    env_overrides: dict[str, str],
    workers: int = 1,
    ready_timeout_s: float = 60,
) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATA_DIR": str(tmp_path / "data"),
        "JWT_SECRET": TEST_JWT_SECRET,
        "SHUTDOWN_DRAIN_S": "1",
        **env_overrides,
    }
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                str(VENV_BIN / "credit-assessment"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server not ready within {ready_timeout_s}s:\n{server.log()[-3000:]}")


@pytest.fixture
def live_server(tmp_path: Path, database_url: str) -> Iterator[LiveServer]:
    server = start_server(tmp_path, {"DATABASE_URL": database_url}, workers=2)
    yield server
    server.stop()
