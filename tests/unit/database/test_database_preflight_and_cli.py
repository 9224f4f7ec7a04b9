"""The free-space preflight (with a fake statvfs), fingerprint comparison, and the db commands."""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import pytest

from golive.database.backup import check_free_space
from golive.database.cli import add_db_commands, cmd_restore
from golive.database.fingerprint import DatabaseFingerprint, TableFingerprint, differences
from golive.database.postgres import describe, libpq_url, with_database
from golive.errors import DatabaseError, GoLiveError, InsufficientSpaceError, RestoreNotConfirmed


def fake_statvfs(free_bytes: int):
    def statvfs(_path: str) -> os.statvfs_result:
        return os.statvfs_result(
            (4096, 4096, 1000, free_bytes // 4096, free_bytes // 4096, 0, 0, 0, 0, 255)
        )

    return statvfs


def test_preflight_refuses_a_directory_too_small(tmp_path: Path):
    with pytest.raises(InsufficientSpaceError) as caught:
        check_free_space(tmp_path, database_bytes=100 * 2**20, statvfs=fake_statvfs(64 * 2**20))
    error = caught.value
    assert "64.0 MiB free" in error.message and "150.0 MiB" in error.message
    assert isinstance(error, GoLiveError) and error.exit_code == 11 and error.hint


def test_preflight_accepts_enough_space(tmp_path: Path):
    check = check_free_space(tmp_path, 10 * 2**20, statvfs=fake_statvfs(16 * 2**20))
    assert check.ok and check.needed_bytes == 15 * 2**20


def test_preflight_on_the_real_filesystem(tmp_path: Path):
    assert check_free_space(tmp_path, 1024).ok
    with pytest.raises(InsufficientSpaceError):
        check_free_space(tmp_path, 2**62)


def fp(**tables: tuple[int, str]) -> DatabaseFingerprint:
    return DatabaseFingerprint(
        {n: TableFingerprint(n, ("id",), r, c) for n, (r, c) in tables.items()}
    )


def test_fingerprint_differences():
    assert differences(fp(a=(3, "x")), fp(a=(3, "x"))) == []
    assert differences(fp(a=(3, "x")), fp(a=(4, "x"))) == ["table a: 4 rows, expected 3"]
    assert "checksum differs" in differences(fp(a=(3, "x")), fp(a=(3, "y")))[0]
    assert "missing" in differences(fp(a=(3, "x")), fp())[0]
    assert "not in the reference" in differences(fp(), fp(b=(1, "z")))[0]
    assert DatabaseFingerprint.from_dict(fp(a=(3, "x")).to_dict()) == fp(a=(3, "x"))


def test_urls():
    url = "postgresql+psycopg://app:secret@db.internal:5432/credit?sslmode=require"
    assert libpq_url(url).startswith("postgresql://app:secret@")
    assert with_database(url, "other").endswith("/other?sslmode=require")
    assert describe(url) == "credit on db.internal:5432"
    assert "secret" not in describe(url)
    assert describe("postgresql://postgres:@/db?host=/run/pg") == "db on /run/pg"
    with pytest.raises(DatabaseError):
        libpq_url("mysql://x/y")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="golive")
    add_db_commands(root.add_subparsers(dest="command", required=True))
    return root


def test_db_commands_parse():
    args = parser().parse_args(
        ["db", "restore", "b.dump", "--yes", "--database-url", "postgresql://x/y"]
    )
    assert args.handler is cmd_restore and args.yes and args.backup == "b.dump"
    args = parser().parse_args(["db", "backup", "--dir", "/backups", "--no-verify"])
    assert args.dir == "/backups" and args.verify is False
    args = parser().parse_args(["db", "verify", "b.dump"])
    assert args.backup == "b.dump"


def test_restore_without_yes_and_without_a_terminal_is_not_confirmed(tmp_path: Path):
    dump = tmp_path / "b.dump"
    dump.write_bytes(b"x")
    (tmp_path / "b.dump.json").write_text(
        '{"database": "d", "size_bytes": 1, "sha256": "' + hashlib.sha256(b"x").hexdigest() + '",'
        ' "taken_at": "2026-12-01T00:00:00+00:00", "duration_s": 1, "server_version": "16",'
        ' "source": {"watermark": null, "tables": {}}}'
    )
    args = parser().parse_args(["db", "restore", str(dump), "--database-url", "postgresql://u@h/d"])
    with pytest.raises(RestoreNotConfirmed):
        cmd_restore(args, ask=lambda _prompt: False)
