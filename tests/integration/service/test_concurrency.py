"""Concurrent requests on real connection pools: retries never duplicate, commits are shared."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import sqlalchemy as sa

from credit_assessment.api.app import create_app
from credit_assessment.seed import SMOKE_CLIENT_ID, client_id
from credit_assessment.store.schema import sync_url
from tests.conftest import make_settings
from tests.integration.conftest import running

BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}


def _count(url: str, query: str) -> int:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text(query)) or 0)
    finally:
        engine.dispose()


async def test_concurrent_retries_with_one_key_store_one_assessment(
    database_url: str, tmp_path: Path, token: str
) -> None:
    # Two app instances with their own pools stand for two worker processes.
    apps = [create_app(make_settings(tmp_path, database_url)) for _ in range(2)]
    headers = {
        "Authorization": f"Bearer {token}",
        "Idempotency-Key": "concurrent-" + uuid.uuid4().hex,
    }
    async with running(apps[0]) as first, running(apps[1]) as second:
        responses = await asyncio.gather(
            *(
                (first if i % 2 else second).post("/api/v1/assessment", json=BODY, headers=headers)
                for i in range(40)
            )
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == 39
    assert len({r.json()["id"] for r in responses}) == 1
    assert _count(database_url, "SELECT count(*) FROM assessments") == 1
    assert _count(database_url, "SELECT count(*) FROM idempotency_keys") == 1


async def test_concurrent_requests_share_commits_and_all_are_durable(
    database_url: str, tmp_path: Path, token: str
) -> None:
    app = create_app(make_settings(tmp_path, database_url, group_commit_writers=1))
    headers = {"Authorization": f"Bearer {token}"}
    async with running(app) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/assessment",
                    json={
                        "clientId": str(client_id(i % 50)),
                        "loanAmount": 10000 + i,
                        "loanTerm": 24,
                    },
                    headers=headers,
                )
                for i in range(200)
            )
        )
        metrics = (await client.get("/metrics")).text
    assert [r.status_code for r in responses] == [201] * 200
    ids = {r.json()["id"] for r in responses}
    stored = _count(database_url, "SELECT count(*) FROM assessments")
    assert stored == len(ids) == 200
    batches = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("credit_assessment_group_commit_batch_size_count")
    )
    assert batches < 200  # several requests rode in one commit


async def test_writer_refuses_work_after_shutdown_with_503(
    database_url: str, tmp_path: Path, token: str
) -> None:
    app = create_app(make_settings(tmp_path, database_url))
    async with running(app) as client:
        await app.api.state.runtime.writer.stop()
        r = await client.post(
            "/api/v1/assessment", json=BODY, headers={"Authorization": f"Bearer {token}"}
        )
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert _count(database_url, "SELECT count(*) FROM assessments") == 0


async def test_ready_names_the_failing_checks(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A database with no schema: reachable, but not at the expected revision.
    empty = postgres.create(f"empty_{uuid.uuid4().hex[:8]}", template=None)
    app = create_app(make_settings(tmp_path, empty))
    async with running(app) as client:
        r = await client.get("/ready")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert "not compatible" in r.json()["checks"]["schema"]

    # A database that cannot be reached.
    unreachable = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    app = create_app(make_settings(tmp_path, unreachable))
    async with running(app) as client:
        r = await client.get("/ready")
        assert (await client.get("/health")).status_code == 200
    assert r.status_code == 503
    assert r.json()["checks"]["database"].startswith("unreachable")


async def test_a_slot_can_stand_in_for_the_previous_release(postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from credit_assessment.store import schema

    url = postgres.create(f"v1_{uuid.uuid4().hex[:8]}", template=None)
    schema.upgrade(url, revision="0001")
    current = create_app(make_settings(tmp_path, url))
    previous = create_app(make_settings(tmp_path, url, expected_schema_revision="0001"))
    async with running(current) as client:
        assert (await client.get("/ready")).status_code == 503  # this code needs the expand head
    async with running(previous) as client:
        assert (await client.get("/ready")).status_code == 200
    schema.upgrade(url, phase="expand")
    previous = create_app(make_settings(tmp_path, url, expected_schema_revision="0001"))
    async with running(previous) as client:
        assert (await client.get("/ready")).status_code == 200  # expanded ahead: still compatible
