"""The framework-routed endpoints: probes, metrics, and reading stored assessments.

(No postponed annotations here: FastAPI resolves the dependency aliases defined in the factory.)
"""

import asyncio
import base64
import binascii
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from credit_assessment.api.auth import Principal, TokenVerifier
from credit_assessment.api.problems import Problem, not_found
from credit_assessment.api.runtime import Runtime
from credit_assessment.api.schemas import AssessmentOut, AssessmentPage, assessment_json
from credit_assessment.routing import FLAG_KEY
from credit_assessment.store.assessments import get_assessment, list_for_client
from credit_assessment.store.schema import compatible
from credit_assessment.telemetry.metrics import Metrics

READY_TIMEOUT_S = 2.0


def _json(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


def encode_cursor(created_at: datetime, assessment_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{assessment_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, ident = raw.partition("|")
        created = datetime.fromisoformat(when)
        if created.tzinfo is None:
            raise ValueError("naive timestamp")
        return created, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(
            400,
            "bad-cursor",
            "Invalid cursor",
            "The cursor is not one this service issued",
            [{"field": "cursor", "message": "not a cursor from a previous page"}],
        ) from exc


async def readiness(runtime: Runtime, metrics: Metrics) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        revision = await asyncio.wait_for(runtime.database.revision(), READY_TIMEOUT_S)
        checks["database"] = "ok"
        checks["schema"] = (
            "ok"
            if compatible(revision, runtime.expected_revision, runtime.migration_chain)
            else f"at revision {revision}, not compatible with {runtime.expected_revision}"
        )
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; the type is reported
        checks["database"] = f"unreachable ({type(exc).__name__})"
        checks["schema"] = "unknown"
    checks["model"] = "ok" if runtime.model_error is None else runtime.model_error
    if runtime.flag is not None:
        checks["flags"] = runtime.flag.problem or "ok"
        weight = runtime.flag.current.weight_percent if runtime.flag.current else 0
        metrics.flag_weight.labels(flag=FLAG_KEY).set(weight)
    checks["lifecycle"] = "draining" if runtime.lifecycle.draining else "ok"
    ready = all(v == "ok" for v in checks.values())
    metrics.ready.set(1 if ready else 0)
    return ready, checks


def build_router(verifier: TokenVerifier, metrics: Metrics, page_size_max: int) -> APIRouter:
    router = APIRouter()

    def runtime_of(request: Request) -> Runtime:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            raise Problem(503, "unavailable", "Service unavailable", "The service is starting")
        return runtime

    def principal(request: Request) -> Principal:
        return verifier.verify(request.headers.get("authorization"))

    Authed = Annotated[Principal, Depends(principal)]
    RuntimeDep = Annotated[Runtime, Depends(runtime_of)]

    @router.get("/health", tags=["probes"], summary="Liveness: the process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        tags=["probes"],
        summary="Readiness: database reachable, schema at the expected revision, model loaded",
        responses={503: {"description": "Not ready; the body names each failing check"}},
    )
    async def ready(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            return _json({"status": "unready", "checks": {"startup": "starting"}}, 503)
        ok, checks = await readiness(runtime, metrics)
        return _json({"status": "ready" if ok else "unready", "checks": checks}, 200 if ok else 503)

    @router.get(
        "/metrics",
        tags=["probes"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics_endpoint(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            usage = runtime.database.pool_usage()
            metrics.db_pool.labels(state="in_use").set(usage.in_use)
            metrics.db_pool.labels(state="idle").set(usage.idle)
            metrics.db_pool_max.set(usage.capacity)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @router.get(
        "/flags",
        tags=["probes"],
        summary="The traffic flag this instance is using: flag-set version and weight",
    )
    async def flags(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None or runtime.flag is None:
            return _json({"flagSetVersion": None, "flags": {}, "provider": "none", "problem": None})
        return _json(runtime.flag.state())

    @router.get(
        "/api/v1/assessment/{assessment_id}",
        tags=["assessments"],
        summary="One stored assessment",
        operation_id="get_assessment",
        response_model=AssessmentOut,
    )
    async def read_assessment(assessment_id: UUID, _: Authed, runtime: RuntimeDep) -> Response:
        async with runtime.database.connect() as conn:
            record = await get_assessment(conn, assessment_id)
        if record is None:
            raise not_found("No assessment has this id")
        return _json(assessment_json(record))

    @router.get(
        "/api/v1/clients/{client_id}/assessments",
        tags=["assessments"],
        summary="A client's assessments, newest first",
        operation_id="list_client_assessments",
        response_model=AssessmentPage,
    )
    async def client_assessments(
        client_id: UUID,
        _: Authed,
        runtime: RuntimeDep,
        limit: Annotated[int, Query(ge=1, le=page_size_max)] = 20,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> Response:
        before = decode_cursor(cursor) if cursor else None
        async with runtime.database.connect() as conn:
            records = await list_for_client(conn, client_id, limit + 1, before)
        page = records[:limit]
        next_cursor = (
            encode_cursor(page[-1].created_at, page[-1].id) if len(records) > limit else None
        )
        return _json({"items": [assessment_json(r) for r in page], "nextCursor": next_cursor})

    return router


class FaultSwitches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    errorRate: float = Field(default=0.0, ge=0, le=1)
    delayMs: float = Field(default=0.0, ge=0, le=10_000)
    flipTermOver: int | None = Field(default=None, ge=0)


def build_fault_router(shared: Path) -> APIRouter:
    """``/rehearsal/faults``: switch injected faults of the new engine (rehearsals only).

    The switches are written to ``shared``, which every worker of the instance follows."""
    router = APIRouter(include_in_schema=False)

    def loopback(request: Request) -> Runtime:
        host = request.client.host if request.client else ""
        if host not in ("127.0.0.1", "::1"):
            raise Problem(403, "forbidden", "Forbidden", "Fault switches answer only on loopback")
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            raise Problem(503, "unavailable", "Service unavailable", "The service is starting")
        return runtime

    @router.get("/rehearsal/faults")
    async def get_faults(request: Request) -> Response:
        return _json(loopback(request).assessor.faults.document())

    @router.post("/rehearsal/faults")
    async def set_faults(request: Request, switches: FaultSwitches) -> Response:
        faults = loopback(request).assessor.faults
        faults.set(switches.errorRate, switches.delayMs, switches.flipTermOver)
        faults.share(shared)
        return _json(faults.document())

    return router
