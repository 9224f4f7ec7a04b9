"""Databases at the previous release's schema (0001) with clients and assessments, for rehearsing
the v2 migration against real PostgreSQL; the migration command as the service ships it."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import psycopg
import pytest

from credit_assessment.store import schema
from tests.conftest import PostgresServer, seed_template

V1_TEMPLATE = "ca_template_v1"
ASSESSMENTS = 3000
# The service's migration entry point, with DATABASE_URL from golive (the same as
# `credit-assessment db upgrade --phase ...`).
EXPAND = (sys.executable, "-m", "credit_assessment.store.schema", "--phase", "expand")
CONTRACT = (sys.executable, "-m", "credit_assessment.store.schema", "--phase", "contract")

SEED_ASSESSMENTS = """
INSERT INTO assessments (id, client_id, loan_amount, loan_term, decision, score, risk_grade,
    reasons, engine, model_version, policy_version, offer_amount, monthly_instalment,
    input_snapshot, request_id, created_at)
SELECT gen_random_uuid(), ids[1 + g %% cardinality(ids)], 1000 + (g %% 50) * 100, 6 + g %% 30,
    (ARRAY['APPROVED', 'DECLINED', 'REFER', 'COUNTER_OFFER'])[1 + g %% 4], 450 + g %% 300,
    (ARRAY['A', 'B', 'C', 'D'])[1 + g %% 4],
    jsonb_build_array(jsonb_build_object('code', 'R' || (g %% 7), 'description', 'reason')),
    'new', 'scorecard-1', 'policy-1', NULL, 120.50, '{"application": {}}'::jsonb,
    'seed-' || g, now() - make_interval(mins => 10 + g %% 5000)
FROM generate_series(1, %(n)s) AS g, (SELECT array_agg(id ORDER BY id) AS ids FROM clients) AS c
"""


def seed_assessments(url: str, n: int) -> None:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        conn.execute(SEED_ASSESSMENTS, {"n": n})


@pytest.fixture(scope="session")
def v1_template(postgres: PostgresServer) -> str:
    url = postgres.create(V1_TEMPLATE, template=None)
    schema.upgrade(url, revision="0001")
    seed_template(url)
    seed_assessments(url, ASSESSMENTS)
    return V1_TEMPLATE


@pytest.fixture
def v1_url(postgres: PostgresServer, v1_template: str) -> str:
    """A database of its own at schema 0001 with 200 clients and 3000 assessments."""
    return postgres.create(f"v1_{__import__('uuid').uuid4().hex[:10]}", template=v1_template)


@pytest.fixture
def conn_of() -> Iterator[object]:
    opened: list[psycopg.Connection] = []

    def open_(url: str, autocommit: bool = True) -> psycopg.Connection:
        conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=autocommit)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()
