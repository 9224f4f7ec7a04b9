"""Rate limiting per token subject on the assessment endpoints, over ASGI against real
PostgreSQL: 429 with Retry-After and a problem+json body, counted in a metric, never on /health,
/ready or /metrics. Two service processes sharing a real Redis hold the combined limit in
test_rate_limit_processes.py."""

from __future__ import annotations

from pathlib import Path

from credit_assessment.api.app import create_app
from credit_assessment.api.auth import mint_token
from credit_assessment.seed import SMOKE_CLIENT_ID
from tests.conftest import make_settings
from tests.integration.conftest import TransactionDatabase, running

BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}
EVALUATE = "/api/v1/assessment/evaluate"
DAY_S = 86_400.0  # one window for the whole test: the counts never reset under it


def bearer(tmp_path: Path, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(make_settings(tmp_path, None), subject, 600)}"}


async def test_over_the_limit_a_subject_gets_429_with_retry_after(
    tx_database: TransactionDatabase, tmp_path: Path
):
    settings = make_settings(tmp_path, None, rate_limit_requests=3, rate_limit_window_s=DAY_S)
    app = create_app(settings, database=tx_database)
    first, second = bearer(tmp_path, "client-app-1"), bearer(tmp_path, "client-app-2")
    async with running(app) as client:
        answers = [(await client.post(EVALUATE, json=BODY, headers=first)) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        refused = answers[3]
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) >= 1
        problem = refused.json()
        assert problem["status"] == 429 and problem["type"].endswith("rate-limited")
        assert "At most 3 requests" in problem["detail"]
        assert (await client.post(EVALUATE, json=BODY, headers=second)).status_code == 200
        for path in ("/health", "/ready", "/metrics"):
            for _ in range(5):
                assert (await client.get(path)).status_code == 200, path
        metrics = (await client.get("/metrics")).text
        assert "credit_assessment_rate_limited_total 1.0" in metrics
