"""``POST /api/v1/assessment``: the hot path, as a plain ASGI endpoint.

It is the one route on the critical path of every loan application, so it skips the framework's
routing and dependency injection: auth from a cache, validation by pydantic-core straight from the
raw bytes, serialisation by orjson. Its OpenAPI description is added in ``openapi.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError

from credit_assessment.api.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    send_json,
)
from credit_assessment.api.auth import TokenVerifier
from credit_assessment.api.problems import Problem, field_errors, validation_problem
from credit_assessment.api.ratelimit import RateLimiter, too_many
from credit_assessment.api.schemas import assessment_json, evaluation_json
from credit_assessment.assessor import AssessmentInput, Assessor, ClientNotFound
from credit_assessment.store.assessments import KeyReused, Replayed

PATH = "/api/v1/assessment"
EVALUATE_PATH = "/api/v1/assessment/evaluate"
PATHS = frozenset({PATH, EVALUATE_PATH})


def _json_content_type(value: str | None) -> bool:
    if value is None:
        return False
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def idempotency_key(scope: Scope) -> str | None:
    key = header(scope, b"idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255 or any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise Problem(
            400,
            "bad-idempotency-key",
            "Invalid Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            [{"field": "Idempotency-Key", "message": "1 to 255 visible ASCII characters"}],
        )
    return key


class AssessmentEndpoint:
    def __init__(
        self,
        assessor: Any,
        verifier: TokenVerifier,
        model: type[BaseModel],
        max_body_bytes: int,
        constant_headers: Sequence[tuple[bytes, bytes]] = (),
        limiter: RateLimiter | None = None,
        on_limited: Callable[[], None] = lambda: None,
    ) -> None:
        self._limiter = limiter  # per token subject (None: no limit)
        self._on_limited = on_limited
        self._assessor = assessor  # a callable returning the Assessor once the app has started
        self._verifier = verifier
        self._model = model
        self._max_body = max_body_bytes
        self._constant = tuple(constant_headers)  # on every response (X-Slot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        """Answer one request (the response carries ``request_id``); returns its status."""
        principal = self._verifier.verify(header(scope, b"authorization"))
        if self._limiter is not None:
            wait = await self._limiter.hit(principal.subject)
            if wait is not None:
                self._on_limited()
                limiter: Any = self._limiter
                raise too_many(wait, limiter.requests, limiter.window_s)
        if not _json_content_type(header(scope, b"content-type")):
            raise Problem(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the application as JSON with Content-Type: application/json",
            )
        key = idempotency_key(scope)
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise _too_large(self._max_body)
        try:
            body = await read_body(receive, self._max_body)
        except BodyTooLarge:
            raise _too_large(self._max_body) from None
        request = self._parse(body)
        assessor: Assessor = self._assessor()
        try:
            if scope["path"] == EVALUATE_PATH:
                decision = await assessor.evaluate(request)
                return await send_json(
                    send,
                    200,
                    evaluation_json(request, decision),
                    request_id=request_id,
                    constant=self._constant,
                )
            outcome = await assessor.assess(request, principal.subject, key, request_id)
        except ClientNotFound as exc:
            raise Problem(
                422,
                "unknown-client",
                "Unknown client",
                "No client has this clientId",
                [{"field": "clientId", "message": "no client has this id"}],
            ) from exc
        if isinstance(outcome, KeyReused):
            raise Problem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was used before with a different request body",
                [{"field": "Idempotency-Key", "message": "already used for another request"}],
            )
        document = assessment_json(outcome.record)
        if isinstance(outcome, Replayed):
            replayed = {"idempotent-replayed": "true"}
            return await send_json(send, 200, document, replayed, request_id, self._constant)
        location = {"location": f"{PATH}/{document['id']}"}
        return await send_json(send, 201, document, location, request_id, self._constant)

    def _parse(self, body: bytes) -> AssessmentInput:
        try:
            parsed = self._model.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            if any(e["type"] == "json_invalid" for e in errors):
                raise Problem(
                    400,
                    "malformed-json",
                    "Malformed JSON",
                    "The request body is not valid JSON",
                    [{"field": "body", "message": "not valid JSON"}],
                ) from None
            if any(e["type"] == "model_type" for e in errors):
                raise Problem(
                    422,
                    "validation-error",
                    "Invalid request",
                    "The request body must be a JSON object",
                    [{"field": "body", "message": "must be a JSON object"}],
                ) from None
            raise validation_problem(field_errors(errors)) from None
        values: Any = parsed
        return AssessmentInput(
            client_id=values.clientId,
            loan_amount=Decimal(repr(values.loanAmount)).quantize(Decimal("0.01")),
            loan_term=values.loanTerm,
        )


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"The request body exceeds {limit} bytes",
        [{"field": "body", "message": f"larger than {limit} bytes"}],
    )
