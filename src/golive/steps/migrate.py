"""The migration: rehearsed on a clone, applied with the expand phase only, then verified.

- ``clone-test``: the verified backup is restored into ``golive_clone_<time>``, the release's
  own migration command (``credit-assessment db upgrade --phase expand``) runs there with the
  time of each migration read from the ``migration_history`` ledger, then the checks of
  ``verify``. Any failure stops the go-live before production is touched.
- ``migrate``: a baseline fingerprint of the live database (rows under a watermark, since the
  service keeps writing), then the same command on it. The service's migrations run with
  ``lock_timeout`` and retries with backoff (``MIGRATION_*`` settings); the revision reached
  must be the clone's.
- ``verify-database``: revision, schema objects, validity, integrity against the baseline and
  the previous release's queries (N-1).

The baseline and every result are journaled (``to_dict()``), so a resumed run verifies against
the baseline taken before the migration. Nothing here has a schema undo: expand migrations are
backward compatible (blue serves on the expanded schema), and a data restore is a human
decision — ``golive db restore BACKUP``. Contract migrations are not part of the go-live: they
run after blue is retired (``credit-assessment db upgrade --phase contract``).
"""

from __future__ import annotations

from typing import Any

from golive.database.clone import clone_test
from golive.database.fingerprint import DatabaseFingerprint
from golive.database.migrate import MigrationRun, migrate
from golive.database.postgres import PgTools
from golive.database.verify import baseline, verify
from golive.errors import CloneTestError, MigrationError
from golive.plan import Plan
from golive.steps.backup import journaled_backup
from golive.steps.base import StepContext, StepResult
from golive.targets import procedures
from golive.targets.base import Target

NO_SCHEMA_UNDO = (
    "expand-only migrations need no schema undo: the previous release serves on the expanded "
    "schema; restoring the backup is a human decision (golive db restore BACKUP)"
)


def expand_command(target: Target) -> list[str]:
    return [target.service_cli(), "db", "upgrade", "--phase", "expand"]


def _service_env(ctx: StepContext) -> dict[str, str]:
    env = dict(ctx.target.service_env())
    env.pop("DATABASE_URL", None)  # the migration runner points it at the database it migrates
    return env


def _applied(run: MigrationRun) -> str:
    if not run.applied:
        return f"nothing pending at {run.revision_before}"
    each = ", ".join(f"{m.revision} {m.duration_ms} ms" for m in run.applied)
    return f"{run.revision_before} -> {run.revision_after} ({each})"


def migrated_revision(ctx: StepContext) -> str:
    """The revision the clone test reached: the one production must reach."""
    revision = (ctx.figures("clone-test").get("migration") or {}).get("revision_after")
    if not revision:
        raise CloneTestError("no clone test recorded in this run's journal", hint="run clone-test")
    return str(revision)


class CloneTest:
    name = "clone-test"
    title = "Test the migration on a clone restored from the verified backup"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        report = clone_test(
            journaled_backup(ctx),
            ctx.target.database_url(),
            command=expand_command(ctx.target),
            env=_service_env(ctx),
            tools=PgTools(),
        )
        checks = report.verification.checks
        return StepResult(
            f"clone {report.clone}: restored in {report.restore_s:.1f} s, "
            f"{_applied(report.migration)}, {len(checks)} checks passed",
            report.to_dict(),
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # the clone is dropped by the test itself; production was not touched

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("clone-test")

    def manual(self, plan: Plan) -> list[str]:
        return [
            "createdb golive_clone && pg_restore --no-owner --exit-on-error -d golive_clone "
            f"{plan.database.backup_dir}/<file>.dump",
            "DATABASE_URL=<clone url> credit-assessment db upgrade --phase expand",
            'psql "<clone url>" -c "TABLE migration_history"   # time of each migration',
            "# then the checks of verify-database against the clone; dropdb golive_clone",
        ]


class Migrate:
    name = "migrate"
    title = "Migrate the live database: expand phase only (lock_timeout, retries)"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        url = ctx.target.database_url()
        expected = migrated_revision(ctx)
        before = baseline(url)
        run = migrate(
            url,
            expand_command(ctx.target),
            env=_service_env(ctx),
            timeout_s=ctx.plan.database.migration_timeout_s,
            execute=ctx.target.run_migration,
        )
        if run.revision_after != expected:
            raise MigrationError(
                f"the database reached revision {run.revision_after}, the clone test "
                f"{expected}: the migration command is not the one tested"
            )
        figures: dict[str, Any] = {
            **run.to_dict(),
            "baseline": before.to_dict(),
            "undo": NO_SCHEMA_UNDO,
        }
        return StepResult(
            f"{_applied(run)} in {run.duration_s:.1f} s; baseline of "
            f"{len(before.tables)} tables, {before.total_rows} rows",
            figures,
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # NO_SCHEMA_UNDO: the previous release runs on the expanded schema

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("migrate")

    def manual(self, plan: Plan) -> list[str]:
        return procedures(plan).migrate()


class VerifyDatabase:
    name = "verify-database"
    title = "Verify the database: revision, objects, validity, integrity, previous release (N-1)"

    def run(self, ctx: StepContext) -> StepResult:
        ctx.require_window(self.name)
        recorded = ctx.figures("migrate").get("baseline")
        before = DatabaseFingerprint.from_dict(recorded) if recorded else None
        report = verify(
            ctx.target.database_url(), expected_revision=migrated_revision(ctx), before=before
        )
        took = sum(c.duration_s for c in report.checks)
        return StepResult(
            f"{len(report.checks)} checks passed in {took:.1f} s "
            f"({', '.join(c.name for c in report.checks)})",
            report.to_dict(),
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # reads only

    def expected_s(self, plan: Plan) -> float:
        return procedures(plan).expected_s("verify-database")

    def manual(self, plan: Plan) -> list[str]:
        return [
            'psql "$DATABASE_URL" -c "SELECT version_num FROM alembic_version"',
            'psql "$DATABASE_URL" -c "SELECT conname FROM pg_constraint WHERE NOT convalidated"',
            'psql "$DATABASE_URL" -c "SELECT indexrelid::regclass FROM pg_index '
            'WHERE NOT indisvalid"',
            "# integrity and the previous release's queries: docs/database.md §4",
        ]
