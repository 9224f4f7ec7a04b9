"""Reading the legacy system's export of past decisions (CSV or JSON lines), strictly.

Columns (exactly these; ``engine`` is optional):

    application_id  unique, non-empty
    client_id       the client's UUID (as the service knows it)
    loan_amount     ZMW, > 0
    loan_term       months, integer > 0
    decision        APPROVE | DECLINE | REVIEW (legacy) or APPROVED | DECLINED | REFER |
                    COUNTER_OFFER (ours); any case
    score           integer, or empty
    grade           A-E (a suffix such as "B2" is cut to "B"), or empty
    reason_codes    CSV: codes separated by "|" or ";"; JSON lines: a list of strings
    decided_at      ISO 8601 with a time zone (2026-03-01T09:30:00Z)
    engine          legacy (default) | new — the score scale of this row

Every problem names the file, the row (the header is row 1 of a CSV; the first object is row 1
of a JSON-lines file) and the column; the whole file is checked before anything is sent.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from uuid import UUID

from golive.errors import ExportError
from golive.validation.records import (
    SCALE_LEGACY,
    SCALE_NEW,
    Application,
    Side,
    Stored,
    map_reasons,
    normal_decision,
    normal_grade,
)

REQUIRED = (
    "application_id",
    "client_id",
    "loan_amount",
    "loan_term",
    "decision",
    "score",
    "grade",
    "reason_codes",
    "decided_at",
)
OPTIONAL = ("engine",)
MAX_PROBLEMS = 200


class _Row:
    """One row's values, collecting problems as ``file:row: column: why``."""

    def __init__(self, where: str, values: dict[str, Any], problems: list[str]) -> None:
        self.where, self.values, self.problems = where, values, problems

    def bad(self, column: str, why: str) -> None:
        self.problems.append(f"{self.where}: {column}: {why}")

    def text(self, column: str) -> str:
        value = self.values.get(column)
        return "" if value is None else str(value).strip()


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(row number, values or None, problem) for CSV or JSON lines, by extension."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as fh:
            row = 0
            for line in fh:
                if not line.strip():
                    continue
                row += 1
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    yield row, None, f"not valid JSON ({exc})"
                    continue
                if not isinstance(value, dict):
                    yield row, None, "not a JSON object"
                    continue
                yield row, value, None
        return
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        yield 1, {"__header__": [h.strip() for h in header]}, None
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield number, None, f"{len(cells)} cells where the header has {len(header)}"
                continue
            yield number, dict(zip((h.strip() for h in header), cells, strict=True)), None


def _columns(where: str, names: list[str], problems: list[str]) -> bool:
    missing = [c for c in REQUIRED if c not in names]
    extra = [c for c in names if c not in REQUIRED and c not in OPTIONAL]
    if missing:
        problems.append(f"{where}: missing column(s): {', '.join(missing)}")
    if extra:
        problems.append(f"{where}: unknown column(s): {', '.join(extra)}")
    return not missing and not extra


def _reasons(row: _Row) -> list[str]:
    value = row.values.get("reason_codes")
    if value is None or value == "":
        return []
    if isinstance(value, list):
        if not all(isinstance(c, str) for c in value):
            row.bad("reason_codes", "must be a list of strings")
            return []
        return [c.strip() for c in value if c.strip()]
    if not isinstance(value, str):
        row.bad("reason_codes", "must be codes separated by | or ;")
        return []
    return [c.strip() for c in value.replace(";", "|").split("|") if c.strip()]


def _client(row: _Row) -> str:
    try:
        return str(UUID(row.text("client_id")))
    except ValueError:
        row.bad("client_id", "not a UUID")
        return ""


def _amount(row: _Row) -> float:
    try:
        value = Decimal(row.text("loan_amount"))
        if value.is_finite() and value > 0:
            return float(value)
    except InvalidOperation:
        pass
    row.bad("loan_amount", f"not a positive amount: {row.text('loan_amount')[:20]!r}")
    return 0.0


def _term(row: _Row) -> int:
    text = row.text("loan_term")
    if text.isdigit() and int(text) > 0:
        return int(text)
    row.bad("loan_term", f"not a positive whole number of months: {text[:20]!r}")
    return 0


def _decision(row: _Row) -> str:
    decision = normal_decision(row.text("decision"))
    if decision is None:
        row.bad(
            "decision",
            f"unknown decision {row.text('decision')[:30]!r} (expected APPROVE/DECLINE/REVIEW "
            "or APPROVED/DECLINED/REFER/COUNTER_OFFER)",
        )
    return decision or ""


def _score(row: _Row) -> int | None:
    text = row.text("score")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        row.bad("score", f"not a whole number: {text[:20]!r}")
        return None


def _grade(row: _Row) -> str | None:
    grade = normal_grade(row.text("grade"))
    if row.text("grade") and grade is None:
        row.bad("grade", f"not a grade A-E: {row.text('grade')[:10]!r}")
    return grade


def _decided_at(row: _Row) -> datetime:
    text = row.text("decided_at")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        row.bad("decided_at", f"not an ISO 8601 time: {text[:40]!r}")
        return datetime.min
    if value.tzinfo is None:
        row.bad("decided_at", "has no time zone (write 2026-03-01T09:30:00Z)")
    return value


def _scale(row: _Row) -> str:
    engine = row.text("engine").lower() or "legacy"
    if engine not in ("legacy", "new"):
        row.bad("engine", f"must be legacy or new, not {engine[:20]!r}")
    return SCALE_NEW if engine == "new" else SCALE_LEGACY


def _parse(row: _Row, reason_map: dict[str, str]) -> Stored | None:
    before = len(row.problems)
    ref = row.text("application_id")
    if not ref:
        row.bad("application_id", "empty")
    app = Application(ref, _client(row), _amount(row), _term(row), _decided_at(row), False)
    decision, score, grade, scale = _decision(row), _score(row), _grade(row), _scale(row)
    codes = _reasons(row)
    if len(row.problems) > before:
        return None
    reasons = frozenset(codes) if scale == SCALE_NEW else map_reasons(codes, reason_map)
    return Stored(app, Side(decision, score, grade, reasons, scale))


def read_export(path: Path, reason_map: dict[str, str] | None = None) -> list[Stored]:
    """Every row of the export, validated; raises ExportError listing every problem."""
    problems: list[str] = []
    stored: list[Stored] = []
    seen: dict[str, int] = {}
    is_csv = path.suffix.lower() not in (".jsonl", ".ndjson", ".json")
    try:
        for number, values, problem in _rows(path):
            where = f"{path.name}:{number}"
            if len(problems) >= MAX_PROBLEMS:
                break
            if problem is not None or values is None:
                problems.append(f"{where}: {problem}")
                continue
            if "__header__" in values:
                if not _columns(f"{path.name}:1 (header)", values["__header__"], problems):
                    break
                continue
            if not is_csv and not _columns(where, list(values), problems):
                continue
            parsed = _parse(_Row(where, values, problems), reason_map or {})
            if parsed is None:
                continue
            ref = parsed.application.ref
            if ref in seen:
                problems.append(
                    f"{where}: application_id: duplicate of row {seen[ref]} ({ref[:40]!r})"
                )
                continue
            seen[ref] = number
            stored.append(parsed)
    except OSError as exc:
        raise ExportError([f"{path}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise ExportError([f"{path}: not UTF-8 text ({exc.reason})"]) from exc
    if problems:
        raise ExportError(problems)
    if not stored:
        raise ExportError([f"{path}: no rows"])
    return stored
