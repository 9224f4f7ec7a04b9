"""Backups against real PostgreSQL: dumped, proved by a restore, refused when damaged."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from golive.database.backup import backup, load_backup, verify_backup
from golive.errors import BackupVerificationError
from tests.conftest import PostgresServer
from tests.integration.database.conftest import ASSESSMENTS


def test_backup_is_verified_by_a_restore(v1_url: str, postgres: PostgresServer, tmp_path: Path):
    result = backup(v1_url, tmp_path)

    assert result.path.exists() and result.path.suffix == ".dump"
    assert result.size_bytes == result.path.stat().st_size > 0
    assert len(result.sha256) == 64
    assert result.source.tables["assessments"].rows == ASSESSMENTS
    assert result.source.tables["clients"].rows == 200
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["sha256"] == result.sha256

    verified = verify_backup(load_backup(result.path), postgres.admin_url)

    assert verified.rows == result.source.total_rows
    assert verified.tables == len(result.source.tables)


def test_backup_taken_under_writes_matches_its_snapshot(
    v1_url: str, postgres: PostgresServer, tmp_path: Path
):
    stop = threading.Event()
    written = []

    def keep_writing() -> None:
        with psycopg.connect(v1_url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute(
                    "INSERT INTO clients (id, full_name) VALUES (gen_random_uuid(), 'late')"
                )
                written.append(1)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = backup(v1_url, tmp_path)
    finally:
        stop.set()
        writer.join()

    assert written, "the writer never wrote during the backup"
    verify_backup(result, postgres.admin_url)  # the fingerprint is the dump's own snapshot


def test_truncated_backup_fails_verification(v1_url: str, postgres: PostgresServer, tmp_path):
    result = backup(v1_url, tmp_path)
    data = result.path.read_bytes()
    result.path.write_bytes(data[: len(data) // 2])

    with pytest.raises(BackupVerificationError, match="truncated"):
        verify_backup(result, postgres.admin_url)


def test_corrupt_backup_fails_verification(v1_url: str, postgres: PostgresServer, tmp_path):
    result = backup(v1_url, tmp_path)
    data = bytearray(result.path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    result.path.write_bytes(bytes(data))

    with pytest.raises(BackupVerificationError, match="SHA-256"):
        verify_backup(result, postgres.admin_url)


def test_damaged_dump_with_a_matching_manifest_fails_the_restore(
    v1_url: str, postgres: PostgresServer, tmp_path: Path
):
    """Damage that happened before the manifest was written: only the restore can catch it."""
    result = backup(v1_url, tmp_path)
    data = result.path.read_bytes()
    result.path.write_bytes(data[: int(len(data) * 0.7)])
    manifest = json.loads(result.manifest_path.read_text())
    from golive.database.backup import sha256_of

    manifest.update(size_bytes=result.path.stat().st_size, sha256=sha256_of(result.path))
    result.manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(BackupVerificationError) as caught:
        verify_backup(load_backup(result.path), postgres.admin_url)
    assert "pg_restore failed" in str(caught.value) or "differs" in str(caught.value)


def test_missing_manifest_is_a_clear_error(tmp_path: Path):
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"PGDMP")
    with pytest.raises(BackupVerificationError, match="manifest"):
        load_backup(dump)
