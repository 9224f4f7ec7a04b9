"""Migrate: ``credit-assessment db upgrade`` against the plan's database.

The revision before and after goes into the journal. Undo does not touch the schema: the
service's migrations are expand-only, so blue runs on the new schema; restoring the backup is a
human decision (the hint and the runbook give the command). The database issue replaces this
step with a clone test and expand/contract phases.
"""

from __future__ import annotations

import os
import subprocess

from golive.errors import GoLiveError
from golive.plan import Plan
from golive.steps import StepContext, StepResult
from golive.targets.local import service_cli


def schema_revision(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


class Migrate:
    name = "migrate"
    title = "Migrate the database schema (credit-assessment db upgrade)"

    def run(self, ctx: StepContext) -> StepResult:
        env = {**os.environ, **ctx.target.service_env()}
        before = schema_revision(ctx.target.database_url())
        result = subprocess.run(  # noqa: S603 - fixed argv
            [service_cli(), "db", "upgrade"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if result.returncode != 0:
            raise GoLiveError(f"migration failed: {result.stderr.strip()[-800:]}")
        after = schema_revision(ctx.target.database_url())
        return StepResult(
            f"schema {before or 'empty'} -> {after}",
            {"revision_before": before, "revision_after": after, "output": result.stdout.strip()},
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # expand-only migrations: the old release runs on the new schema

    def expected_s(self, plan: Plan) -> float:
        return 10 if plan.target.kind == "local" else 300

    def manual(self, plan: Plan) -> list[str]:
        if plan.target.kind == "kubernetes":
            return [
                "kubectl kustomize deploy/k8s/migration | kubectl apply --dry-run=server -f -",
                "kubectl delete job db-migration --ignore-not-found",
                "kubectl apply -k deploy/k8s/migration",
                "kubectl wait --for=condition=complete job/db-migration --timeout=900s",
                "kubectl logs job/db-migration",
            ]
        return ['DATABASE_URL="$DATABASE_URL" credit-assessment db upgrade']
