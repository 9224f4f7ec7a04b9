"""Running the service's migrations as the service ships them: a subprocess with DATABASE_URL.

The release's own command applies its migrations (``credit-assessment db upgrade --phase expand``
in the go-live; ``--phase contract`` on its own, after blue is retired). The service records each
migration in its ``migration_history`` ledger; this module reads the ledger back for the timing
of each migration, so golive never imports the service.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from golive.database.postgres import connect, describe, revision, tail
from golive.errors import DatabaseError, MigrationError

EXPAND_COMMAND = ("credit-assessment", "db", "upgrade", "--phase", "expand")
CONTRACT_COMMAND = ("credit-assessment", "db", "upgrade", "--phase", "contract")
MIGRATION_TIMEOUT_S = 3600
OUTPUT_KEPT = 4000  # characters of the command's output journaled with the run

# Runs the migration command (argv, environment, timeout): a local process by default; the
# kubernetes target runs the cluster's migration Job instead.
Execute = Callable[[Sequence[str], Mapping[str, str], float], "subprocess.CompletedProcess[str]"]


def run_locally(
    command: Sequence[str], env: Mapping[str, str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - argv from the plan, no shell
        list(command),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    revision: str
    phase: str
    applied_at: datetime
    duration_ms: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "phase": self.phase,
            "applied_at": self.applied_at.isoformat(),
            "duration_ms": self.duration_ms,
        }


@dataclass(frozen=True, slots=True)
class MigrationRun:
    database: str
    revision_before: str | None
    revision_after: str | None
    applied: list[AppliedMigration]
    duration_s: float
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "revision_before": self.revision_before,
            "revision_after": self.revision_after,
            "applied": [m.to_dict() for m in self.applied],
            "duration_s": round(self.duration_s, 3),
            # What the command printed (the migration Job's pod logs on Kubernetes), its end.
            "output": self.output[-OUTPUT_KEPT:],
        }


def ledger(url: str, since: datetime | None = None) -> list[AppliedMigration]:
    """The migration ledger of the database (empty before migration 0002 created it)."""
    with connect(url) as conn:
        if conn.execute("SELECT to_regclass('migration_history')").fetchone() == (None,):
            return []
        rows = conn.execute(
            "SELECT revision, phase, applied_at, duration_ms FROM migration_history "
            "WHERE %(since)s::timestamptz IS NULL OR applied_at >= %(since)s "
            "ORDER BY applied_at, revision",
            {"since": since},
        ).fetchall()
    return [AppliedMigration(*row) for row in rows]


def migrate(
    url: str,
    command: Sequence[str] = EXPAND_COMMAND,
    env: Mapping[str, str] | None = None,
    timeout_s: float = MIGRATION_TIMEOUT_S,
    error: type[DatabaseError] = MigrationError,
    execute: Execute = run_locally,
) -> MigrationRun:
    """Run the migration command against ``url``; raise ``error`` if it fails."""
    before = revision(url)
    with connect(url) as conn:
        started_at = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    started = time.monotonic()
    try:
        done = execute(command, {**(env or {}), "DATABASE_URL": url}, timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise error(
            f"migration of {describe(url)} did not finish within {timeout_s:.0f}s "
            f"(at revision {revision(url)})"
        ) from exc
    except OSError as exc:
        raise error(f"cannot run the migration command {command[0]!r}: {exc}") from exc
    after = revision(url)
    if done.returncode != 0:
        raise error(
            f"migration of {describe(url)} failed (exit {done.returncode}); the database stays at "
            f"revision {after} (was {before}): {tail(done.stderr or done.stdout)}"
        )
    return MigrationRun(
        database=describe(url),
        revision_before=before,
        revision_after=after,
        applied=[m for m in ledger(url, since=started_at) if m.revision != before],
        duration_s=time.monotonic() - started,
        output=done.stdout,
    )
