"""The embedded PostgreSQL: a real PostgreSQL 16 from the ``pgserver`` package, in a data directory
under the project, used when DATABASE_URL is not set. Nothing but Python and pip is needed."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

DATABASE_NAME = "credit_assessment"
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_servers: dict[Path, Any] = {}


class EmbeddedDatabaseError(RuntimeError):
    pass


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded server under ``data_dir/pg``; return a URL to ``database``.

    The server is shared by every process that starts it from the same directory and stops when
    the last of them exits.
    """
    with warnings.catch_warnings():  # pgserver warns about XDG_RUNTIME_DIR on headless machines
        warnings.simplefilter("ignore")
        import pgserver  # imported here: only the embedded default needs it

    pg_dir = (data_dir / "pg").resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _servers.get(pg_dir) or pgserver.get_server(pg_dir, cleanup_mode="stop")
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pg_dir}: {exc}. "
            "Set DATABASE_URL to use another server."
        ) from exc
    _servers[pg_dir] = server
    if not _DATABASE_NAME.match(database):
        raise EmbeddedDatabaseError(f"invalid database name {database!r}")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    base: str = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    head, _, query = base.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}?{query}"
