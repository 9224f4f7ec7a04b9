"""Restore a verified backup over a database, on explicit command only.

Data-loss window: everything written after the backup's snapshot (``taken_at``) is absent from the
restored database. It is not destroyed: the database being replaced is renamed, not dropped, to
``<name>_replaced_<timestamp>``, so those writes can still be read (and re-entered) afterwards.

Steps: check the file's SHA-256 against its manifest; ask for confirmation; restore into a new
database ``<name>_restore_<timestamp>`` and compare it table by table with the manifest; only then
close connections to the target, rename it away and rename the restored database into its place.
Any failure before the swap leaves the current database untouched. Needs a role that may create,
rename and drop databases, and a maintenance database (``postgres``) to work from.

Manual equivalent (psql on the ``postgres`` database)::

    createdb credit_assessment_restore && pg_restore --no-owner --exit-on-error \\
        -d credit_assessment_restore <backup.dump>
    ALTER DATABASE credit_assessment ALLOW_CONNECTIONS false;
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'credit_assessment';
    ALTER DATABASE credit_assessment RENAME TO credit_assessment_replaced;
    ALTER DATABASE credit_assessment_restore RENAME TO credit_assessment;
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

from golive.database.backup import (
    BackupResult,
    check_integrity_of_file,
    load_backup,
    restore_into,
)
from golive.database.fingerprint import differences, fingerprint
from golive.database.postgres import (
    PgTools,
    connect,
    create_database,
    database_name,
    drop_database,
    with_database,
)
from golive.errors import RestoreError, RestoreNotConfirmed


@dataclass(frozen=True, slots=True)
class RestoreResult:
    database: str
    backup: Path
    backup_taken_at: datetime
    replaced_by: str  # where the database that was replaced now lives
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "backup": str(self.backup),
            "backup_taken_at": self.backup_taken_at.isoformat(),
            "previous_database_kept_as": self.replaced_by,
            "duration_s": round(self.duration_s, 3),
        }


def confirmation_prompt(backup: BackupResult, database: str, keep_as: str) -> str:
    return (
        f"Restore database {database!r} from {backup.path.name} taken at "
        f"{backup.taken_at.isoformat()}?\n"
        f"Everything written to {database!r} after that time will be absent from the restored "
        f"database (kept readable in {keep_as!r}). Connections to {database!r} are closed.\n"
        "Type 'yes' to restore: "
    )


def restore(
    backup_path: Path,
    url: str,
    confirm: Callable[[str], bool],
    tools: PgTools | None = None,
    maintenance_db: str = "postgres",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RestoreResult:
    """Replace the database at ``url`` with the backup, if ``confirm(prompt)`` says yes."""
    tools = tools or PgTools()
    backup = load_backup(Path(backup_path))
    check_integrity_of_file(backup)
    target = database_name(url)
    stamp = now().strftime("%Y%m%d%H%M%S")
    staging, keep_as = f"{target[:40]}_restore_{stamp}", f"{target[:40]}_replaced_{stamp}"
    if not confirm(confirmation_prompt(backup, target, keep_as)):
        raise RestoreNotConfirmed(f"restore of {target!r} not confirmed")
    started = time.monotonic()
    admin_url = with_database(url, maintenance_db)
    staging_url = create_database(admin_url, staging)
    try:
        restore_into(backup.path, staging_url, tools, RestoreError)
        with connect(staging_url) as conn:
            restored = fingerprint(conn, {n: t.columns for n, t in backup.source.tables.items()})
        problems = differences(backup.source, restored)
        if problems:
            raise RestoreError("the restored copy differs from the backup: " + "; ".join(problems))
        _swap(admin_url, target, staging, keep_as)
    except Exception:
        drop_database(admin_url, staging)
        raise
    return RestoreResult(target, backup.path, backup.taken_at, keep_as, time.monotonic() - started)


def _swap(admin_url: str, target: str, staging: str, keep_as: str) -> None:
    ident = sql.Identifier
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(target)))
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (target,),
            )
            _rename_when_idle(conn, target, keep_as)
        except Exception:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(target)))
            raise
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(staging), ident(target))
        )
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(keep_as)))


def _rename_when_idle(conn: Any, target: str, keep_as: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(target), sql.Identifier(keep_as)
                )
            )
            return
        except Exception as exc:  # still in use: terminated backends take a moment to exit
            if time.monotonic() > deadline:
                raise RestoreError(f"database {target!r} is still in use: {exc}") from exc
            time.sleep(0.1)
