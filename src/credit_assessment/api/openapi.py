"""The OpenAPI document: FastAPI's, plus the hot endpoint, bearer auth and problem responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from credit_assessment.api.assessments import EVALUATE_PATH
from credit_assessment.api.assessments import PATH as ASSESSMENT_PATH
from credit_assessment.api.problems import PROBLEM_MEDIA_TYPE, ProblemDetails
from credit_assessment.api.schemas import AssessmentOut, EvaluationOut

_REF = "#/components/schemas/{model}"
STORY_EXAMPLE = {
    "clientId": "123e4567-e89b-12d3-a456-426614174000",
    "loanAmount": 50000,
    "loanTerm": 12,
}
_PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
_ERRORS = {
    400: "Malformed request (bad JSON, header or cursor)",
    401: "Missing, expired or otherwise invalid bearer token",
    404: "Not found",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    422: "The request names an invalid field (see errors[].field)",
    503: "Temporarily unavailable (starting, draining, or database unreachable)",
}


def _schemas(*models: type[BaseModel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF)
        out.update(schema.pop("$defs", {}))
        out[schema.get("title", model.__name__)] = schema
    return out


def _problem_responses(codes: list[int]) -> dict[str, Any]:
    return {
        str(code): {
            "description": _ERRORS[code],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM}},
        }
        for code in codes
    }


def complete_openapi(base: dict[str, Any], request_model: type[BaseModel]) -> dict[str, Any]:
    doc = dict(base)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_schemas(request_model, AssessmentOut, EvaluationOut, ProblemDetails))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    created = {"$ref": "#/components/schemas/Assessment"}
    doc.setdefault("paths", {})[ASSESSMENT_PATH] = {
        "post": {
            "tags": ["assessments"],
            "summary": "Assess a loan application",
            "operationId": "create_assessment",
            "security": [{"bearerAuth": []}],
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "A retry with the same key and body returns the first result.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[!-~]+$",
                    },
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request_model.__name__}"},
                        "example": STORY_EXAMPLE,
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "Assessed and stored",
                    "content": {"application/json": {"schema": created}},
                    "links": {
                        "GetAssessment": {
                            "operationId": "get_assessment",
                            "parameters": {"assessment_id": "$response.body#/id"},
                        },
                        "ListClientAssessments": {
                            "operationId": "list_client_assessments",
                            "parameters": {"client_id": "$response.body#/clientId"},
                        },
                    },
                },
                "200": {
                    "description": "Replay of an earlier request with the same Idempotency-Key",
                    "content": {"application/json": {"schema": created}},
                },
                **_problem_responses([400, 401, 413, 415, 422, 503]),
            },
        }
    }
    doc["paths"][EVALUATE_PATH] = {
        "post": {
            "tags": ["assessments"],
            "summary": "The new engine's decision for an application, without storing anything",
            "operationId": "evaluate_assessment",
            "security": [{"bearerAuth": []}],
            "requestBody": doc["paths"][ASSESSMENT_PATH]["post"]["requestBody"],
            "responses": {
                "200": {
                    "description": "The decision; nothing was stored",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Evaluation"}}
                    },
                },
                **_problem_responses([400, 401, 413, 415, 422, 503]),
            },
        }
    }
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path in (ASSESSMENT_PATH, EVALUATE_PATH):
                continue
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path.startswith("/api/"):
                operation["security"] = [{"bearerAuth": []}]
                responses.update(_problem_responses([400, 401, 404, 422, 503]))
            elif method == "get" and path == "/ready":
                responses["503"] = {
                    "description": "Not ready; the body names each failing check",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
    return doc
