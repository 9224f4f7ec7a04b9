"""The service decides with the bureau's report, and never approves when the bureau is down."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from credit_assessment.api.app import create_app
from credit_assessment.seed import SMOKE_CLIENT_ID
from tests.conftest import make_settings
from tests.integration.bureau.conftest import EMULATOR_KEY, EmulatorProcess
from tests.integration.conftest import TransactionDatabase, running

BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}


async def test_decisions_use_the_bureau_and_refer_when_it_fails(
    tx_database: TransactionDatabase,
    tmp_path: Path,
    token: str,
    emulator: EmulatorProcess,
) -> None:
    settings = make_settings(
        tmp_path,
        None,
        bureau_url=emulator.url,
        bureau_api_key=SecretStr(EMULATOR_KEY),
        bureau_stale_period_s=0,
        bureau_timeout_s=0.5,
        bureau_retries=0,
    )
    app = create_app(settings, database=tx_database)
    headers = {"Authorization": f"Bearer {token}"}
    async with running(app) as client:
        healthy = await client.post("/api/v1/assessment", json=BODY, headers=headers)
        emulator.control(mode="error")
        down = await client.post("/api/v1/assessment", json=BODY, headers=headers)
        metrics = (await client.get("/metrics")).text
    assert healthy.status_code == down.status_code == 201
    assert healthy.json()["decision"] == "APPROVED"
    assert down.json()["decision"] == "REFER"
    assert "BUREAU_UNAVAILABLE" in {r["code"] for r in down.json()["reasons"]}
    assert 'credit_assessment_bureau_requests_total{outcome="ok"} 1.0' in metrics
    assert 'credit_assessment_bureau_requests_total{outcome="error"} 1.0' in metrics
    assert EMULATOR_KEY not in metrics
