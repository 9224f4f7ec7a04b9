"""Backup: ``pg_dump -Fc`` of the database before anything changes it.

The dump's size and SHA-256 go into the journal, and ``pg_restore --list`` must read it back
(a dump that cannot be listed is not a backup). The later database issue replaces this step
with a verified backup restored into a clone; it stays a module of its own for that.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from golive.errors import GoLiveError
from golive.plan import Plan
from golive.steps import StepContext, StepResult
from golive.targets.local import pg_bin


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Backup:
    name = "backup"
    title = "Back up the database (pg_dump -Fc, size and SHA-256 journaled)"

    def run(self, ctx: StepContext) -> StepResult:
        plan = ctx.plan
        backup_dir = plan.database.backup_dir.resolve()
        backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        path = backup_dir / f"backup_{plan.database.name}_{stamp}.dump"
        started = time.monotonic()
        dump = subprocess.run(  # noqa: S603 - fixed argv
            [
                pg_bin("pg_dump"),
                "-Fc",
                "--no-owner",
                "-d",
                ctx.target.database_url(),
                "-f",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if dump.returncode != 0:
            path.unlink(missing_ok=True)
            raise GoLiveError(f"pg_dump failed: {dump.stderr.strip()[-800:]}")
        listing = subprocess.run(  # noqa: S603
            [pg_bin("pg_restore"), "--list", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        entries = [line for line in listing.stdout.splitlines() if line and line[0].isdigit()]
        if listing.returncode != 0 or not entries:
            raise GoLiveError(f"the backup {path} cannot be read back: {listing.stderr.strip()}")
        size = path.stat().st_size
        digest = sha256_of(path)
        return StepResult(
            f"{path.name}: {size / 1e6:.2f} MB, sha256 {digest[:12]}…, {len(entries)} entries",
            {
                "path": str(path),
                "bytes": size,
                "sha256": digest,
                "toc_entries": len(entries),
                "seconds": round(time.monotonic() - started, 2),
            },
        )

    def undo(self, ctx: StepContext) -> str | None:
        return None  # the backup is kept: it is the way back for the data

    def expected_s(self, plan: Plan) -> float:
        return 15 if plan.target.kind == "local" else 600

    def manual(self, plan: Plan) -> list[str]:
        if plan.target.kind == "kubernetes":
            return [
                "kubectl exec credit-assessment-db-1 -c postgres -- \\\n"
                "  pg_dump -Fc creditassessment > backup_$(date +%Y%m%d_%H%M%S).dump",
                "sha256sum backup_*.dump && pg_restore --list backup_*.dump | head",
            ]
        return [
            f'pg_dump -Fc -d "$DATABASE_URL" '
            f"-f {plan.database.backup_dir}/backup_$(date +%Y%m%d_%H%M%S).dump",
            f"sha256sum {plan.database.backup_dir}/backup_*.dump",
        ]
