"""What a database holds, in numbers that can be compared: per table a row count and a checksum.

The checksum of a table is the sum of a 64-bit slice of ``md5`` of each row (over a fixed list of
columns): independent of row order, so no sort and constant memory on big tables, and any change,
insert or delete of a row changes it. Comparing the same column list before and after a migration
proves the migration left the existing data alone; comparing all columns of a restored backup with
the snapshot it was dumped from proves the backup is complete.

A ``watermark`` restricts tables that have a ``created_at`` column to rows created before it, so a
live database that keeps taking writes can still be compared with itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

BOOKKEEPING_TABLES = frozenset({"alembic_version", "migration_history"})


@dataclass(frozen=True, slots=True)
class TableFingerprint:
    table: str
    columns: tuple[str, ...]
    rows: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": self.rows, "checksum": self.checksum}


@dataclass(frozen=True, slots=True)
class DatabaseFingerprint:
    tables: dict[str, TableFingerprint]
    watermark: datetime | None = None
    ignored: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark.isoformat() if self.watermark else None,
            "tables": {name: fp.to_dict() for name, fp in sorted(self.tables.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatabaseFingerprint:
        mark = data.get("watermark")
        return cls(
            tables={
                name: TableFingerprint(
                    name, tuple(t["columns"]), int(t["rows"]), str(t["checksum"])
                )
                for name, t in data["tables"].items()
            },
            watermark=datetime.fromisoformat(mark) if mark else None,
        )

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def user_tables(conn: psycopg.Connection) -> dict[str, tuple[str, ...]]:
    """Every ordinary table of the public schema with its columns, in column order."""
    rows = conn.execute(
        """
        SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        GROUP BY c.relname ORDER BY c.relname
        """
    ).fetchall()
    return {name: tuple(columns) for name, columns in rows}


def table_fingerprint(
    conn: psycopg.Connection,
    table: str,
    columns: Sequence[str],
    watermark: datetime | None = None,
) -> TableFingerprint:
    row_expr = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    query = sql.SQL(
        "SELECT count(*), coalesce(sum("
        "('x' || substr(md5({row}), 1, 16))::bit(64)::bigint::numeric), 0) FROM {table}"
    ).format(row=row_expr, table=sql.Identifier(table))
    params: tuple[Any, ...] = ()
    if watermark is not None and "created_at" in columns:
        query = query + sql.SQL(" WHERE created_at <= %s")
        params = (watermark,)
    count, checksum = conn.execute(query, params).fetchone()  # type: ignore[misc]
    return TableFingerprint(table, tuple(columns), int(count), str(checksum))


def fingerprint(
    conn: psycopg.Connection,
    tables: Mapping[str, Sequence[str]] | None = None,
    watermark: datetime | None = None,
    skip: Iterable[str] = (),
) -> DatabaseFingerprint:
    """Fingerprint ``tables`` (name -> columns; default every table with all its columns)."""
    chosen = dict(tables) if tables is not None else dict(user_tables(conn))
    for name in skip:
        chosen.pop(name, None)
    return DatabaseFingerprint(
        {name: table_fingerprint(conn, name, cols, watermark) for name, cols in chosen.items()},
        watermark,
    )


def refingerprint(conn: psycopg.Connection, before: DatabaseFingerprint) -> DatabaseFingerprint:
    """The same tables, columns and watermark as ``before``, measured now."""
    present = user_tables(conn)
    tables = {}
    for name, fp in before.tables.items():
        if name not in present or not set(fp.columns) <= set(present[name]):
            tables[name] = TableFingerprint(name, fp.columns, -1, "missing")
        else:
            tables[name] = table_fingerprint(conn, name, fp.columns, before.watermark)
    return DatabaseFingerprint(tables, before.watermark)


def differences(expected: DatabaseFingerprint, actual: DatabaseFingerprint) -> list[str]:
    """Human-readable differences; empty when the two agree."""
    found = []
    for name, want in sorted(expected.tables.items()):
        got = actual.tables.get(name)
        if got is None or got.checksum == "missing":
            found.append(f"table {name} (or one of its columns) is missing")
        elif got.rows != want.rows:
            found.append(f"table {name}: {got.rows} rows, expected {want.rows}")
        elif got.checksum != want.checksum:
            found.append(f"table {name}: content checksum differs ({len(want.columns)} columns)")
    for name in sorted(set(actual.tables) - set(expected.tables)):
        found.append(f"table {name} is not in the reference")
    return found
