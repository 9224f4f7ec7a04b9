"""The embedded PostgreSQL: a real PostgreSQL 16 from the ``pgserver`` package, in a data directory
under the project, used when DATABASE_URL is not set. Nothing but Python and pip is needed.

The server is shared by every process that starts it from the same directory, and stops when the
last of them ends, *however* it ends. pgserver stops it from an exit hook of the last process to
leave, but exit hooks do not run when a process is killed (SIGKILL, a crash, an OOM kill), and a
dead process's id would stay in pgserver's list of users forever, so that no later process ever
stops it either. Two things close that gap:

- ``start`` drops the ids of processes that no longer exist from that list before joining;
- ``start`` also makes sure one *guard* runs per data directory: a small detached process
  (``python -m credit_assessment.store.embedded --guard DIR``) that looks every half second and,
  once no process in the list is alive, stops the server (PostgreSQL's fast shutdown) and exits.
  It holds a lock file, so a second guard for the same directory exits at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DATABASE_NAME = "credit_assessment"
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
HANDLES_FILE = ".handle_pids.json"  # pgserver's list of the processes using the server
GUARD_POLL_S = 0.5
STOP_WAIT_S = 30.0

_servers: dict[Path, Any] = {}


class EmbeddedDatabaseError(RuntimeError):
    pass


def _pgserver() -> Any:
    with warnings.catch_warnings():  # pgserver warns about XDG_RUNTIME_DIR on headless machines
        warnings.simplefilter("ignore")
        import pgserver  # imported here: only the embedded default needs it
        import pgserver.postgres_server
    return pgserver


def start(data_dir: Path, database: str = DATABASE_NAME) -> str:
    """Start (or join) the embedded server under ``data_dir/pg``; return a URL to ``database``.

    The server is shared by every process that starts it from the same directory and stops when
    the last of them ends (module docstring).
    """
    if not _DATABASE_NAME.match(database):
        raise EmbeddedDatabaseError(f"invalid database name {database!r}")
    pgserver = _pgserver()
    pg_dir = (data_dir / "pg").resolve()
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = _servers.get(pg_dir)
            if server is None:
                with _server_lock():
                    drop_dead_users(pg_dir)
                server = pgserver.get_server(pg_dir, cleanup_mode="stop")
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pg_dir}: {exc}. "
            "Set DATABASE_URL to use another server."
        ) from exc
    _servers[pg_dir] = server
    start_guard(pg_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    base: str = server.get_uri()  # postgresql://postgres:@/postgres?host=/path
    head, _, query = base.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}?{query}"


@contextlib.contextmanager
def _server_lock() -> Iterator[None]:
    """pgserver's own inter-process lock, held while it starts, joins or stops a server."""
    with _pgserver().postgres_server.PostgresServer._lock:
        yield


def _alive(pid: int) -> bool:
    import psutil  # a dependency of pgserver

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def drop_dead_users(pg_dir: Path) -> list[int]:
    """Remove the ids of ended processes from the server's list of users; the live ones."""
    path = pg_dir / HANDLES_FILE
    try:
        listed = [int(p) for p in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return []
    alive = [pid for pid in listed if _alive(pid)]
    if alive != listed:
        path.write_text(json.dumps(alive), encoding="utf-8")
    return alive


def postmaster_pid(pg_dir: Path) -> int | None:
    """The running postmaster's pid from ``postmaster.pid``, or None when none runs."""
    try:
        pid = int((pg_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def stop_server(pg_dir: Path, wait_s: float = STOP_WAIT_S) -> bool:
    """PostgreSQL's fast shutdown (SIGINT to the postmaster); True when one was running."""
    pid = postmaster_pid(pg_dir)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + wait_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _guard_lock_path(pg_dir: Path) -> Path:
    return pg_dir.parent / f".{pg_dir.name}.guard.lock"


def start_guard(pg_dir: Path) -> None:
    """Make sure a guard watches this data directory (a second one exits at once)."""
    with contextlib.suppress(OSError):
        lock = _guard_lock_path(pg_dir).open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a guard holds it
        finally:
            lock.close()
        subprocess.Popen(  # noqa: S603 - our own module, a fixed argv
            [sys.executable, "-m", "credit_assessment.store.embedded", "--guard", str(pg_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C is not for it
            close_fds=True,
        )


def guard(pg_dir: Path, poll_s: float = GUARD_POLL_S) -> int:
    """Stop the server once no process that uses it is alive; then exit."""
    with _guard_lock_path(pg_dir).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another guard watches this directory
        while True:
            time.sleep(poll_s)
            with _server_lock():
                if drop_dead_users(pg_dir):
                    continue
                stop_server(pg_dir)
                # Unlocked before pgserver's lock is: a process that starts the server again
                # right after this must find no guard, and start its own.
                fcntl.flock(lock, fcntl.LOCK_UN)
                return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--guard":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise SystemExit(guard(Path(sys.argv[2])))
    print("usage: python -m credit_assessment.store.embedded --guard PG_DIR", file=sys.stderr)
    raise SystemExit(2)
