"""Metric sources against real servers: a live /metrics exporter, and a real Prometheus."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from golive.analysis import LEGACY, NEW, Gates, Verdict, judge_window
from golive.errors import MetricSourceError
from golive.metrics.prometheus import PrometheusSource
from golive.metrics.scrape import ScrapeSource
from tests.integration.monitoring.conftest import ManagedProcess, require_binary, wait_until
from tests.integration.traffic.conftest import free_port
from tests.unit.golive.test_metrics import Service


def _exporter(stub_server, service: Service):
    return stub_server(
        lambda request: (200, "text/plain; version=0.0.4", generate_latest(service.registry))
    )


def test_scrape_source_over_http(stub_server) -> None:
    blue, green = Service(), Service()
    servers = [_exporter(stub_server, blue), _exporter(stub_server, green)]
    source = ScrapeSource([s.url for s in servers])
    blue.traffic(50, 50)
    window = source.open_window("shift-10")
    blue.traffic(120, 1080, new_errors=1)
    green.traffic(130, 1170, new_errors=0)
    measured = source.measure(window)
    assert measured.decisions == {NEW: 250, LEGACY: 2250}
    assert measured.errors == {NEW: 1, LEGACY: 0}
    assert measured.latency[NEW].count == 250
    assert (measured.api.total, measured.api.server_errors) == (2501, 1)
    verdicts = {j.metric: j.verdict for j in judge_window(Gates(), measured, weight_percent=10)}
    assert verdicts == {
        "error_rate": Verdict.PASS,
        "latency": Verdict.PASS,
        "decision_mismatch": Verdict.PASS,
        "bureau_failures": Verdict.PASS,
    }
    servers[1].stop()
    with pytest.raises(MetricSourceError, match="cannot scrape"):
        source.measure(window)


def test_prometheus_unreachable_is_an_error() -> None:
    source = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(MetricSourceError, match="unreachable"):
        source.measure(source.open_window())


@pytest.mark.slow
def test_prometheus_source_against_real_prometheus(tmp_path: Path, stub_server) -> None:
    prometheus_bin = require_binary("prometheus")
    service = Service()
    exporter = _exporter(stub_server, service)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "credit-assessment",
                "static_configs": [
                    {"targets": [exporter.url.removeprefix("http://")], "labels": {"slot": "green"}}
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = ManagedProcess.start(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_http_ok(f"{url}/-/ready")
        source = PrometheusSource(url, selector='slot="green"')
        service.traffic(1, 1)
        wait_until(
            lambda: source.query('up{job="credit-assessment"} == 1'),
            timeout_s=20,
            what="the first scrape",
        )
        window = source.open_window("shift-10")
        # Traffic over ~6 s of 1 s scrapes: 6 x (50 new, 450 legacy), 5% new-path errors
        for _ in range(6):
            service.traffic(50, 450, new_errors=3, new_s=0.2)
            time.sleep(1)
        time.sleep(1.5)
        measured = source.measure(window)
        # increase() extrapolates to the window's edges: close to, not exactly, the counts
        assert measured.decisions[NEW] == pytest.approx(300, rel=0.35)
        assert measured.decisions[LEGACY] == pytest.approx(2700, rel=0.35)
        assert measured.errors[NEW] == pytest.approx(18, rel=0.4)
        assert measured.latency[NEW].count == pytest.approx(300, rel=0.35)
        assert measured.api.total == pytest.approx(3018, rel=0.35)
        assert measured.api.server_errors == pytest.approx(18, rel=0.4)
        assert measured.api.latency.count == pytest.approx(3018, rel=0.35)
        assert measured.missing == ()
        verdicts = {j.metric: j.verdict for j in judge_window(Gates(), measured, weight_percent=10)}
        assert verdicts["error_rate"] is Verdict.FAIL
        assert verdicts["latency"] is Verdict.FAIL
        (series,) = source.query_range(
            'sum(credit_assessments_total{engine="new"})', window.started_at, time.time(), 1
        )
        assert series.values[-1][1] >= 300
        with pytest.raises(MetricSourceError, match="bad_data"):
            source.query("sum(")
    finally:
        process.stop()
