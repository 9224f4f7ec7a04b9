"""Errors answered as RFC 9457 ``application/problem+json``, each naming what was wrong."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(
        description="The offending field, as named in the request (e.g. loanAmount)."
    )
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    requestId: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class Problem(Exception):
    """An error the client can act on. Raising it anywhere in a request answers with it."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, instance: str | None = None, request_id: str | None = None) -> bytes:
        doc: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            doc["instance"] = instance
        if request_id is not None:
            doc["requestId"] = request_id
        if self.errors:
            doc["errors"] = self.errors
        return orjson.dumps(doc)


def field_errors(pydantic_errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as ``{field, message}``; never echoes the submitted value."""
    out = []
    for err in pydantic_errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(loc) or "body", "message": str(err.get("msg", "invalid"))})
    return out


def validation_problem(errors: list[dict[str, str]]) -> Problem:
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Problem(
        422, "validation-error", "Invalid request", f"Invalid value for: {fields}", errors
    )


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"www-authenticate": 'Bearer error="invalid_token"'},
    )


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def unavailable(detail: str) -> Problem:
    return Problem(503, "unavailable", "Service unavailable", detail, headers={"retry-after": "1"})
