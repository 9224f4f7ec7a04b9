"""Backups that count only once proved: ``pg_dump -Fc``, then restored and compared.

``backup`` dumps from a snapshot exported by a REPEATABLE READ transaction and fingerprints the
source inside that same transaction, so the fingerprint describes exactly what the dump holds even
while the service keeps writing. A manifest (``<file>.json``) keeps the SHA-256, size and
fingerprint next to the dump. ``verify_backup`` checks the SHA-256, restores the dump into a
scratch database with pg_restore and compares row counts and content checksums per table.

Manual equivalent::

    pg_dump -Fc --dbname="$DATABASE_URL" -f credit_assessment-20261202T101500Z.dump
    sha256sum credit_assessment-20261202T101500Z.dump
    createdb verify_scratch && pg_restore --no-owner --exit-on-error -d verify_scratch <file>
    -- then per table: SELECT count(*), sum(...md5(ROW(...)::text)...) on both sides
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from golive.database.fingerprint import DatabaseFingerprint, differences, fingerprint
from golive.database.postgres import (
    PgTools,
    connect,
    database_name,
    database_size,
    describe,
    scratch_database,
)
from golive.errors import (
    BackupError,
    BackupVerificationError,
    DatabaseError,
    InsufficientSpaceError,
)

SPACE_MARGIN = 1.5  # the custom format is compressed; uncompressed size x 1.5 is a safe bound
DUMP_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True, slots=True)
class SpaceCheck:
    directory: Path
    free_bytes: int
    needed_bytes: int

    @property
    def ok(self) -> bool:
        return self.free_bytes >= self.needed_bytes


def check_free_space(
    directory: Path,
    database_bytes: int,
    margin: float = SPACE_MARGIN,
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
) -> SpaceCheck:
    """Preflight: can ``directory`` hold a backup of a database of ``database_bytes``?"""
    directory.mkdir(parents=True, exist_ok=True)
    stats = statvfs(str(directory))
    check = SpaceCheck(directory, stats.f_bavail * stats.f_frsize, int(database_bytes * margin))
    if not check.ok:
        raise InsufficientSpaceError(
            f"backup directory {directory} has {_size(check.free_bytes)} free; the database is "
            f"{_size(database_bytes)} and the backup needs up to {_size(check.needed_bytes)} "
            f"(margin {margin}x)"
        )
    return check


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    database: str
    size_bytes: int
    sha256: str
    taken_at: datetime
    duration_s: float
    source: DatabaseFingerprint
    server_version: str

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        """What the journal records (and the manifest holds)."""
        return {
            "path": str(self.path),
            "database": self.database,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "taken_at": self.taken_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "server_version": self.server_version,
            "source": self.source.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupResult:
        return cls(
            path=Path(data["path"]),
            database=data["database"],
            size_bytes=int(data["size_bytes"]),
            sha256=data["sha256"],
            taken_at=datetime.fromisoformat(data["taken_at"]),
            duration_s=float(data["duration_s"]),
            source=DatabaseFingerprint.from_dict(data["source"]),
            server_version=data["server_version"],
        )


@dataclass(frozen=True, slots=True)
class BackupVerification:
    backup: BackupResult
    tables: int
    rows: int
    restore_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"tables": self.tables, "rows": self.rows, "restore_s": round(self.restore_s, 3)}


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def load_backup(path: Path) -> BackupResult:
    """The backup described by the manifest next to ``path``."""
    manifest = manifest_path(path)
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupVerificationError(f"no readable manifest for {path} ({manifest})") from exc
    return BackupResult.from_dict({**data, "path": str(path)})


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(
    url: str,
    directory: Path,
    tools: PgTools | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    check_space: bool = True,
) -> BackupResult:
    """Dump ``url`` into ``directory`` (custom format, timestamped) with its manifest."""
    tools = tools or PgTools()
    directory = Path(directory)
    if check_space:
        check_free_space(directory, database_size(url))
    taken_at = now()
    name = database_name(url)
    path = directory / f"{name}-{taken_at.strftime('%Y%m%dT%H%M%S%fZ')}.dump"
    started = time.monotonic()
    try:
        with connect(url, autocommit=True) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            tools.run(
                "pg_dump",
                ["-Fc", f"--snapshot={snapshot}", f"--file={path}", f"--dbname={url}"],
                DUMP_TIMEOUT_S,
                BackupError,
            )
            source = fingerprint(conn)
            conn.execute("ROLLBACK")
    except DatabaseError:
        path.unlink(missing_ok=True)
        raise
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise BackupError(f"backup of {describe(url)} failed: {exc}") from exc
    result = BackupResult(
        path=path,
        database=name,
        size_bytes=path.stat().st_size,
        sha256=sha256_of(path),
        taken_at=taken_at,
        duration_s=time.monotonic() - started,
        source=source,
        server_version=version,
    )
    manifest_path(path).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def restore_into(backup_path: Path, url: str, tools: PgTools, error: type[DatabaseError]) -> None:
    """pg_restore a custom-format dump into the (empty) database at ``url``."""
    tools.run(
        "pg_restore",
        ["--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={url}", str(backup_path)],
        DUMP_TIMEOUT_S,
        error,
    )


def check_integrity_of_file(result: BackupResult) -> None:
    if not result.path.is_file():
        raise BackupVerificationError(f"backup file {result.path} does not exist")
    size = result.path.stat().st_size
    if size != result.size_bytes:
        raise BackupVerificationError(
            f"backup file {result.path} is {size} bytes, the manifest says {result.size_bytes}: "
            "truncated or replaced"
        )
    if sha256_of(result.path) != result.sha256:
        raise BackupVerificationError(
            f"backup file {result.path} does not match its SHA-256 {result.sha256[:12]}…: corrupt"
        )


def verify_backup(
    result: BackupResult,
    server_url: str,
    tools: PgTools | None = None,
    scratch_name: str | None = None,
) -> BackupVerification:
    """Prove the backup: checksum, restore into a scratch database, compare every table."""
    tools = tools or PgTools()
    check_integrity_of_file(result)
    name = scratch_name or f"golive_verify_{result.taken_at.strftime('%Y%m%d%H%M%S')}"
    started = time.monotonic()
    with scratch_database(server_url, name) as scratch_url:
        restore_into(result.path, scratch_url, tools, BackupVerificationError)
        with connect(scratch_url) as conn:
            restored = fingerprint(conn, {n: t.columns for n, t in result.source.tables.items()})
            extra = set(fingerprint(conn).tables) - set(result.source.tables)
    problems = differences(result.source, restored) + [f"unexpected table {t}" for t in extra]
    if problems:
        raise BackupVerificationError(
            f"restored backup {result.path.name} differs from its source: " + "; ".join(problems)
        )
    return BackupVerification(
        result, len(restored.tables), restored.total_rows, time.monotonic() - started
    )


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"
