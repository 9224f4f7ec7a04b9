"""Signing keys rotated without a restart, over HTTP through a running ``credit-assessment serve``.

The service verifies RS256 tokens against the JWKS of a loopback identity provider whose key set
the test changes and whose fetches it counts. An open-loop load of 200 requests/s, each with a
token of its own (none answered from the service's token cache), runs through a rotation: the
new key published beside the old, the tokens then signed with the new key, the old key removed.
Then a flood of 1,000 tokens with random ``kid``s.

The rule the timeline follows (and docs/deploy.md states): the provider publishes a new key at
least ``JWT_JWKS_MIN_REFETCH_S`` before it signs with it. The service's last fetch was then either
after the publication (it holds the key) or more than that long before the first token with the
new ``kid`` (that token fetches the set again), so no valid token is refused.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import secrets
import time
from pathlib import Path

import httpx
import pytest

from credit_assessment.seed import SMOKE_CLIENT_ID
from golive.load import BackgroundLoad, LoadPlan, run_load
from tests.conftest import start_server
from tests.identity_provider import Provider, SigningKey, serving

pytestmark = pytest.mark.slow

EVALUATE = "/api/v1/assessment/evaluate"
BODY = (
    b'{"clientId": "' + str(SMOKE_CLIENT_ID).encode() + b'", "loanAmount": 50000, "loanTerm": 12}'
)
MIN_REFETCH_S = 1.5  # JWT_JWKS_MIN_REFETCH_S: an unknown kid fetches the set at most this often
RATE_PER_S = 200
FLOOD = 1000


def evaluate(url: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{url}{EVALUATE}",
        content=BODY,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=10,
    )


def test_a_rotation_under_200_requests_a_second_and_a_flood_of_random_kids(
    tmp_path: Path, database_url: str
) -> None:
    old, new = SigningKey.new("key-2026-11"), SigningKey.new("key-2026-12")
    provider = Provider()
    provider.published = [old]
    # Which key the load signs with (0: old, 1: new); shared with the forked load process.
    signing = multiprocessing.get_context("fork").Value("b", 0)

    def authorization(index: int) -> dict[str, str]:
        key = new if signing.value else old
        return {"Authorization": f"Bearer {key.token()}"}

    with serving(provider) as jwks_url:
        server = start_server(
            tmp_path,
            {
                "DATABASE_URL": database_url,
                "JWT_ALGORITHM": "RS256",
                "JWT_JWKS_URL": jwks_url,
                "JWT_JWKS_MIN_REFETCH_S": str(MIN_REFETCH_S),
                "JWT_JWKS_MAX_AGE_S": "3600",
            },
            workers=1,  # one key set: each worker process fetches its own
        )
        try:
            # The first token fetches the set (fetch 1), before its answer.
            assert evaluate(server.url, old.token()).status_code == 200
            assert provider.fetches == 1

            plan = LoadPlan(
                server.url,
                EVALUATE,
                rate_per_s=RATE_PER_S,
                duration_s=60,  # an upper bound: stopped once the rotation is done
                method="POST",
                body=lambda index: BODY,
                headers={"Content-Type": "application/json"},
                headers_of=authorization,
                connections=16,
            )
            load = BackgroundLoad(plan).start()
            time.sleep(0.8)
            provider.published = [old, new]  # 1. the new key published beside the old
            time.sleep(MIN_REFETCH_S + 0.1)
            signing.value = 1  # 2. signing with the new key, as long after publication
            time.sleep(0.8)
            provider.published = [new]  # 3. the old key removed
            time.sleep(0.8)
            result = load.stop()

            statuses = result.statuses()
            assert statuses[401] == 0, statuses
            assert statuses == {200: result.count}, statuses  # every request answered 200
            assert result.count >= RATE_PER_S * 3  # over 3 s at 200 requests/s
            # The first fetch, then one for the first token with the new kid; no other.
            assert provider.fetches == 2

            # A flood of tokens with random kids, signed with the real key: each refused, and
            # the fetches it causes bounded by the refetch interval, whatever the request count.
            flood = [new.token(kid=secrets.token_hex(8)) for _ in range(FLOOD)]
            before = provider.fetches
            flood_plan = LoadPlan(
                server.url,
                EVALUATE,
                rate_per_s=2000,
                duration_s=FLOOD / 2000,
                method="POST",
                body=lambda index: BODY,
                headers={"Content-Type": "application/json"},
                headers_of=lambda index: {"Authorization": f"Bearer {flood[index]}"},
                connections=32,
            )
            flooded = asyncio.run(run_load(flood_plan))
            during = provider.fetches - before
            assert flooded.count == FLOOD
            assert flooded.statuses() == {401: FLOOD}
            # Fetches are at least MIN_REFETCH_S apart, all within the flood's span: at most
            # 1 + floor(span / MIN_REFETCH_S) of them (1 when the flood is shorter than that).
            bound = 1 + math.floor(flooded.elapsed_s / MIN_REFETCH_S)
            # The flood began more than MIN_REFETCH_S after the last fetch: its first unknown
            # kid fetched the set (the one without the old key), at once.
            assert 1 <= during <= bound, (during, flooded.elapsed_s)
            assert bound <= 4  # a handful: the flood lasts seconds, not minutes

            # The rotation is complete: the new key verifies, the removed one no longer does
            # (the flood's fetch brought the set without it).
            assert evaluate(server.url, new.token()).status_code == 200
            refused = evaluate(server.url, old.token())
            assert refused.status_code == 401
            assert "signing key is not known" in refused.json()["detail"]
        finally:
            server.stop()
