"""The database steps and the validation step of a go-live, on a real PostgreSQL.

The runner runs the steps (journaled, rolled back on failure) against a target that only has a
database — what those steps use — so each case takes seconds: backup -> verify -> clone test ->
migrate -> verify on a database at the previous release's schema (0001); a clone test that
fails stops the run before production is touched; a corrupt backup stops it too; the validation
step writes its section, with the discrepancy register, into the go-live report.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credit_assessment.seed import client_id
from golive.database.migrate import run_locally
from golive.database.postgres import revision
from golive.errors import StepFailed, TargetError
from golive.plan import Plan, load
from golive.runner import Runner
from golive.service import service_cli
from golive.steps import migrate as migrate_steps
from golive.steps.backup import Backup, VerifyBackup
from golive.steps.base import StepContext, StepResult
from golive.steps.migrate import CloneTest, Migrate, VerifyDatabase
from golive.steps.validate import Validate
from tests.integration.database import conftest as database_fixtures
from tests.integration.golive.plans import write_plan
from tests.integration.validation.test_validation_sources import insert, shadow

pytestmark = pytest.mark.slow

# Databases at the previous release's schema (0001) with clients and assessments.
v1_template = database_fixtures.v1_template
v1_url = database_fixtures.v1_url


class RecordShadowPairs:
    """Stands in for traffic on the legacy route: shadow pairs stored during the run."""

    name = "record-shadow-pairs"
    title = "test: shadow pairs recorded while the go-live runs"

    def __init__(self, count: int) -> None:
        self.count = count

    def run(self, ctx: StepContext) -> StepResult:
        insert(ctx.target.database_url(), _shadow_rows(self.count))
        return StepResult(f"{self.count} pairs")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 0

    def manual(self, plan: Plan) -> list[str]:
        return []


class DatabaseTarget:
    """A target with a database and nothing else (no router, no slots)."""

    kind = "local"

    def __init__(self, url: str) -> None:
        self.url = url

    def database_url(self) -> str:
        return self.url

    def service_env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url, "APP_ENV": "development"}

    def router_state(self) -> Any:
        raise TargetError("no router in this test")

    def service_cli(self) -> str:
        return service_cli()

    def run_migration(
        self, command: Sequence[str], env: Mapping[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        return run_locally(command, env, timeout_s)  # as the local target does

    def coordination(self) -> None:
        return None  # one machine: the state directory alone


def _plan(tmp_path: Path, **changes: Any) -> Plan:
    return load(write_plan(tmp_path, **changes))


def database_steps() -> list[Any]:
    return [Backup(), VerifyBackup(), CloneTest(), Migrate(), VerifyDatabase()]


def test_database_steps_migrate_and_verify_with_timings(tmp_path: Path, v1_url: str):
    runner = Runner(_plan(tmp_path), DatabaseTarget(v1_url), steps=database_steps())
    journal = runner.run()
    state = journal.state()
    assert state.outcome == "succeeded"
    assert revision(v1_url) == "0006"  # expand head; the contract migration 0007 is not run
    clone = state.figures("clone-test")
    assert [m["revision"] for m in clone["migration"]["applied"]] == [
        "0002",
        "0003",
        "0004",
        "0005",
        "0006",
    ]
    migrated = state.figures("migrate")
    assert migrated["revision_before"] == "0001" and migrated["revision_after"] == "0006"
    assert all(m["duration_ms"] is not None for m in migrated["applied"][1:])
    assert "baseline" in migrated and "no schema undo" in migrated["undo"]
    checks = {c["name"]: c["ok"] for c in state.figures("verify-database")["checks"]}
    assert checks == dict.fromkeys(
        ["revision", "schema objects", "validity", "integrity", "previous release (N-1)"], True
    )
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Database" in report
    for step in ("backup", "verify-backup", "clone-test", "migrate", "verify-database"):
        assert f"| `{step}` |" in report
    assert "0001 → 0006" in report and "golive db restore" in report


def test_a_failing_clone_test_stops_before_production_is_touched(
    tmp_path: Path, v1_url: str, monkeypatch: pytest.MonkeyPatch
):
    broken = ["sh", "-c", "echo 'migration 0003 failed: relation is locked' >&2; exit 3"]
    monkeypatch.setattr(migrate_steps, "expand_command", lambda target: broken)
    runner = Runner(_plan(tmp_path), DatabaseTarget(v1_url), steps=database_steps())
    with pytest.raises(StepFailed) as failed:
        runner.run()
    assert "clone-test" in failed.value.message and "relation is locked" in failed.value.message
    state = runner.journal.state()  # type: ignore[union-attr]
    assert state.outcome == "rolled_back" and "migrate" not in state.steps
    assert revision(v1_url) == "0001"  # production untouched
    assert "backup kept at" in (failed.value.hint or "")


class CorruptBackup:
    """Flips bytes in the middle of the dump, as a bad disk would."""

    name = "corrupt-backup"
    title = "test: corrupt the backup file"

    def run(self, ctx: StepContext) -> StepResult:
        path = Path(ctx.figures("backup")["path"])
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(random.randrange(256) for _ in range(64))
        path.write_bytes(bytes(data))
        return StepResult("corrupted")

    def undo(self, ctx: StepContext) -> str | None:
        return None

    def expected_s(self, plan: Plan) -> float:
        return 0

    def manual(self, plan: Plan) -> list[str]:
        return []


def test_a_corrupt_backup_stops_the_run(tmp_path: Path, v1_url: str):
    steps = [Backup(), CorruptBackup(), VerifyBackup(), CloneTest(), Migrate(), VerifyDatabase()]
    runner = Runner(_plan(tmp_path), DatabaseTarget(v1_url), steps=steps)
    with pytest.raises(StepFailed) as failed:
        runner.run()
    assert "verify-backup" in failed.value.message and "SHA-256" in failed.value.message
    assert revision(v1_url) == "0001"
    report = (runner.journal.run_dir / "report.md").read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "`verify-backup` **failed**" in report


def _shadow_rows(count: int) -> list[dict[str, Any]]:
    at = datetime.now(UTC)
    rows = []
    for index in range(count):
        legacy = "APPROVED" if index % 3 else "DECLINED"
        new = "DECLINED" if index % 4 == 0 else legacy  # a class of approvals now declined
        rows.append(
            {
                "client": client_id(index % 50),
                "amount": 5000 + 1000 * (index % 40),
                "term": (12, 24, 36)[index % 3],
                "decision": legacy,
                "shadow": shadow(legacy, new, ngrade="D" if new != legacy else "C"),
                "at": at - timedelta(microseconds=index),
            }
        )
    return rows


def test_validation_step_writes_the_section_with_the_register(tmp_path: Path, database_url: str):
    insert(database_url, _shadow_rows(30))  # before the run: outside its window
    steps = [RecordShadowPairs(200), Validate()]
    runner = Runner(_plan(tmp_path), DatabaseTarget(database_url), steps=steps)
    journal = runner.run()
    figures = journal.state().figures("validate")
    assert figures["pairs"] == 200 and figures["unexplained"] > 0 and not figures["gate"]
    document = json.loads((journal.run_dir / "validation.json").read_text(encoding="utf-8"))
    assert document["register"]
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "## Validation: legacy vs new" in report and "(report only)" in report
    assert "Discrepancy register" in report


def test_validation_as_a_gate_fails_the_go_live(tmp_path: Path, database_url: str):
    plan = _plan(tmp_path, validation={"gate": True})
    steps = [RecordShadowPairs(200), Validate()]
    runner = Runner(plan, DatabaseTarget(database_url), steps=steps)
    with pytest.raises(StepFailed) as failed:
        runner.run()
    assert "validation gate failed" in failed.value.message


def test_validation_without_shadow_pairs_says_so(tmp_path: Path, database_url: str):
    journal = Runner(_plan(tmp_path), DatabaseTarget(database_url), steps=[Validate()]).run()
    assert journal.state().figures("validate")["pairs"] == 0
    report = (journal.run_dir / "report.md").read_text(encoding="utf-8")
    assert "No shadow pairs recorded during this run" in report
