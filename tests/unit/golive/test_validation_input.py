"""The legacy export: the format, and clear errors naming the row and the column."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from golive.errors import ExportError
from golive.validation.export import REQUIRED, read_export
from golive.validation.history import select

CLIENT_A = "9b2f7c1e-5a4d-4e1b-8c3a-2d6f0e9a7b11"
CLIENT_B = "1c4d2e3f-0a1b-4c2d-9e8f-7a6b5c4d3e2f"
HEADER = ",".join(REQUIRED)


def write(tmp_path: Path, lines: list[str], name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_both_vocabularies_and_maps_reasons(tmp_path: Path):
    path = write(
        tmp_path,
        [
            HEADER,
            f"A-1,{CLIENT_A},25000.50,36,APPROVE,712,B2,,2026-03-01T09:30:00Z",
            f"A-2,{CLIENT_B},5000,12,decline,455,e,R07|R09,2026-03-01T10:00:00+02:00",
            f"A-3,{CLIENT_A},9000,6,REFER,,,LEGACY_R01;R02,2026-03-02T08:00:00Z",
        ],
    )
    rows = read_export(path, {"R07": "INCOME_INSUFFICIENT"})
    assert [r.legacy.decision for r in rows] == ["APPROVED", "DECLINED", "REFER"]
    assert [r.legacy.grade for r in rows] == ["B", "E", None]
    assert rows[1].legacy.reasons == {"INCOME_INSUFFICIENT", "R09"}
    assert rows[2].legacy.reasons == {"R01", "R02"}
    assert rows[2].legacy.score is None
    assert rows[0].application.loan_amount == 25000.5
    assert rows[0].legacy.scale == "legacy"


def test_json_lines_and_the_engine_column(tmp_path: Path):
    doc = {
        "application_id": "J-1",
        "client_id": CLIENT_A,
        "loan_amount": 1000,
        "loan_term": 12,
        "decision": "COUNTER_OFFER",
        "score": 590,
        "grade": "B",
        "reason_codes": ["AMOUNT"],
        "decided_at": "2026-03-01T09:30:00Z",
        "engine": "new",
    }
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(doc) + "\n\n", encoding="utf-8")
    [row] = read_export(path)
    assert (row.legacy.decision, row.legacy.scale, row.legacy.reasons) == (
        "COUNTER_OFFER",
        "new",
        {"AMOUNT"},
    )


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["application_id,client_id,loan_amount"],
            "export.csv:1 (header): missing column(s): "
            "loan_term, decision, score, grade, reason_codes, decided_at",
        ),
        ([HEADER + ",branch"], "export.csv:1 (header): unknown column(s): branch"),
        (
            [HEADER, f"A-1,{CLIENT_A},100,12,MAYBE,600,B,,2026-03-01T09:30:00Z"],
            "export.csv:2: decision: unknown decision 'MAYBE'",
        ),
        (
            [
                HEADER,
                f"A-1,{CLIENT_A},100,12,APPROVE,600,B,,2026-03-01T09:30:00Z",
                f"A-1,{CLIENT_B},100,12,APPROVE,600,B,,2026-03-01T09:30:00Z",
            ],
            "export.csv:3: application_id: duplicate of row 2",
        ),
        (
            [HEADER, "A-1,not-a-uuid,100,12,APPROVE,600,B,,2026-03-01T09:30:00Z"],
            "export.csv:2: client_id: not a UUID",
        ),
        (
            [HEADER, f"A-1,{CLIENT_A},-5,12,APPROVE,600,B,,2026-03-01T09:30:00Z"],
            "export.csv:2: loan_amount: not a positive amount",
        ),
        (
            [HEADER, f"A-1,{CLIENT_A},100,1.5,APPROVE,600,B,,2026-03-01T09:30:00Z"],
            "export.csv:2: loan_term: not a positive whole number",
        ),
        (
            [HEADER, f"A-1,{CLIENT_A},100,12,APPROVE,600,Z,,2026-03-01T09:30:00Z"],
            "export.csv:2: grade: not a grade A-E",
        ),
        (
            [HEADER, f"A-1,{CLIENT_A},100,12,APPROVE,600,B,,2026-03-01 09:30"],
            "export.csv:2: decided_at: has no time zone",
        ),
        (
            [HEADER, f"A-1,{CLIENT_A},100,12,APPROVE,600,B,2026-03-01T09:30:00Z"],
            "export.csv:2: 8 cells where the header has 9",
        ),
    ],
)
def test_bad_exports_name_the_row_and_column(tmp_path: Path, lines: list[str], expected: str):
    with pytest.raises(ExportError) as caught:
        read_export(write(tmp_path, lines))
    assert expected in caught.value.message
    assert caught.value.exit_code == 2


def test_json_lines_errors_name_the_row(tmp_path: Path):
    good = {c: "" for c in REQUIRED}
    path = tmp_path / "export.jsonl"
    path.write_text('{"application_id": 1}\n[1]\n{oops\n' + json.dumps(good) + "\n")
    with pytest.raises(ExportError) as caught:
        read_export(path)
    message = caught.value.message
    assert "export.jsonl:1: missing column(s): client_id" in message
    assert "export.jsonl:2: not a JSON object" in message
    assert "export.jsonl:3: not valid JSON" in message
    assert "export.jsonl:4: application_id: empty" in message


def test_window_existing_clients_and_reproducible_sample(tmp_path: Path):
    lines = [HEADER]
    for i in range(10):
        client = CLIENT_A if i % 2 else CLIENT_B
        lines.append(f"A-{i},{client},1000,12,APPROVE,600,B,,2026-03-0{1 + i // 5}T0{i % 5}:00:00Z")
    rows = read_export(write(tmp_path, lines))
    since = datetime(2026, 3, 2, tzinfo=UTC)
    window = select(rows, since=since)
    assert [r.application.ref for r in window] == ["A-5", "A-6", "A-7", "A-8", "A-9"]
    assert all(r.application.existing_client for r in window)  # both clients seen on 1 March
    everything = select(rows)
    assert [r.application.existing_client for r in everything[:3]] == [False, False, True]
    sample = select(rows, sample=4)
    assert len(sample) == 4
    assert [r.application.ref for r in sample] == [
        r.application.ref for r in select(rows, sample=4)
    ]
