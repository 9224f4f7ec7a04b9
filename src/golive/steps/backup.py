"""Backup, then prove it: ``pg_dump -Fc`` of the database before anything changes it, restored
into a scratch database and compared table by table.

``backup`` dumps from an exported snapshot and fingerprints every table inside the same
transaction (``golive.database.backup``); size, SHA-256 and the fingerprint go into the journal
(``BackupResult.to_dict()``), so ``verify-backup`` — and a resumed run — read the backup back
from the journal alone. ``verify-backup`` checks the file against its SHA-256, restores it into
``golive_verify_<time>`` and compares row counts and checksums per table: a corrupt or
truncated backup stops the go-live before the schema is touched. Neither step has anything to
undo: the backup is kept, it is the way back for the data (``golive db restore``).
"""

from __future__ import annotations

from golive.database.backup import BackupResult, backup, verify_backup
from golive.database.postgres import PgTools
from golive.errors import BackupError
from golive.plan import Plan
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures


def journaled_backup(ctx: StepContext) -> BackupResult:
    """The backup the ``backup`` step of this run recorded."""
    figures = ctx.figures("backup")
    if not figures.get("sha256"):
        raise BackupError("no backup recorded in this run's journal", hint="run the backup step")
    return BackupResult.from_dict(figures)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


class Backup:
    name = "backup"
    title = "Back up the database (pg_dump -Fc; size, SHA-256 and per-table fingerprint)"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        url = ctx.target.database_url()
        directory = ctx.plan.database.backup_dir.resolve()
        result = backup(url, directory, PgTools())
        figures = {**result.to_dict(), "bytes": result.size_bytes}
        return StepResult(
            f"{result.path.name}: {_mb(result.size_bytes)}, sha256 {result.sha256[:12]}…, "
            f"{len(result.source.tables)} tables, {result.source.total_rows} rows, "
            f"dumped in {result.duration_s:.1f} s",
            figures,
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # the backup is kept: it is the way back for the data

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("backup")

    def manual(self, plan: Plan) -> list[str]:
        directory = plan.database.backup_dir
        return procedures(plan).backup(
            f"{directory}/{plan.database.name}-$(date -u +%Y%m%dT%H%M%SZ).dump"
        )


class VerifyBackup:
    name = "verify-backup"
    title = "Verify the backup: SHA-256, restore into a scratch database, compare every table"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        result = journaled_backup(ctx)
        verified = verify_backup(result, server_url=ctx.target.database_url(), tools=PgTools())
        return StepResult(
            f"{result.path.name} restored in {verified.restore_s:.1f} s: {verified.tables} "
            f"tables, {verified.rows} rows — counts and checksums equal the source",
            {**verified.to_dict(), "path": str(result.path), "sha256": result.sha256},
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # the scratch database is dropped by the verification itself

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("verify-backup")

    def manual(self, plan: Plan) -> list[str]:
        return [
            f"golive db verify {plan.database.backup_dir}/<file>.dump",
            "# = sha256sum -c; createdb verify_scratch; "
            "pg_restore --no-owner --exit-on-error -d verify_scratch <file>.dump;",
            "#   compare count(*) and the md5 checksum of every table on both sides; "
            "dropdb verify_scratch",
        ]
