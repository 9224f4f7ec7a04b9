"""A service whose scorecard cannot be loaded refuses to become ready and refuses to decide."""

from __future__ import annotations

from pathlib import Path

import pytest

from credit_assessment.api.app import create_app
from credit_assessment.model.artifact import DEFAULT_PATH
from credit_assessment.seed import SMOKE_CLIENT_ID
from tests.conftest import make_settings
from tests.integration.conftest import TransactionDatabase, count_rows, running


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: text.replace('"points"', '"pointz"', 1),  # edited
        lambda _: "",  # empty
    ],
    ids=["truncated", "edited", "empty"],
)
async def test_corrupted_model_keeps_the_service_unready(
    tx_database: TransactionDatabase, tmp_path: Path, token: str, damage: object
) -> None:
    broken = tmp_path / "scorecard.json"
    broken.write_text(damage(DEFAULT_PATH.read_text(encoding="utf-8")), encoding="utf-8")  # type: ignore[operator]
    app = create_app(make_settings(tmp_path, None, model_path=broken), database=tx_database)
    async with running(app) as client:
        ready = await client.get("/ready")
        assessed = await client.post(
            "/api/v1/assessment",
            json={"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert ready.status_code == 503
    model_check = ready.json()["checks"]["model"]
    assert model_check.startswith("not loaded") and "scorecard.json" in model_check
    assert assessed.status_code == 503
    assert "model" in assessed.json()["detail"]
    assert await count_rows(tx_database, "assessments") == 0
