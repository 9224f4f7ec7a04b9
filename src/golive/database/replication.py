"""Streaming replicas: how far behind they are, and waiting until they have replayed a change.

Production uses the CloudNativePG ``Cluster`` in ``deploy/k8s/infra`` (streaming replicas and
scheduled backups); locally a replica is started with ``pg_basebackup -R`` (see docs/database.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from golive.database.postgres import connect
from golive.errors import DatabaseError


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    name: str
    state: str
    lag_bytes: int
    replay_lag_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "lag_bytes": self.lag_bytes,
            "replay_lag_s": self.replay_lag_s,
        }


def replicas(primary_url: str) -> list[ReplicaStatus]:
    """Every streaming replica of the primary (``pg_stat_replication``)."""
    with connect(primary_url) as conn:
        rows = conn.execute(
            """
            SELECT application_name, state,
                   coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint,
                   extract(epoch FROM replay_lag)::float8
            FROM pg_stat_replication ORDER BY application_name
            """
        ).fetchall()
    return [ReplicaStatus(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class CatchUp:
    target_lsn: str
    lag_bytes_at_start: int
    waited_s: float


def wait_for_replay(primary_url: str, replica_url: str, timeout_s: float = 60.0) -> CatchUp:
    """Wait until the replica has replayed everything the primary had written when called."""
    with connect(primary_url) as conn:
        target = str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])  # type: ignore[index]
    started = time.monotonic()
    first_lag: int | None = None
    with connect(replica_url, autocommit=True) as conn:
        while True:
            standby, behind = conn.execute(  # type: ignore[misc]
                "SELECT pg_is_in_recovery(), "
                "pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                (target,),
            ).fetchone()
            if not standby:
                raise DatabaseError("the replica URL points at a primary, not a standby")
            if behind is not None:
                first_lag = int(behind) if first_lag is None else first_lag
                if behind <= 0:
                    return CatchUp(target, max(first_lag, 0), time.monotonic() - started)
            if time.monotonic() - started > timeout_s:
                raise DatabaseError(
                    f"replica still {behind} bytes behind {target} after {timeout_s:.0f}s"
                )
            time.sleep(0.1)
