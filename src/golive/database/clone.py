"""The migration rehearsed on a clone of production, before production is touched.

The verified backup is restored into a clone database; the release's migration command runs
there; the time of each migration comes from the ledger; then the same verification as after the
real migration (revision, schema objects, validity, integrity, previous release's queries). Any
failure raises ``CloneTestError``: the go-live stops with production untouched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from golive.database.backup import BackupResult, check_integrity_of_file, restore_into
from golive.database.migrate import EXPAND_COMMAND, MigrationRun, migrate
from golive.database.postgres import PgTools, scratch_database
from golive.database.verify import (
    PREVIOUS_RELEASE_QUERIES,
    RELEASE_2_EXPECTATION,
    SchemaExpectation,
    VerifyReport,
    baseline,
    verify,
)
from golive.errors import CloneTestError, DatabaseError


@dataclass(frozen=True, slots=True)
class CloneReport:
    clone: str
    restore_s: float
    migration: MigrationRun
    verification: VerifyReport
    duration_s: float

    @property
    def revision(self) -> str | None:
        """The revision production should reach with the same command."""
        return self.migration.revision_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "clone": self.clone,
            "restore_s": round(self.restore_s, 3),
            "migration": self.migration.to_dict(),
            "verification": self.verification.to_dict(),
            "duration_s": round(self.duration_s, 3),
        }


def clone_test(
    backup: BackupResult,
    server_url: str,
    command: Sequence[str] = EXPAND_COMMAND,
    env: Mapping[str, str] | None = None,
    expectation: SchemaExpectation = RELEASE_2_EXPECTATION,
    tools: PgTools | None = None,
    clone_name: str | None = None,
    keep: bool = False,
) -> CloneReport:
    """Restore ``backup`` into a clone on ``server_url``'s server, migrate it, verify it."""
    tools = tools or PgTools()
    name = clone_name or f"golive_clone_{backup.taken_at.strftime('%Y%m%d%H%M%S')}"
    started = time.monotonic()
    check_integrity_of_file(backup)
    with scratch_database(server_url, name, keep=keep) as clone_url:
        restore_into(backup.path, clone_url, tools, CloneTestError)
        restored_s = time.monotonic() - started
        before = baseline(clone_url, watermark=False)
        try:
            run = migrate(clone_url, command, env=env, error=CloneTestError)
            report = verify(
                clone_url,
                expected_revision=run.revision_after or "",
                before=before,
                expectation=expectation,
                previous_release=PREVIOUS_RELEASE_QUERIES,
            )
        except CloneTestError:
            raise
        except DatabaseError as exc:
            raise CloneTestError(f"on the clone {name}: {exc.message}") from exc
    return CloneReport(name, restored_s, run, report, time.monotonic() - started)
