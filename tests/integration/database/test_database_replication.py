"""A streaming replica started with pg_basebackup from the embedded binaries catches up after the
v2 migration; the lag is read from pg_stat_replication and pg_last_wal_replay_lsn()."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from golive.database.migrate import migrate
from golive.database.postgres import PgTools, database_name, revision, with_database
from golive.database.replication import replicas, wait_for_replay
from tests.conftest import PostgresServer, free_port
from tests.integration.database.conftest import EXPAND


def _as_postgres_owner() -> dict[str, Any]:
    """pgserver runs PostgreSQL as the system user 'pgserver' when we are root."""
    return {"user": "pgserver"} if os.geteuid() == 0 else {}


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("pgserver")
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        mode = path.stat().st_mode
        for parent in path.parents:  # the server user must traverse down to its directory
            parent.chmod(parent.stat().st_mode | 0o055)
        path.chmod(mode)


def _await_streaming(admin_url: str, timeout_s: float = 60.0) -> None:
    """A new standby reports 'catchup' until it has replayed the primary's WAL up to now; on a
    busy machine that can outlast pg_ctl's start, so wait for 'streaming' (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = replicas(admin_url)
        if status and status[0].state == "streaming":
            return
        time.sleep(0.1)
    raise AssertionError(f"the replica did not reach 'streaming' in {timeout_s:.0f} s: {status}")


@pytest.fixture
def replica(postgres: PostgresServer, tmp_path: Path) -> Iterator[str]:
    tools = PgTools()
    socket_dir = parse_qs(urlsplit(postgres.admin_url).query)["host"][0]
    base = tmp_path / "replica"
    base.mkdir()
    _own(base)
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    _own(sockets)
    run: dict[str, Any] = {"capture_output": True, "timeout": 120, **_as_postgres_owner()}
    subprocess.run(
        [
            str(tools.path("pg_basebackup")),
            "-h",
            socket_dir,
            "-U",
            "postgres",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        ],
        check=True,
        **run,
    )
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses='' -c hot_standby=on"
    subprocess.run(
        [
            str(tools.path("pg_ctl")),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        **run,
    )
    try:
        _await_streaming(postgres.admin_url)
        yield f"postgresql://postgres:@/postgres?host={sockets}&port={port}"
    finally:
        subprocess.run(
            [str(tools.path("pg_ctl")), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            **run,
        )


def test_replica_catches_up_after_the_migration(
    v1_url: str, postgres: PostgresServer, replica: str
):
    status = replicas(postgres.admin_url)
    assert status and status[0].state == "streaming"

    migrate(v1_url, EXPAND)
    caught_up = wait_for_replay(postgres.admin_url, replica, timeout_s=60)

    replica_db = with_database(replica, database_name(v1_url))
    assert revision(replica_db) == "0006"
    assert caught_up.waited_s < 60
    lag = replicas(postgres.admin_url)[0]
    assert lag.lag_bytes >= 0
    assert lag.to_dict()["state"] == "streaming"
