"""PostgreSQL plumbing for golive: URLs, connections, client programs, scratch databases.

golive talks to the database over SQL (psycopg) and through the PostgreSQL client programs
(pg_dump, pg_restore) as subprocesses; it never imports the service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from golive.errors import DatabaseError, ToolNotFoundError


def libpq_url(url: str) -> str:
    """A libpq URL from any SQLAlchemy-style form (``postgresql+psycopg://`` etc.)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(("postgresql", "postgres")):
        raise DatabaseError("the database URL must be a postgresql:// URL")
    return "postgresql://" + rest


def with_database(url: str, database: str) -> str:
    parts = urlsplit(libpq_url(url))
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    name = urlsplit(libpq_url(url)).path.lstrip("/")
    if not name:
        raise DatabaseError("the database URL names no database")
    return name


def describe(url: str) -> str:
    """Where a URL points, without credentials: ``db on host`` (safe for logs and journals)."""
    parts = urlsplit(libpq_url(url))
    host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
    return f"{database_name(url)} on {host}" + (f":{parts.port}" if parts.port else "")


def connect(url: str, autocommit: bool = False) -> psycopg.Connection:
    conn = psycopg.connect(
        libpq_url(url), autocommit=autocommit, application_name="golive", connect_timeout=10
    )
    conn.execute("SET TimeZone = 'UTC'")
    if not autocommit:
        conn.commit()
    return conn


@dataclass(frozen=True, slots=True)
class PgTools:
    """Where the PostgreSQL client programs are: a given directory, PG_BIN_DIR, the embedded
    PostgreSQL's binaries (pgserver) or PATH, in that order."""

    bin_dir: Path | None = None

    def path(self, program: str) -> Path:
        for directory in self._candidates():
            candidate = directory / program
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        found = shutil.which(program)
        if found:
            return Path(found)
        raise ToolNotFoundError(f"{program} not found")

    def _candidates(self) -> Iterator[Path]:
        if self.bin_dir is not None:
            yield self.bin_dir
        if os.environ.get("PG_BIN_DIR"):
            yield Path(os.environ["PG_BIN_DIR"])
        embedded = embedded_bin_dir()
        if embedded is not None:
            yield embedded

    def run(
        self, program: str, args: Sequence[str], timeout_s: float, error: type[DatabaseError]
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.path(program)), *args]
        try:
            done = subprocess.run(  # noqa: S603 - argv built here, no shell
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise error(f"{program} did not finish within {timeout_s:.0f}s") from exc
        if done.returncode != 0:
            raise error(f"{program} failed (exit {done.returncode}): {tail(done.stderr)}")
        return done


def embedded_bin_dir() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "pginstall" / "bin"
    return directory if directory.is_dir() else None


def tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(no output)"


def create_database(server_url: str, name: str) -> str:
    """A new empty database ``name`` on the server of ``server_url`` (dropped first if present)."""
    with connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def scratch_database(server_url: str, name: str, keep: bool = False) -> Iterator[str]:
    """A database that exists for the duration of the block (unless ``keep``)."""
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        if not keep:
            drop_database(server_url, name)


def scalar(url: str, query: str, params: Mapping[str, object] | None = None) -> object:
    with connect(url) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def database_size(url: str) -> int:
    return int(str(scalar(url, "SELECT pg_database_size(current_database())")))


def revision(url: str) -> str | None:
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None
