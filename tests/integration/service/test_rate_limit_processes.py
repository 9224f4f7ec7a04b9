"""Rate limiting across service instances: two ``credit-assessment serve`` processes on their own
ports share one real Redis. Requests of one token subject sent to both at once are admitted up to
the limit in total, not twice it; the rest are 429 with a ``Retry-After`` that says when the window
ends; another subject has a limit of its own. When Redis goes away each process goes on counting
on its own, and nothing fails.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from credit_assessment.api.auth import mint_token
from credit_assessment.seed import SMOKE_CLIENT_ID
from tests.conftest import LiveServer, make_settings, start_server
from tests.integration.conftest import RedisProcess

pytestmark = pytest.mark.slow

EVALUATE = "/api/v1/assessment/evaluate"
BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}
LIMIT = 40  # RATE_LIMIT_REQUESTS
WINDOW_S = 300  # RATE_LIMIT_WINDOW_S: windows aligned on the wall clock
PER_INSTANCE = 60  # each subject sends 1.5 times the limit to each instance: 3 times in all
BATCH = 4  # requests to each instance at once
MARGIN_S = 10  # the test's requests never straddle two windows


@pytest.fixture
def instances(
    tmp_path: Path, database_url: str, redis_server: RedisProcess
) -> Iterator[list[LiveServer]]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "RATE_LIMIT_REQUESTS": str(LIMIT),
        "RATE_LIMIT_WINDOW_S": str(WINDOW_S),
    }
    homes = [tmp_path / "one", tmp_path / "two"]
    for home in homes:
        home.mkdir()
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(start_server, home, env, 1) for home in homes]
    servers = [future.result() for future in started if future.exception() is None]
    if len(servers) < len(started):  # one did not start: stop the other, then say why
        for server in servers:
            server.stop()
        next(f for f in started if f.exception() is not None).result()
    yield servers
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(LiveServer.stop, servers))


def window_end(now: float) -> float:
    return (math.floor(now / WINDOW_S) + 1) * WINDOW_S


def wait_for_a_fresh_window() -> None:
    left = window_end(time.time()) - time.time()
    if left < MARGIN_S:
        time.sleep(left + 0.05)


async def send(
    urls: list[str], token: str, per_instance: int
) -> dict[str, list[tuple[httpx.Response, float, float]]]:
    """``per_instance`` requests to each instance, in rounds of ``BATCH`` to each at once, so
    both instances count throughout: (answer, sent at, answered at)."""
    headers = {"Authorization": f"Bearer {token}"}
    answers: dict[str, list[tuple[httpx.Response, float, float]]] = {url: [] for url in urls}

    async def one(client: httpx.AsyncClient) -> tuple[httpx.Response, float, float]:
        sent = time.time()
        answer = await client.post(EVALUATE, json=BODY, headers=headers)
        return answer, sent, time.time()

    clients = [httpx.AsyncClient(base_url=url, timeout=10) for url in urls]
    try:
        for _ in range(per_instance // BATCH):
            rounds = await asyncio.gather(
                *(asyncio.gather(*(one(client) for _ in range(BATCH))) for client in clients)
            )
            for url, part in zip(urls, rounds, strict=True):
                answers[url].extend(part)
    finally:
        for client in clients:
            await client.aclose()
    return answers


def admitted(answers: dict[str, list[tuple[httpx.Response, float, float]]]) -> dict[str, int]:
    return {url: sum(a.status_code == 200 for a, _, _ in part) for url, part in answers.items()}


def refused_count(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("credit_assessment_rate_limited_total "):
            return float(line.split()[1])
    raise AssertionError("credit_assessment_rate_limited_total is not exported")


def test_two_instances_sharing_redis_hold_one_limit_per_subject(
    instances: list[LiveServer], tmp_path: Path, redis_server: RedisProcess
) -> None:
    urls = [server.url for server in instances]
    settings = make_settings(tmp_path, None)
    first, second = (mint_token(settings, s, 600) for s in ("client-app-1", "client-app-2"))
    wait_for_a_fresh_window()

    answers = asyncio.run(send(urls, first, PER_INSTANCE))
    by_instance = admitted(answers)
    total = sum(by_instance.values())
    assert abs(total - LIMIT) <= 0.1 * LIMIT, by_instance  # the combined limit, within 10%
    assert all(0 < n < LIMIT for n in by_instance.values()), by_instance  # both counted, shared
    refused = [row for part in answers.values() for row in part if row[0].status_code != 200]
    assert len(refused) == 2 * PER_INSTANCE - total
    for answer, sent, got in refused:
        assert answer.status_code == 429
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("rate-limited")
        # The seconds until the window ends, as the instance saw it between sending and answer.
        retry_after = int(answer.headers["retry-after"])
        assert 1 <= retry_after <= WINDOW_S
        assert math.ceil(window_end(got) - got) <= retry_after <= math.ceil(window_end(sent) - sent)
    assert sum(refused_count(url) for url in urls) == len(refused)

    # Another subject, in the same window: a limit of its own, held across both instances.
    other = admitted(asyncio.run(send(urls, second, PER_INSTANCE)))
    assert abs(sum(other.values()) - LIMIT) <= 0.1 * LIMIT, other

    # Redis goes away: each instance counts on its own (at most the limit each), none fails.
    redis_server.stop()
    third = mint_token(settings, "client-app-3", 600)
    alone = asyncio.run(send(urls, third, PER_INSTANCE))
    statuses = {a.status_code for part in alone.values() for a, _, _ in part}
    assert statuses <= {200, 429}, statuses
    # The limit per process, as ratelimit.py documents: better than refusing every request.
    assert admitted(alone) == dict.fromkeys(urls, LIMIT)
    assert all(httpx.get(f"{url}/ready", timeout=5).status_code == 200 for url in urls)
