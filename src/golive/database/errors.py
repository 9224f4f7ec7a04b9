"""The database branch of golive's error tree (subclasses of ``golive.errors.GoLiveError``).

DatabaseError                exit 6   a database step failed; production untouched unless said
├── ToolNotFoundError                 pg_dump / pg_restore not found
├── InsufficientSpaceError            the backup directory cannot hold the backup
├── BackupError                       pg_dump failed
├── BackupVerificationError           the backup does not restore, or differs from the source
├── CloneTestError                    the migration failed or broke integrity on the clone
├── MigrationError                    the migration failed on the target database
├── VerificationError                 revision, schema objects, integrity or N-1 check failed
├── RestoreError                      the restore failed (the current database is untouched)
└── RestoreNotConfirmed      exit 2   the operator did not confirm the restore
"""

from __future__ import annotations

from collections.abc import Sequence

from golive.errors import GoLiveError


class DatabaseError(GoLiveError):
    """A database step of the go-live failed."""

    exit_code = 6


class ToolNotFoundError(DatabaseError):
    default_hint = (
        "install the PostgreSQL client programs (same major version as the server or newer), "
        "put them on PATH or set PG_BIN_DIR"
    )


class InsufficientSpaceError(DatabaseError):
    default_hint = "free space in the backup directory or point --backup-dir at a larger volume"


class BackupError(DatabaseError):
    default_hint = (
        "nothing was changed; check the database URL, the role's rights and pg_dump's output"
    )


class BackupVerificationError(DatabaseError):
    default_hint = (
        "the backup is not usable: production was not touched; take a new backup and "
        "check the backup volume"
    )


class CloneTestError(DatabaseError):
    default_hint = "production was not touched; fix the migration and rehearse it on a clone again"


class MigrationError(DatabaseError):
    default_hint = (
        "each migration commits on its own: the database stays at the last completed "
        "migration, which is backward compatible; the previous release keeps serving"
    )


class VerificationError(DatabaseError):
    def __init__(self, failures: Sequence[str], *, hint: str | None = None) -> None:
        self.failures = list(failures)
        super().__init__(
            "database verification failed:\n  " + "\n  ".join(self.failures),
            hint=hint
            or "the expand migration is backward compatible: keep blue serving, investigate, "
            "restore from the verified backup only if data is wrong (golive db restore)",
        )


class RestoreError(DatabaseError):
    default_hint = "the current database was left in place; the backup file is unchanged"


class RestoreNotConfirmed(DatabaseError):
    exit_code = 2
    default_hint = "nothing was changed; answer 'yes' or pass --yes to restore"
