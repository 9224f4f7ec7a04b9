"""The app factory: ``create_app(settings)`` builds everything from the settings it is given.

The ASGI app in front (:class:`ServiceApp`) counts and logs every request, gives it a request id,
sends ``POST /api/v1/assessment`` to the hot endpoint and everything else to FastAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from credit_assessment.api import assessments as hot
from credit_assessment.api.asgi import Receive, Scope, Send, header, send_problem
from credit_assessment.api.auth import TokenVerifier
from credit_assessment.api.openapi import complete_openapi
from credit_assessment.api.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    field_errors,
    unavailable,
    validation_problem,
)
from credit_assessment.api.ratelimit import rate_limiter
from credit_assessment.api.routes import build_fault_router, build_router, readiness
from credit_assessment.api.runtime import Lifecycle, Runtime
from credit_assessment.api.schemas import request_model
from credit_assessment.assessor import (
    Assessor,
    DecideFn,
    EngineUnavailable,
    Routing,
    load_engine,
)
from credit_assessment.faults import InjectedFault
from credit_assessment.identifiers import new_request_id
from credit_assessment.routing.flags import FlagdFileFlag, TrafficFlag
from credit_assessment.routing.legacy import LegacyClient, LegacyUnavailable
from credit_assessment.routing.shadow import ShadowComparison
from credit_assessment.settings import Settings, SettingsError
from credit_assessment.sources.bureau import bureau_from_settings
from credit_assessment.store.assessments import AssessmentWriter, WriterStopped
from credit_assessment.store.clients import ClientDirectory
from credit_assessment.store.database import Database
from credit_assessment.store.schema import head_revision, migration_chain
from credit_assessment.telemetry.metrics import Metrics

log = structlog.get_logger()

FAULT_POLL_S = 0.2
_NOT_STORED = Problem(
    500, "internal-error", "Internal error", "The assessment failed; it was not stored"
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics", "/flags"})
_ROUTES = (
    (re.compile(r"^/api/v1/assessment/[^/]+$"), "/api/v1/assessment/{id}"),
    (re.compile(r"^/api/v1/clients/[^/]+/assessments$"), "/api/v1/clients/{clientId}/assessments"),
)
_STATIC_ROUTES = frozenset(
    {
        hot.PATH,
        hot.EVALUATE_PATH,
        "/health",
        "/ready",
        "/metrics",
        "/flags",
        "/openapi.json",
        "/docs",
        "/redoc",
    }
)


def route_template(path: str) -> str:
    """The route a path belongs to, so metric labels stay few."""
    if path in _STATIC_ROUTES:
        return path
    for pattern, template in _ROUTES:
        if pattern.match(path):
            return template
    return "other"


def _problem_response(problem: Problem, request: Request) -> Response:
    return Response(
        problem.body(request.url.path, request.scope.get("request_id")),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _problem_response(validation_problem(field_errors(list(exc.errors()))), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed"}
        problem = Problem(
            exc.status_code,
            "not-found" if exc.status_code == 404 else f"http-{exc.status_code}",
            titles.get(exc.status_code, "HTTP error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )
        return _problem_response(problem, request)

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> Response:
        log.warning("database_error", error=type(exc).__name__, path=request.url.path)
        return _problem_response(unavailable("The database is unavailable; retry shortly"), request)


class BureauMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def lookup_finished(self, outcome: str, duration_s: float) -> None:
        self._m.child(self._m.bureau_requests, outcome).inc()

    def circuit_changed(self, is_open: bool) -> None:
        self._m.bureau_circuit_open.set(1 if is_open else 0)


class MetricEvents:
    """Counts what the assessor reports."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def decided(self, engine: str, seconds: float) -> None:
        self._m.child(self._m.decision_duration, engine).observe(seconds)

    def stored(self, record: Any) -> None:
        self._m.child(self._m.assessments, record.decision, record.engine).inc()

    def shadow(self, comparison: ShadowComparison) -> None:
        for field, same in comparison.matches.items():
            self._m.shadow_comparisons.labels("match" if same else "mismatch", field).inc()
        all_same = all(comparison.matches.values())
        self._m.shadow_comparisons.labels("match" if all_same else "mismatch", "all").inc()

    def legacy(self, outcome: str) -> None:
        self._m.legacy_requests.labels(outcome=outcome).inc()

    def failed(self, engine: str) -> None:
        self._m.decision_errors.labels(engine=engine).inc()


def traffic_flag(settings: Settings) -> TrafficFlag:
    """The legacy-to-new flag from the configured provider (``FLAG_PROVIDER``)."""
    if settings.flag_provider == "launchdarkly":
        from credit_assessment.routing.launchdarkly import LaunchDarklyFlag

        assert settings.launchdarkly_sdk_key is not None
        return LaunchDarklyFlag(
            settings.launchdarkly_sdk_key.get_secret_value(),
            base_uri=settings.launchdarkly_base_uri,
            stream_uri=settings.launchdarkly_stream_uri,
            events_uri=settings.launchdarkly_events_uri,
            stale_s=settings.launchdarkly_stale_s,
        )
    source = settings.flag_file or settings.data_dir / "flags.json"
    return FlagdFileFlag(source, settings.data_dir, settings.flag_poll_s)


def _routing(settings: Settings) -> Routing | None:
    """The strangler when a legacy system is configured; without one the new engine decides."""
    if not settings.legacy_url:
        return None
    token = settings.legacy_api_token.get_secret_value() if settings.legacy_api_token else None
    legacy = LegacyClient(
        settings.legacy_url, settings.legacy_path, token, settings.legacy_timeout_s
    )
    return Routing(
        traffic_flag(settings),
        legacy,
        failover_to_new=settings.legacy_failover,
        shadow=settings.shadow_enabled,
        score_tolerance=settings.shadow_score_tolerance,
    )


def _refuse(reason: str) -> DecideFn:
    def decide(*_: Any) -> Any:
        raise unavailable(f"The decision model is {reason}")

    return decide


async def _open_runtime(
    settings: Settings, metrics: Metrics, lifecycle: Lifecycle, database: Database
) -> Runtime:
    writer = AssessmentWriter(
        database,
        settings.group_commit_max_batch,
        settings.group_commit_writers,
        on_batch=metrics.group_commit_batch.observe,
    )
    directory = ClientDirectory(database, settings.profile_cache_ttl_s, settings.profile_cache_size)
    model_error = None
    try:
        decide = load_engine(settings.model_path, settings.policy_path)
    except EngineUnavailable as exc:
        model_error = f"not loaded: {exc}"
        log.error("model_not_loaded", error=str(exc))
        decide = _refuse(model_error)
    routing = _routing(settings)
    bureau = bureau_from_settings(settings, BureauMetrics(metrics))
    runtime = Runtime(
        database=database,
        directory=directory,
        writer=writer,
        assessor=Assessor(directory, writer, decide, MetricEvents(metrics), routing, bureau),
        expected_revision=settings.expected_schema_revision or head_revision(),
        migration_chain=migration_chain(),
        model_error=model_error,
        lifecycle=lifecycle,
        flag=routing.flag if routing is not None else None,
    )
    await writer.start()
    if routing is not None:
        routing.flag.start()
    if settings.rehearsal_faults:
        path = _faults_file(settings)
        path.unlink(missing_ok=True)  # a restart starts without faults
        runtime.tasks.append(asyncio.create_task(_follow_faults(runtime.assessor.faults, path)))
    return runtime


def _faults_file(settings: Settings) -> Path:
    return settings.data_dir / "rehearsal-faults.json"


async def _follow_faults(faults: Any, path: Path) -> None:
    """Every worker picks up the fault switches any one of them was given."""
    mtime = None
    while True:
        await asyncio.sleep(FAULT_POLL_S)
        with contextlib.suppress(OSError):
            current = (await asyncio.to_thread(path.stat)).st_mtime_ns
            if current != mtime:
                mtime = current
                await asyncio.to_thread(faults.follow, path)


async def _close_runtime(runtime: Runtime, close_database: bool) -> None:
    for task in runtime.tasks:
        task.cancel()
    await runtime.writer.stop()
    await runtime.assessor.bureau.aclose()
    routing = runtime.assessor.routing
    if routing is not None:
        await routing.flag.stop()
        await routing.legacy.close()
    if close_database:
        await runtime.database.dispose()


def create_app(
    settings: Settings, lifecycle: Lifecycle | None = None, database: Database | None = None
) -> ServiceApp:
    """Build the service from ``settings``; resources open when the ASGI lifespan starts.

    ``database`` replaces the pool built from DATABASE_URL (tests pass one bound to a
    transaction); the app then leaves it open at shutdown.
    """
    if settings.database_url is None and database is None:
        raise SettingsError("DATABASE_URL is not set (`credit-assessment serve` starts one)")
    metrics = Metrics(settings.version)
    verifier = TokenVerifier(settings)
    limiter = rate_limiter(
        settings.rate_limit_requests,
        settings.rate_limit_window_s,
        settings.redis_url.get_secret_value() if settings.redis_url else None,
    )
    model = request_model(settings)
    lifecycle = lifecycle or Lifecycle()
    database_url = settings.database_url.get_secret_value() if settings.database_url else ""
    given_database = database

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = given_database or Database(
            database_url, settings.db_pool_size, settings.db_statement_timeout_ms
        )
        runtime = await _open_runtime(settings, metrics, lifecycle, database)
        app.state.runtime = runtime
        ok, checks = await readiness(runtime, metrics)
        log.info("service_started", ready=ok, checks=checks, version=settings.version)
        try:
            yield
        finally:
            lifecycle.draining = True
            metrics.ready.set(0)
            await _close_runtime(runtime, close_database=given_database is None)
            if limiter is not None:
                await limiter.aclose()
            log.info("service_stopped")

    api = FastAPI(
        title="Credit assessment API",
        version=settings.version,
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    _install_error_handlers(api)
    api.include_router(build_router(verifier, metrics, settings.page_size_max))
    if settings.rehearsal_faults:
        api.include_router(build_fault_router(_faults_file(settings)))
    base_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = complete_openapi(base_openapi(), model)
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    def assessor() -> Assessor:
        runtime: Runtime | None = getattr(api.state, "runtime", None)
        if runtime is None:
            raise unavailable("The service is starting")
        return runtime.assessor

    constant = ((b"x-slot", settings.slot.encode()),)
    endpoint = hot.AssessmentEndpoint(
        assessor,
        verifier,
        model,
        settings.max_body_bytes,
        constant_headers=constant,
        limiter=limiter,
        on_limited=metrics.rate_limited.inc,
    )
    return ServiceApp(api, endpoint, metrics, lifecycle, settings.log_requests, constant)


class ServiceApp:
    """The ASGI application the server runs."""

    def __init__(
        self,
        api: FastAPI,
        endpoint: hot.AssessmentEndpoint,
        metrics: Metrics,
        lifecycle: Lifecycle,
        log_requests: bool = True,
        constant_headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.api = api
        self.constant_headers = constant_headers  # on every response: X-Slot
        self.endpoint = endpoint
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        started = time.perf_counter()
        given = header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else new_request_id()
        scope["request_id"] = request_id
        status = 500
        path: str = scope["path"]
        self.metrics.in_flight.inc()
        try:
            if path in hot.PATHS:  # adds the request id itself and says the status
                status = await self._assessment(scope, receive, send, request_id)
            else:  # FastAPI's responses get the request id and constant headers on the way out

                async def send_with_id(message: MutableMapping[str, Any]) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        message["headers"] = [
                            *message.get("headers", ()),
                            (b"x-request-id", request_id.encode()),
                            *self.constant_headers,
                        ]
                    await send(message)

                await self.api(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = route_template(path)
            self.metrics.child(
                self.metrics.request_duration, route, scope["method"], str(status)
            ).observe(elapsed)
            if self.log_requests:
                level = log.debug if route in _QUIET_ROUTES else log.info
                level(
                    "request_completed",
                    request_id=request_id,
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )

    async def _assessment(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        path = scope["path"]
        try:
            if scope["method"] != "POST":
                raise Problem(
                    405,
                    "http-405",
                    "Method not allowed",
                    "Use POST to create an assessment",
                    headers={"allow": "POST"},
                )
            return await self.endpoint(scope, receive, send, request_id)
        except Problem as problem:
            return await send_problem(send, problem, path, request_id, self.constant_headers)
        except LegacyUnavailable as exc:
            log.warning("legacy_unavailable", request_id=request_id, error=str(exc))
            return await send_problem(
                send,
                unavailable("The legacy assessment system is unavailable; retry"),
                path,
                request_id,
                self.constant_headers,
            )
        except (WriterStopped, DBAPIError, SQLAlchemyError, psycopg.Error, TimeoutError) as exc:
            log.warning("assessment_unavailable", request_id=request_id, error=type(exc).__name__)
            return await send_problem(
                send,
                unavailable("Temporarily unable to store assessments; retry"),
                path,
                request_id,
                self.constant_headers,
            )
        except ConnectionResetError:
            return 499  # the client went away before an answer; nothing was sent
        except Exception as exc:
            if isinstance(exc, InjectedFault):  # asked for by a rehearsal: no traceback
                log.warning("assessment_failed", request_id=request_id, error=str(exc))
            else:
                log.exception("assessment_failed", request_id=request_id)
            return await send_problem(send, _NOT_STORED, path, request_id, self.constant_headers)
