"""Restore on explicit command: confirmed, proved, and the replaced database kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from golive.database.backup import backup
from golive.database.postgres import database_name, with_database
from golive.database.restore import restore
from golive.errors import RestoreError, RestoreNotConfirmed
from tests.integration.database.conftest import ASSESSMENTS


def count(conn_of: Any, url: str, table: str = "assessments") -> int:
    return int(conn_of(url).execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_restore_brings_back_the_backup_and_keeps_the_replaced_database(
    v1_url: str, tmp_path: Path, conn_of: Any
):
    taken = backup(v1_url, tmp_path)
    conn_of(v1_url).execute("DELETE FROM idempotency_keys; DELETE FROM assessments")
    prompts: list[str] = []

    result = restore(taken.path, v1_url, lambda prompt: prompts.append(prompt) or True)

    assert "absent from the restored database" in prompts[0]
    assert count(conn_of, v1_url) == ASSESSMENTS
    kept = with_database(v1_url, result.replaced_by)
    assert count(conn_of, kept) == 0, "the replaced database (with the later writes) is kept"
    assert result.database == database_name(v1_url)


def test_restore_without_confirmation_changes_nothing(v1_url: str, tmp_path: Path, conn_of: Any):
    taken = backup(v1_url, tmp_path)
    conn_of(v1_url).execute("DELETE FROM idempotency_keys; DELETE FROM assessments")

    with pytest.raises(RestoreNotConfirmed):
        restore(taken.path, v1_url, lambda _prompt: False)

    assert count(conn_of, v1_url) == 0


def test_restore_from_a_damaged_backup_is_refused_before_asking(v1_url: str, tmp_path: Path):
    taken = backup(v1_url, tmp_path)
    taken.path.write_bytes(taken.path.read_bytes()[:100])
    asked: list[str] = []

    with pytest.raises(Exception, match="truncated") as caught:
        restore(taken.path, v1_url, lambda prompt: asked.append(prompt) or True)

    assert not asked
    assert not isinstance(caught.value, RestoreError) or "truncated" in str(caught.value)
