"""The legacy system emulator: its rules (tables) and its HTTP contract (a real process)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from golive.rehearsal.legacy import (
    COLUMNS,
    REASONS,
    Client,
    ClientsFileError,
    decide,
    flat_instalment,
    load_clients,
)
from golive.rehearsal.standin import is_loopback
from tests.integration.monitoring.conftest import ManagedProcess
from tests.integration.traffic.conftest import free_port

STEADY = Client(20_000.0, 1_000.0, False, "fixed", 8)


@pytest.mark.parametrize(
    ("client", "amount", "term", "outcome", "codes"),
    [
        (None, 10_000, 12, "REVIEW", ("NO_RECORD",)),
        (STEADY, 50_000, 84, "DECLINE", ("TERM_OUT_OF_RANGE",)),  # legacy allows up to 72
        (STEADY, 50_000, 72, "APPROVE", ()),  # the new policy's limit is 60: a known difference
        (STEADY, 400_000, 24, "DECLINE", ("AMOUNT_OUT_OF_RANGE",)),
        (Client(20_000.0, 0.0, True, "fixed", 8), 10_000, 12, "DECLINE", ("DELINQUENCY",)),
        (Client(None, 0.0, False, "fixed", 8), 10_000, 12, "REVIEW", ("INCOME_NOT_VERIFIED",)),
        (STEADY, 200_000, 12, "DECLINE", ("INSUFFICIENT_INCOME",)),
        (
            Client(20_000.0, 6_000.0, False, "fixed", 8),
            80_000,
            12,
            "DECLINE",
            ("INSUFFICIENT_INCOME", "HIGH_DEBT_RATIO"),
        ),
        (Client(5_000.0, 1_500.0, False, None, 0), 20_000, 24, "DECLINE", ("LOW_SCORE",)),
        (
            Client(20_000.0, 1_000.0, False, "freelance", 0),
            20_000,
            24,
            "REVIEW",
            ("EMPLOYMENT_UNVERIFIED",),
        ),
    ],
)
def test_legacy_rules(client, amount, term, outcome, codes) -> None:
    decision = decide(client, amount, term)
    assert (decision.outcome, decision.reason_codes) == (outcome, codes)
    assert 300 <= decision.score <= 850
    assert decision.grade in "ABCDE"
    assert set(decision.reason_codes) <= set(REASONS)


def test_flat_instalment_by_hand() -> None:
    # 12,000 over 12 months at 25% flat: 12,000 x 1.25 / 12 = 1,250
    assert flat_instalment(12_000, 12) == 1250.0


def test_clients_file_formats(tmp_path: Path) -> None:
    csv_file = tmp_path / "clients.csv"
    csv_file.write_text(
        ",".join(COLUMNS) + "\n"
        "3F2504E0-4F89-11D3-9A0C-0305E82C3301,12500,800,false,fixed,4\n"
        "3f2504e0-4f89-11d3-9a0c-0305e82c3302,,0,true,,\n"
    )
    clients = load_clients(csv_file)
    assert clients["3f2504e0-4f89-11d3-9a0c-0305e82c3301"] == Client(
        12500.0, 800.0, False, "fixed", 4
    )
    assert clients["3f2504e0-4f89-11d3-9a0c-0305e82c3302"] == Client(None, 0.0, True, None, None)
    lines = tmp_path / "clients.jsonl"
    lines.write_text('{"client_id": "a", "monthly_income": 100, "has_delinquency": false}\n\n')
    assert load_clients(lines)["a"].monthly_income == 100.0
    (tmp_path / "bad.csv").write_text("client_id,monthly_income\nx,1\n")
    with pytest.raises(ClientsFileError, match=r"bad.csv:1: missing column"):
        load_clients(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text('{"client_id": "a", "monthly_income": -5}\n')
    with pytest.raises(ClientsFileError, match=r"bad.jsonl:1: bad record"):
        load_clients(tmp_path / "bad.jsonl")


def test_control_is_loopback_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("10.0.0.8") and not is_loopback("")


@pytest.fixture
def legacy(tmp_path: Path):
    clients = tmp_path / "clients.csv"
    clients.write_text(
        ",".join(COLUMNS) + "\n11111111-1111-4111-8111-111111111111,20000,1000,false,fixed,8\n"
    )
    port = free_port()
    env = dict(os.environ, LEGACY_TOKEN="legacy-token-1")
    process = ManagedProcess.start(
        "legacy",
        [
            sys.executable,
            "-m",
            "golive.rehearsal.legacy",
            "--port",
            str(port),
            "--clients",
            str(clients),
            "--token-env",
            "LEGACY_TOKEN",
            "--seed",
            "1",
        ],
        tmp_path / "legacy.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http_ok(f"{url}/legacy/health")
        with httpx.Client(
            base_url=url, headers={"Authorization": "Bearer legacy-token-1"}, timeout=10
        ) as client:
            yield client
    finally:
        process.stop()


@pytest.mark.slow
def test_legacy_over_http(legacy: httpx.Client) -> None:
    body = {"client_id": "11111111-1111-4111-8111-111111111111", "amount": 50000, "term_months": 24}
    answer = legacy.post("/legacy/credit/evaluate", json=body)
    assert answer.status_code == 200
    document = answer.json()
    assert document["outcome"] == "APPROVE" and document["reason_codes"] == []
    assert document["reference"].startswith("LGC") and document["grade"] in "ABCDE"
    assert 300 <= document["score"] <= 850
    unknown = legacy.post("/legacy/credit/evaluate", json=body | {"client_id": "nobody"}).json()
    assert (unknown["outcome"], unknown["reason_codes"]) == ("REVIEW", ["NO_RECORD"])

    bad = legacy.post("/legacy/credit/evaluate", json=body | {"term_months": "12"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_REQUEST"
    assert "term_months" in bad.json()["message"]
    unauthorised = httpx.post(f"{legacy.base_url}/legacy/credit/evaluate", json=body, timeout=5)
    assert unauthorised.status_code == 401

    assert legacy.post("/control", json={"failure_rate": 1.0}).status_code == 200
    assert legacy.post("/legacy/credit/evaluate", json=body).status_code == 503
    assert legacy.post("/control", json={"failure_rate": 0, "latency_ms": 300}).status_code == 200
    started = time.perf_counter()
    assert legacy.post("/legacy/credit/evaluate", json=body).status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert legacy.post("/control", json={"latency_ms": -1}).status_code == 400
    state = legacy.post("/control", json={"reset": True}).json()
    assert state == {"latency_ms": 0, "failure_rate": 0.0, "counts": {}}
    assert legacy.get("/control").json()["counts"] == {}
