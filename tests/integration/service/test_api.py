"""The assessment API end to end over ASGI, against real PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import jwt
import pytest

from credit_assessment.seed import SMOKE_CLIENT_ID, client_id
from tests.conftest import TEST_JWT_SECRET
from tests.integration.conftest import TransactionDatabase, count_rows

STORY_BODY = {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12}
RESPONSE_FIELDS = {
    "id",
    "clientId",
    "loanAmount",
    "loanTerm",
    "decision",
    "score",
    "riskGrade",
    "reasons",
    "engine",
    "modelVersion",
    "policyVersion",
    "offerAmount",
    "monthlyInstalment",
    "createdAt",
}


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


async def test_story_request_is_assessed_stored_and_readable(
    client: httpx.AsyncClient, token: str
) -> None:
    created = await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(token))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body.keys() >= RESPONSE_FIELDS
    assert body["clientId"] == str(SMOKE_CLIENT_ID)
    assert body["loanAmount"] == 50000 and body["loanTerm"] == 12
    assert body["decision"] in {"APPROVED", "DECLINED", "REFER", "COUNTER_OFFER"}
    assert body["engine"] == "new"
    assert created.headers["location"] == f"/api/v1/assessment/{body['id']}"
    assert created.headers["x-request-id"]

    read = await client.get(f"/api/v1/assessment/{body['id']}", headers=auth(token))
    assert read.status_code == 200
    assert read.json() == body


async def test_client_assessments_are_paged_newest_first(
    client: httpx.AsyncClient, token: str
) -> None:
    who = str(client_id(7))
    ids = []
    for amount in (10_000, 20_000, 30_000, 40_000, 50_000):
        r = await client.post(
            "/api/v1/assessment",
            json={"clientId": who, "loanAmount": amount, "loanTerm": 24},
            headers=auth(token),
        )
        assert r.status_code == 201
        ids.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await client.get(
            f"/api/v1/clients/{who}/assessments", params=params, headers=auth(token)
        )
        assert page.status_code == 200
        doc = page.json()
        seen += [item["id"] for item in doc["items"]]
        pages += 1
        cursor = doc["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))

    bad = await client.get(
        f"/api/v1/clients/{who}/assessments", params={"cursor": "zzz"}, headers=auth(token)
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "cursor"


async def test_idempotency_key_replays_and_rejects_reuse(
    client: httpx.AsyncClient, token: str, tx_database: TransactionDatabase
) -> None:
    key = {"Idempotency-Key": "retry-" + uuid.uuid4().hex}
    first = await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(token, **key))
    again = await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(token, **key))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await count_rows(tx_database, "assessments") == 1

    other = await client.post(
        "/api/v1/assessment", json={**STORY_BODY, "loanAmount": 60000}, headers=auth(token, **key)
    )
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await count_rows(tx_database, "assessments") == 1

    bad_key = await client.post(
        "/api/v1/assessment", json=STORY_BODY, headers=auth(token, **{"Idempotency-Key": "x" * 300})
    )
    assert bad_key.status_code == 400


async def test_same_key_from_another_subject_is_a_new_assessment(
    client: httpx.AsyncClient, token: str, tx_database: TransactionDatabase
) -> None:
    other_token = _token(sub="another-caller")
    key = {"Idempotency-Key": "shared-key"}
    a = await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(token, **key))
    b = await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(other_token, **key))
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]


BAD_BODIES = [
    ("wrong type", {**STORY_BODY, "loanAmount": "50000"}, "loanAmount"),
    ("bool term", {**STORY_BODY, "loanTerm": True}, "loanTerm"),
    ("missing field", {"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000}, "loanTerm"),
    ("zero amount", {**STORY_BODY, "loanAmount": 0}, "loanAmount"),
    ("negative amount", {**STORY_BODY, "loanAmount": -5000}, "loanAmount"),
    ("absurd amount", {**STORY_BODY, "loanAmount": 1e12}, "loanAmount"),
    ("fractional cents", {**STORY_BODY, "loanAmount": 50000.123}, "loanAmount"),
    ("term too long", {**STORY_BODY, "loanTerm": 600}, "loanTerm"),
    ("term too short", {**STORY_BODY, "loanTerm": 0}, "loanTerm"),
    ("malformed id", {**STORY_BODY, "clientId": "123"}, "clientId"),
    ("null string id", {**STORY_BODY, "clientId": "null"}, "clientId"),
    ("unknown client", {**STORY_BODY, "clientId": str(uuid.uuid4())}, "clientId"),
    ("extra field", {**STORY_BODY, "income": 1}, "income"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
async def test_bad_bodies_are_problems_naming_the_field(
    client: httpx.AsyncClient,
    token: str,
    tx_database: TransactionDatabase,
    case: str,
    body: dict[str, object],
    field: str,
) -> None:
    r = await client.post("/api/v1/assessment", json=body, headers=auth(token))
    assert r.status_code == 422, (case, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422
    assert field in {e["field"] for e in problem["errors"]}
    assert await count_rows(tx_database, "assessments") == 0


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 422),
        (b'{"clientId": 1}', "text/plain", 415),
        (b"x" * 70_000, "application/json", 413),
    ],
    ids=["malformed", "array", "content-type", "too-large"],
)
async def test_malformed_requests_are_4xx_problems(
    client: httpx.AsyncClient,
    token: str,
    tx_database: TransactionDatabase,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    r = await client.post(
        "/api/v1/assessment", content=content, headers=auth(token, **{"Content-Type": content_type})
    )
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"]
    assert await count_rows(tx_database, "assessments") == 0


def _token(**overrides: object) -> str:
    now = int(time.time())
    claims = {
        "sub": "tester",
        "aud": "credit-assessment",
        "iss": "credit-assessment",
        "iat": now,
        "exp": now + 600,
    } | overrides
    algorithm = str(claims.pop("alg", "HS256"))
    key = str(claims.pop("key", TEST_JWT_SECRET))
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


# Each header is made when its test runs, never when the module is collected: a token minted at
# collection time would expire before a slow suite reaches it (tests/unit/test_clock_at_import.py).
BAD_TOKENS: list[tuple[str, Callable[[], str | None], str]] = [
    ("missing", lambda: None, "Missing"),
    ("not bearer", lambda: "Basic dXNlcjpwYXNz", "Bearer"),
    ("expired", lambda: f"Bearer {_token(exp=int(time.time()) - 3600)}", "expired"),
    ("wrong audience", lambda: f"Bearer {_token(aud='someone-else')}", "audience"),
    ("wrong issuer", lambda: f"Bearer {_token(iss='evil')}", "issuer"),
    ("wrong algorithm", lambda: f"Bearer {_token(alg='HS512')}", "algorithm"),
    (
        "bad signature",
        lambda: f"Bearer {_token(key='another-secret-that-is-long-enough-0123456789')}",
        "invalid",
    ),
    ("no subject", lambda: f"Bearer {_token(sub=None)}", "sub"),
    ("garbage", lambda: "Bearer not.a.jwt", "invalid"),
]


@pytest.mark.parametrize(
    ("case", "make_header", "says"), BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS]
)
async def test_bad_tokens_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    tx_database: TransactionDatabase,
    case: str,
    make_header: Callable[[], str | None],
    says: str,
) -> None:
    header = make_header()
    headers = {"Authorization": header} if header else {}
    r = await client.post("/api/v1/assessment", json=STORY_BODY, headers=headers)
    assert r.status_code == 401, case
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert says.lower() in r.json()["detail"].lower()
    read = await client.get(f"/api/v1/assessment/{uuid.uuid4()}", headers=headers)
    assert read.status_code == 401
    assert await count_rows(tx_database, "assessments") == 0


async def test_unsigned_token_is_refused(client: httpx.AsyncClient) -> None:
    claims = {
        "sub": "x",
        "aud": "credit-assessment",
        "iss": "credit-assessment",
        "exp": int(time.time()) + 60,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    r = await client.post(
        "/api/v1/assessment", json=STORY_BODY, headers={"Authorization": f"Bearer {unsigned}"}
    )
    assert r.status_code == 401


async def test_probes_and_metrics_need_no_token(client: httpx.AsyncClient, token: str) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "database": "ok",
        "schema": "ok",
        "model": "ok",
        "lifecycle": "ok",
    }
    await client.post("/api/v1/assessment", json=STORY_BODY, headers=auth(token))
    text = (await client.get("/metrics")).text
    for family in (
        "credit_assessments_total{",
        'engine="new"',
        "credit_assessment_http_request_duration_seconds_bucket{",
        'route="/api/v1/assessment"',
        "credit_assessment_http_requests_in_flight",
        "credit_assessment_db_pool_connections{",
        'credit_assessment_build_info{version="2.0.0"} 1.0',
        "credit_assessment_ready 1.0",
    ):
        assert family in text, family


async def test_unknown_routes_and_methods_are_problems(
    client: httpx.AsyncClient, token: str
) -> None:
    missing = await client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await client.get("/api/v1/assessment", headers=auth(token))
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    unknown = await client.get(f"/api/v1/assessment/{uuid.uuid4()}", headers=auth(token))
    assert unknown.status_code == 404
    not_uuid = await client.get("/api/v1/assessment/12", headers=auth(token))
    assert not_uuid.status_code == 422
    assert not_uuid.json()["errors"][0]["field"] == "assessment_id"


async def test_openapi_documents_the_hot_endpoint(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    post = doc["paths"]["/api/v1/assessment"]["post"]
    assert post["security"] == [{"bearerAuth": []}]
    body_schema = doc["components"]["schemas"]["AssessmentRequest"]
    assert set(body_schema["required"]) == {"clientId", "loanAmount", "loanTerm"}
    assert body_schema["properties"]["loanTerm"]["maximum"] == 72
    assert "application/problem+json" in post["responses"]["422"]["content"]


async def test_evaluate_decides_without_storing(
    client: httpx.AsyncClient, token: str, tx_database: TransactionDatabase
) -> None:
    r = await client.post("/api/v1/assessment/evaluate", json=STORY_BODY, headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] in {"APPROVED", "DECLINED", "REFER", "COUNTER_OFFER"}
    assert body["engine"] == "new" and "id" not in body
    again = await client.post("/api/v1/assessment/evaluate", json=STORY_BODY, headers=auth(token))
    assert again.json() == body  # deterministic
    assert await count_rows(tx_database, "assessments") == 0
    unknown = await client.post(
        "/api/v1/assessment/evaluate",
        json={**STORY_BODY, "clientId": str(uuid.uuid4())},
        headers=auth(token),
    )
    assert unknown.status_code == 422
    assert (await client.post("/api/v1/assessment/evaluate", json=STORY_BODY)).status_code == 401


async def test_a_client_that_leaves_mid_body_is_counted_499_and_nothing_is_stored(
    app, tx_database: TransactionDatabase, token: str
) -> None:
    from tests.integration.conftest import running

    messages = iter(
        [
            {"type": "http.request", "body": b'{"clientId": "', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/assessment",
        "headers": [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
        ],
    }
    async with running(app) as client:
        await app(scope, receive, send)
        metrics = (await client.get("/metrics")).text
    assert sent == []  # nobody to answer
    assert await count_rows(tx_database, "assessments") == 0
    assert 'route="/api/v1/assessment",status="499"' in metrics


async def test_every_response_names_the_slot_that_answered(
    tx_database: TransactionDatabase, tmp_path, token: str
) -> None:  # type: ignore[no-untyped-def]
    """X-Slot lets a go-live see new requests land on green after the switch."""
    from credit_assessment.api.app import create_app
    from tests.conftest import make_settings
    from tests.integration.conftest import running

    app = create_app(make_settings(tmp_path, None, slot="green"), database=tx_database)
    async with running(app) as client:
        created = await client.post(
            "/api/v1/assessment",
            json={"clientId": str(SMOKE_CLIENT_ID), "loanAmount": 50000, "loanTerm": 12},
            headers=auth(token),
        )
        refused = await client.post("/api/v1/assessment", content=b"x", headers=auth(token))
        health = await client.get("/health")
        missing = await client.get(f"/api/v1/assessment/{uuid.uuid4()}", headers=auth(token))
    assert [r.status_code for r in (created, refused, health, missing)] == [201, 415, 200, 404]
    assert [r.headers.get("x-slot") for r in (created, refused, health, missing)] == ["green"] * 4
