"""The strangler in the service: the flag picks the engine per client, legacy answers are
stored and shadowed by the new engine, and a failing legacy system fails over."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from credit_assessment.api.app import create_app
from credit_assessment.seed import client_id
from tests.conftest import free_port, make_settings
from tests.integration.conftest import TransactionDatabase, running
from tests.unit.routing.test_flags import flag_document


class FakeLegacy:
    """A small legacy system on a real port: approves up to 100,000, else declines."""

    def __init__(self) -> None:
        self.fail = False
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls += 1
        if self.fail:
            status, document = 500, {"error": "down"}
        else:
            request = json.loads(body)
            approve = request["amount"] <= 100_000
            document = {
                "reference": f"L-{self.calls}",
                "outcome": "APPROVE" if approve else "DECLINE",
                "score": 700 if approve else 480,
                "grade": "B" if approve else "E",
                "reason_codes": [] if approve else ["R12"],
            }
            status = 200
        payload = json.dumps(document).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def legacy() -> Iterator[tuple[FakeLegacy, str]]:
    app = FakeLegacy()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def write_flags(path: Path, weight: int) -> None:
    path.write_text(json.dumps(flag_document(weight)), encoding="utf-8")
    stamp = time.time() + weight  # a new mtime for every write
    os.utime(path, (stamp, stamp))


async def post(
    client: httpx.AsyncClient, token: str, who: int, amount: int = 50_000
) -> httpx.Response:
    return await client.post(
        "/api/v1/assessment",
        json={"clientId": str(client_id(who)), "loanAmount": amount, "loanTerm": 12},
        headers={"Authorization": f"Bearer {token}"},
    )


def routed_app(
    tmp_path: Path, db: TransactionDatabase, legacy_url: str, weight: int, **extra: object
) -> Any:
    flags = tmp_path / "flags.json"
    write_flags(flags, weight)
    settings = make_settings(
        tmp_path, None, legacy_url=legacy_url, flag_file=flags, flag_poll_s=0.05, **extra
    )
    return create_app(settings, database=db), flags


async def test_flag_at_zero_sends_everyone_to_legacy_with_a_shadow(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, legacy: tuple[FakeLegacy, str]
) -> None:
    app, _ = routed_app(tmp_path, tx_database, legacy[1], 0)
    async with running(app) as client:
        responses = [
            await post(client, token, i, amount) for i, amount in ((1, 50_000), (2, 400_000))
        ]
        metrics = (await client.get("/metrics")).text
        flags = (await client.get("/flags")).json()
        ready = (await client.get("/ready")).json()
    assert [r.status_code for r in responses] == [201, 201]
    assert {r.json()["engine"] for r in responses} == {"legacy"}
    assert [r.json()["decision"] for r in responses] == ["APPROVED", "DECLINED"]
    assert flags["flags"]["new-credit-assessment-enabled"]["weightPercent"] == 0
    assert len(flags["flagSetVersion"]) == 12
    assert ready["checks"]["flags"] == "ok"
    assert 'credit_assessments_total{decision="APPROVED",engine="legacy"} 1.0' in metrics
    assert 'credit_assessment_legacy_requests_total{outcome="ok"} 2.0' in metrics
    shadowed = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("credit_assessment_shadow_comparisons_total{") and 'field="all"' in line
    )
    assert shadowed == 2
    async with tx_database.connect() as conn:
        snapshots = (
            (await conn.execute(sa.text("SELECT input_snapshot FROM assessments"))).scalars().all()
        )
    assert all(s["shadow"]["new"]["decision"] for s in snapshots)
    assert all(s["shadow"]["legacy"]["decision"] in {"APPROVED", "DECLINED"} for s in snapshots)


async def test_weight_changes_move_clients_and_each_client_sticks(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, legacy: tuple[FakeLegacy, str]
) -> None:
    app, flags = routed_app(tmp_path, tx_database, legacy[1], 50)
    async with running(app) as client:
        first = {i: (await post(client, token, i)).json()["engine"] for i in range(40)}
        again = {i: (await post(client, token, i)).json()["engine"] for i in range(40)}
        assert first == again
        assert set(first.values()) == {"new", "legacy"}
        write_flags(flags, 100)
        for _ in range(100):
            state = (await client.get("/flags")).json()
            if state["flags"]["new-credit-assessment-enabled"]["weightPercent"] == 100:
                break
            await asyncio.sleep(0.05)
        after = {i: (await post(client, token, i)).json()["engine"] for i in range(40)}
    assert set(after.values()) == {"new"}


async def test_legacy_failure_fails_over_to_the_new_engine_and_is_counted(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, legacy: tuple[FakeLegacy, str]
) -> None:
    legacy[0].fail = True
    app, _ = routed_app(tmp_path, tx_database, legacy[1], 0)
    async with running(app) as client:
        r = await post(client, token, 3)
        metrics = (await client.get("/metrics")).text
    assert r.status_code == 201
    assert r.json()["engine"] == "new"
    assert 'credit_assessment_legacy_requests_total{outcome="error"} 1.0' in metrics


async def test_without_failover_a_legacy_outage_is_a_503_and_nothing_is_stored(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, legacy: tuple[FakeLegacy, str]
) -> None:
    legacy[0].fail = True
    app, _ = routed_app(tmp_path, tx_database, legacy[1], 0, legacy_failover=False)
    async with running(app) as client:
        r = await post(client, token, 3)
    assert r.status_code == 503
    async with tx_database.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM assessments")) == 0


async def test_missing_flag_file_keeps_the_instance_unready(
    tx_database: TransactionDatabase, tmp_path: Path, legacy: tuple[FakeLegacy, str]
) -> None:
    settings = make_settings(
        tmp_path, None, legacy_url=legacy[1], flag_file=tmp_path / "absent.json"
    )
    app = create_app(settings, database=tx_database)
    async with running(app) as client:
        ready = await client.get("/ready")
    assert ready.status_code == 503
    assert "unreadable" in ready.json()["checks"]["flags"]


async def test_rehearsal_faults_fail_slow_and_flip_the_new_path_and_are_counted(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, legacy: tuple[FakeLegacy, str]
) -> None:
    app, _ = routed_app(tmp_path, tx_database, legacy[1], 100, rehearsal_faults=True)
    async with running(app) as client:
        switched = await client.post("/rehearsal/faults", json={"errorRate": 1.0})
        assert switched.status_code == 200
        failed = await post(client, token, 5)
        await client.post("/rehearsal/faults", json={"flipTermOver": 6})
        flipped = await post(client, token, 5)
        await client.post("/rehearsal/faults", json={})
        normal = await post(client, token, 5)
        metrics = (await client.get("/metrics")).text
    assert failed.status_code == 500
    assert 'credit_assessment_decision_errors_total{engine="new"} 1.0' in metrics
    assert flipped.status_code == normal.status_code == 201
    assert flipped.json()["decision"] != normal.json()["decision"]


def test_rehearsal_faults_are_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="REHEARSAL_FAULTS"):
        make_settings(tmp_path, "postgresql://x/y", app_env="production", rehearsal_faults=True)


async def test_fault_switches_do_not_exist_unless_enabled(client: httpx.AsyncClient) -> None:
    assert (await client.post("/rehearsal/faults", json={"errorRate": 1})).status_code == 404
