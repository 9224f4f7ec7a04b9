"""The two database sources on a real PostgreSQL, and a replay against the running service."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from credit_assessment.seed import client_id
from golive.database.postgres import libpq_url
from golive.validation import ValidateRequest, parse_config, render_markdown, run_validation
from golive.validation.database import shadow_pairs, stored_applications
from golive.validation.export import REQUIRED
from tests.conftest import LiveServer

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
INSERT = """
INSERT INTO assessments (id, client_id, loan_amount, loan_term, decision, score, risk_grade,
                         reasons, engine, model_version, policy_version, input_snapshot, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def shadow(legacy: str, new: str, *, lgrade: str = "C", ngrade: str = "C") -> dict[str, Any]:
    return {
        "matches": {"decision": legacy == new, "grade": True, "score": False, "reasons": False},
        "legacy": {
            "decision": legacy,
            "grade": lgrade,
            "score": 640,
            "reasons": ["LEGACY_R07"] if legacy == "DECLINED" else [],
            "latencyMs": 80.0,
            "reference": "LG-1",
        },
        "new": {
            "decision": new,
            "grade": ngrade,
            "score": 531,
            "reasons": ["TERM_OUTSIDE_LIMITS"] if new == "DECLINED" else [],
            "latencyMs": 0.4,
            "modelVersion": "scorecard-2.0-test",
            "policyVersion": "consumer-loan-2.0",
        },
    }


def insert(url: str, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(libpq_url(url)) as conn:
        for row in rows:
            snapshot = {
                "application": {"loan_amount": str(row["amount"]), "loan_term_months": row["term"]},
                "profile": {"monthly_income": "18500.00"},
                "shadow": row.get("shadow"),
            }
            conn.execute(
                INSERT,
                (
                    uuid.uuid4(),
                    row["client"],
                    row["amount"],
                    row["term"],
                    row["decision"],
                    row.get("score", 640),
                    row.get("grade", "C"),
                    json.dumps([{"code": c, "description": c} for c in row.get("codes", [])]),
                    row.get("engine", "legacy"),
                    "legacy",
                    "legacy",
                    json.dumps(snapshot),
                    row["at"],
                ),
            )


def test_shadow_pairs_read_from_the_database(database_url: str):
    a, b, c = client_id(1), client_id(2), client_id(3)
    insert(
        database_url,
        [
            # before the window: makes client a "existing"
            {
                "client": a,
                "amount": 5000,
                "term": 12,
                "decision": "APPROVED",
                "at": T0 - timedelta(days=30),
                "shadow": shadow("APPROVED", "APPROVED"),
            },
            {
                "client": a,
                "amount": 20000,
                "term": 72,
                "decision": "APPROVED",
                "at": T0,
                "shadow": shadow("APPROVED", "DECLINED", ngrade="D"),
            },
            {
                "client": b,
                "amount": 60000,
                "term": 24,
                "decision": "DECLINED",
                "at": T0 + timedelta(minutes=5),
                "shadow": shadow("DECLINED", "DECLINED"),
            },
            {
                "client": c,
                "amount": 9000,
                "term": 36,
                "decision": "APPROVED",
                "at": T0 + timedelta(minutes=9),
                "shadow": None,
            },  # no shadow: not a pair
            {
                "client": c,
                "amount": 9000,
                "term": 36,
                "decision": "APPROVED",
                "at": T0 + timedelta(minutes=10),
                "engine": "new",
            },  # decided by the new engine
        ],
    )
    pairs = shadow_pairs(database_url, T0, None, None, {"R07": "INCOME_INSUFFICIENT"})
    assert len(pairs) == 2
    first, second = sorted(pairs, key=lambda p: p.application.decided_at)
    assert (first.legacy.decision, first.new.decision, first.new.grade) == (
        "APPROVED",
        "DECLINED",
        "D",
    )
    assert first.application.existing_client and not second.application.existing_client
    assert first.application.loan_term == 72 and first.application.loan_amount == 20000.0
    assert second.legacy.reasons == {"INCOME_INSUFFICIENT"}
    assert second.new.reasons == {"TERM_OUTSIDE_LIMITS"}
    assert (first.legacy.scale, first.new.scale, first.new.version) == (
        "legacy",
        "new",
        "scorecard-2.0-test",
    )
    assert len(shadow_pairs(database_url, None, None, None, {})) == 3
    assert len(shadow_pairs(database_url, None, None, 1, {})) == 1

    config = parse_config(
        {
            "expected_changes": [
                {
                    "id": "term-over-60",
                    "description": "terms over 60 declined",
                    "when": {"loan_term_gt": 60, "new_decision": "DECLINED"},
                    "reason": "policy 2.0",
                    "expires": "2099-01-01",
                }
            ]
        }
    )
    result = run_validation(ValidateRequest(database_url=database_url, since=T0), config)
    assert (result.source.kind, result.pairs, result.expected, result.unexplained.events) == (
        "shadow",
        2,
        1,
        0,
    )
    assert str(a) not in render_markdown(result)


def _legacy_rows(count: int) -> list[dict[str, Any]]:
    decisions = ("APPROVED", "DECLINED", "REFER")
    return [
        {
            "client": client_id(i),
            "amount": 2000 + 750 * i,
            "term": 6 + (i * 7) % 60,
            "decision": decisions[i % 3],
            "score": 450 + (i * 37) % 400,
            "grade": "ABCDE"[i % 5],
            "codes": ["LEGACY_R01"] if i % 3 == 1 else [],
            "at": T0 + timedelta(minutes=i),
        }
        for i in range(count)
    ]


def _count(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM assessments").fetchone()
    assert row is not None
    return int(row[0])


def test_replay_of_stored_applications_through_the_running_service(
    database_url: str, live_server: LiveServer, token: str
):
    insert(database_url, _legacy_rows(60))
    rows = stored_applications(database_url, None, None, None, {})
    assert len(rows) == 60 and rows[0].legacy.scale == "legacy"
    request = ValidateRequest(database_url=database_url, service_url=live_server.url, token=token)
    result = run_validation(request, parse_config({"replay": {"concurrency": 8}}))
    assert (result.source.kind, result.source.requested, result.pairs, result.unanswered) == (
        "replay-database",
        60,
        60,
        0,
    )
    assert sum(sum(row.values()) for row in result.agreement.values()) == 60
    assert result.scores.scored == 60 and result.scores.same_scale == 0
    assert _count(database_url) == 60  # evaluate stored nothing


def test_replay_of_an_export_counts_unknown_clients_as_unanswered(
    database_url: str, live_server: LiveServer, token: str, tmp_path: Path
):
    lines = [",".join(REQUIRED)]
    for i in range(30):
        lines.append(
            f"A-{i},{client_id(i)},{5000 + 1000 * i},{12 + i % 48},"
            f"{('APPROVE', 'DECLINE', 'REVIEW')[i % 3]},{500 + 10 * i},B,R01,"
            f"2026-03-01T09:{i:02d}:00Z"
        )
    lines.append(f"A-x,{uuid.uuid4()},5000,12,APPROVE,600,B,,2026-03-01T10:00:00Z")
    export = tmp_path / "legacy.csv"
    export.write_text("\n".join(lines) + "\n")
    request = ValidateRequest(export=export, service_url=live_server.url, token=token)
    result = run_validation(request, parse_config({}))
    assert (result.pairs, result.unanswered) == (30, 1)
    assert result.source.unanswered[0].cause == "HTTP 422 (unknown client)"
    assert result.source.unanswered[0].application.startswith("a-")
    assert any("1 of 31 applications unanswered" in f for f in result.failures())
