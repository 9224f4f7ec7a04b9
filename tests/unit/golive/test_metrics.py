"""Metric sources at their port: parsing, window arithmetic, failures that must not pass."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from golive.analysis import LEGACY, NEW, Gates, Verdict, WindowMetrics, judge_window
from golive.errors import MetricSourceError, PlanError
from golive.metrics import ServiceMetricNames, Window, create, provider
from golive.metrics.fake import FakeSource, Traffic, synthetic_stage
from golive.metrics.prometheus import PrometheusSource
from golive.metrics.scrape import ScrapeSource, counter_delta, parse_exposition

NAMES = ServiceMetricNames()
BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5)


class Service:
    """The service's metric families on a real prometheus_client registry."""

    def __init__(self, *, with_errors: bool = True) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter("credit_assessments", "", ["decision", "engine"], registry=r)
        self.errors = (
            Counter("credit_assessment_decision_errors", "", ["engine"], registry=r)
            if with_errors
            else None
        )
        self.duration = Histogram(
            "credit_assessment_decision_duration_seconds",
            "",
            ["engine"],
            buckets=BUCKETS,
            registry=r,
        )
        self.shadow = Counter(
            "credit_assessment_shadow_comparisons", "", ["outcome", "field"], registry=r
        )
        self.legacy = Counter("credit_assessment_legacy_requests", "", ["outcome"], registry=r)
        self.bureau = Counter("credit_assessment_bureau_requests", "", ["outcome"], registry=r)
        self.http = Histogram(
            "credit_assessment_http_request_duration_seconds",
            "",
            ["route", "method", "status"],
            buckets=BUCKETS,
            registry=r,
        )

    def requests(self, route: str, status: int, count: int, seconds: float = 0.02) -> None:
        for _ in range(count):
            self.http.labels(route, "POST", str(status)).observe(seconds)

    def traffic(self, new: int, legacy: int, new_errors: int = 0, new_s: float = 0.004) -> None:
        self.decisions.labels("APPROVED", "new").inc(new)
        self.decisions.labels("DECLINED", "legacy").inc(legacy)
        if self.errors is not None:
            self.errors.labels("new").inc(new_errors)
            self.errors.labels("legacy").inc(0)
        for _ in range(new):
            self.duration.labels("new").observe(new_s)
        for _ in range(legacy):
            self.duration.labels("legacy").observe(0.02)
        self.shadow.labels("match", "decision").inc(legacy - 1)
        self.shadow.labels("mismatch", "decision").inc(1)
        self.legacy.labels("ok").inc(legacy)
        self.bureau.labels("ok").inc(new + legacy)
        # every decision is an API request; a failed one is answered 503
        self.requests("/api/v1/assessment", 201, new + legacy)
        self.requests("/api/v1/assessment", 503, new_errors)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def test_parse_and_subtract_two_scrapes() -> None:
    service = Service()
    service.traffic(10, 90)
    before = parse_exposition(service.text(), NAMES)
    service.traffic(100, 900, new_errors=7)
    after = parse_exposition(service.text(), NAMES)
    delta = counter_delta(before.samples, after.samples)
    from golive.metrics import build_window

    window = build_window(delta, NAMES, duration_s=60, present=after.present, source="t")
    assert window.decisions == {NEW: 100, LEGACY: 900}
    assert window.errors == {NEW: 7, LEGACY: 0}
    assert window.requests(NEW) == 107
    assert window.latency[NEW].count == 100
    assert window.latency[LEGACY].quantile(0.5) == pytest.approx(0.01 + 0.04 * 0.5 / 1.0, rel=0.5)
    assert window.shadow["decision"].mismatch == 1
    assert window.shadow["decision"].match == 899
    assert window.legacy_calls == {"ok": 900}
    assert window.bureau_calls == {"ok": 1000}
    assert window.missing == ()


def test_api_requests_of_a_window_every_api_route_5xx_as_errors() -> None:
    service = Service()
    service.requests("/api/v1/assessment", 201, 100)
    before = parse_exposition(service.text(), NAMES)
    service.requests("/api/v1/assessment", 201, 990, seconds=0.004)
    service.requests("/api/v1/assessment/{id}", 200, 10, seconds=0.3)  # a route template
    service.requests("/api/v1/assessment", 503, 10)
    service.requests("/api/v1/assessment", 422, 5)  # answered, not a server error
    service.requests("/ready", 503, 999)  # not an API route
    after = parse_exposition(service.text(), NAMES)
    from golive.metrics import build_window

    window = build_window(
        counter_delta(before.samples, after.samples),
        NAMES,
        duration_s=60,
        present=after.present,
        source="t",
    )
    assert (window.api.total, window.api.server_errors) == (1015, 10)
    assert window.api.latency.count == 1015
    # rank 0.99 x 1015 = 1004.85 falls in the (0.01, 0.05] bucket (cumulative 990 -> 1005)
    assert 0.01 < window.api.latency.quantile(0.99) <= 0.05
    quiet = build_window({}, NAMES, duration_s=60, present=after.present, source="t")
    assert quiet.api.total == 0 and quiet.api.latency.count == 0


def test_a_restart_counts_everything_as_new() -> None:
    key = ("credit_assessments_total", (("decision", "APPROVED"), ("engine", "new")))
    assert counter_delta({key: 100.0}, {key: 5.0}) == {key: 5.0}
    assert counter_delta({key: 100.0}, {key: 105.0}) == {key: 5.0}
    assert counter_delta({}, {key: 5.0}) == {key: 5.0}


def test_a_family_no_instance_exposes_is_missing_and_errors_the_gate() -> None:
    service = Service(with_errors=False)
    service.traffic(300, 2700)
    found = parse_exposition(service.text(), NAMES)
    from golive.metrics import build_window

    window = build_window(found.samples, NAMES, duration_s=60, present=found.present, source="t")
    assert window.missing == ("errors",)
    judged = {j.metric: j for j in judge_window(Gates(), window, weight_percent=10)}
    assert judged["error_rate"].verdict is Verdict.ERROR


def test_malformed_exposition_is_an_error() -> None:
    with pytest.raises(MetricSourceError, match="malformed"):
        parse_exposition("credit_assessments_total{engine=new 1\n", NAMES)


# --------------------------------------------------------------------------- ScrapeSource


def _scrape_transport(services: dict[str, Service], down: set[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        host = f"http://{request.url.host}:{request.url.port}"
        if host in down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path != "/metrics":
            return httpx.Response(404)
        return httpx.Response(200, text=services[host].text())

    return httpx.MockTransport(handle)


def test_scrape_source_sums_instances_over_a_window() -> None:
    blue, green = Service(), Service()
    services = {"http://127.0.0.1:1": blue, "http://127.0.0.1:2": green}
    down: set[str] = set()
    clock = iter([1000.0, 1060.0]).__next__
    source = ScrapeSource(list(services), transport=_scrape_transport(services, down), clock=clock)
    blue.traffic(5, 5)
    window = source.open_window("shift-10")
    blue.traffic(100, 900, new_errors=3)
    green.traffic(50, 450)
    measured = source.measure(window)
    assert measured.decisions == {NEW: 150, LEGACY: 1350}
    assert measured.errors[NEW] == 3
    assert measured.duration_s == 60.0
    assert measured.source == "scrape of 2 instance(s)"
    down.add("http://127.0.0.1:2")
    with pytest.raises(MetricSourceError, match=r"cannot scrape http://127.0.0.1:2/metrics"):
        source.measure(window)


def test_scrape_source_needs_instances_and_a_200() -> None:
    with pytest.raises(MetricSourceError, match="no serving instances"):
        ScrapeSource([]).open_window()
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    with pytest.raises(MetricSourceError, match="HTTP 503"):
        ScrapeSource(["http://127.0.0.1:1"], transport=transport).open_window()


# --------------------------------------------------------------------------- PrometheusSource


def _vector(rows: list[tuple[dict[str, str], str]]) -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1, v]} for m, v in rows],
        },
    }


def test_prometheus_source_builds_the_window_from_promql() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        seen.append(query)
        if query.startswith("count by (__name__)"):
            names = [
                NAMES.decisions,
                NAMES.errors,
                NAMES.decision_duration + "_bucket",
                NAMES.shadow,
                NAMES.http_duration + "_bucket",
            ]
            return httpx.Response(200, json=_vector([({"__name__": n}, "3") for n in names]))
        if NAMES.http_duration in query:
            api = {"route": "/api/v1/assessment"}
            if query.startswith("sum by (route, status, le)"):
                rows = [
                    (api | {"status": "201", "le": le}, v)
                    for le, v in (("0.1", "95"), ("+Inf", "99.6"))
                ]
                return httpx.Response(200, json=_vector(rows))
            rows = [(api | {"status": "201"}, "99.6"), (api | {"status": "500"}, "1.2")]
            return httpx.Response(200, json=_vector(rows))
        if NAMES.decisions in query:
            return httpx.Response(
                200, json=_vector([({"engine": "new", "decision": "APPROVED"}, "199.7")])
            )
        if NAMES.errors in query:
            return httpx.Response(200, json=_vector([({"engine": "new"}, "4.2")]))
        if "_bucket" in query:
            rows = [({"engine": "new", "le": le}, v) for le, v in (("0.1", "150"), ("+Inf", "200"))]
            return httpx.Response(200, json=_vector(rows))
        if NAMES.shadow in query:
            return httpx.Response(
                200, json=_vector([({"outcome": "mismatch", "field": "decision"}, "NaN")])
            )
        return httpx.Response(200, json=_vector([]))

    clock = iter([1000.0, 1090.5]).__next__
    source = PrometheusSource(
        "http://127.0.0.1:9090/",
        selector='{slot="green"}',
        transport=httpx.MockTransport(handle),
        clock=clock,
    )
    window = source.open_window("shift-10")
    measured = source.measure(window)
    assert measured.decisions == {NEW: 200}
    assert measured.errors == {NEW: 4}
    assert measured.latency[NEW].count == 200
    assert measured.shadow == {}
    assert set(measured.missing) == {"legacy_calls", "bureau_calls"}
    assert (measured.api.total, measured.api.server_errors) == (101, 1)
    assert measured.api.latency.count == pytest.approx(99.6)
    assert (
        'sum by (engine, decision) (increase(credit_assessments_total{slot="green"}[91s]))' in seen
    )


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.ConnectError("refused"), "unreachable"),
        (
            httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            "bad_data: parse error",
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), "HTTP 502 and no API response"),
        (
            httpx.Response(
                200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}
            ),
            "'matrix' result",
        ),
        (
            httpx.Response(
                200,
                json={"status": "success", "data": {"resultType": "vector", "result": [{"x": 1}]}},
            ),
            "malformed",
        ),
    ],
)
def test_prometheus_failures_raise_never_pass(response, message) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    source = PrometheusSource("http://127.0.0.1:9090", transport=httpx.MockTransport(handle))
    with pytest.raises(MetricSourceError, match=message):
        source.measure(source.open_window())


def test_prometheus_range_query() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"a": "b"}, "values": [[1, "1"], [2, "3"]]}],
        },
    }
    source = PrometheusSource(
        "http://127.0.0.1:9090",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)),
    )
    (series,) = source.query_range("up", 0, 10, 1)
    assert series.values == ((1.0, 1.0), (2.0, 3.0))


# --------------------------------------------------------------------------- registry, fake


def test_registry_fails_loudly_on_an_unknown_name() -> None:
    assert provider("scrape") is ScrapeSource
    assert provider("prometheus") is PrometheusSource
    with pytest.raises(
        PlanError, match=r"no metric source 'graphite'.*known: fake, prometheus, scrape"
    ):
        provider("graphite")
    assert isinstance(create("fake"), FakeSource)


def test_fake_source_replays_its_script() -> None:
    good = WindowMetrics(duration_s=10)
    source = FakeSource([good, MetricSourceError("Prometheus down")])
    window = source.open_window("shift-10")
    assert source.measure(window) is good
    with pytest.raises(MetricSourceError, match="down"):
        source.measure(window)
    with pytest.raises(MetricSourceError, match="no more windows"):
        source.measure(window)
    assert source.measured == 3 and source.opened == [window]
    assert FakeSource(lambda w: good).measure(Window(0.0)) is good


def test_synthetic_stage_is_cumulative_and_reproducible() -> None:
    first = synthetic_stage(Traffic(), seed=3, intervals=3)
    again = synthetic_stage(Traffic(), seed=3, intervals=3)
    assert first == again
    assert [w.requests(NEW) for w in first] == [100, 200, 300]
    assert first[-1].latency[NEW].count == first[-1].decisions[NEW]
    assert math.isinf(first[-1].latency[NEW].bounds[-1])
    assert json.dumps(first[-1].decisions)
