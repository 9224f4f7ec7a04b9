"""Grafana dashboards: the committed JSON is the generator's output, and every query runs.

Queries run against the real Prometheus of the monitoring stack, whose stand-in targets
publish every metric the dashboards read (the service's, and those of later work: bureau,
shadow comparisons, golive). An empty result fails the test, except for comparisons with
last week (`offset 1w`): a fresh Prometheus has no history that old.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[3]
GRAFANA = REPO / "deploy" / "monitoring" / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))

# Grafana's variables, replaced as Grafana would for "All" over a short range.
VARIABLES = {"$__rate_interval": "1m", "$slot": ".*"}
EMPTY_ALLOWED_BECAUSE = {"offset 1w": "needs a week of history"}


def load_generator() -> ModuleType:
    try:
        import grafana_foundation_sdk  # noqa: F401
    except ImportError:
        reason = (
            "grafana-foundation-sdk is not installed "
            "(pip install 'grafana-foundation-sdk==1769699379!11.6.0')"
        )
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards_generate", GRAFANA / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) for every target of every panel."""
    found = []
    for path in DASHBOARD_FILES:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_committed_dashboards_equal_the_generator_output() -> None:
    rendered = load_generator().render_all()
    assert sorted(rendered) == [p.name for p in DASHBOARD_FILES]
    for name, text in rendered.items():
        assert (GRAFANA / "dashboards" / name).read_text() == text, (
            f"{name} is stale: run python deploy/monitoring/grafana/generate.py"
        )


def test_dashboards_cover_the_four_views() -> None:
    titles = {json.loads(p.read_text())["uid"] for p in DASHBOARD_FILES}
    assert titles == {
        "credit-assessment-overview",
        "credit-assessment-decisions",
        "credit-assessment-golive",
        "credit-assessment-dependencies",
    }
    assert len(panel_queries()) >= 30


@pytest.mark.slow
def test_every_panel_query_runs_against_prometheus(monitoring_stack) -> None:
    # Recording rules over 5m-1h windows need a couple of evaluations with two samples.
    monitoring_stack.wait_for_samples("job:credit_assessment_approval_ratio:rate1h")
    monitoring_stack.wait_for_samples("job:credit_assessment_bureau_failure_ratio:rate5m")
    monitoring_stack.wait_for_samples("job_field:credit_assessment_shadow_mismatch_ratio:rate15m")
    errors, empty = [], []
    for dashboard, title, expr in panel_queries():
        promql = expr
        for variable, value in VARIABLES.items():
            promql = promql.replace(variable, value)
        assert "$" not in promql, f"unhandled Grafana variable in {dashboard} / {title}: {expr}"
        try:
            result = monitoring_stack.query(promql)
        except AssertionError as exc:
            errors.append(f"{dashboard} / {title}: {exc}")
            continue
        if not result and not any(marker in expr for marker in EMPTY_ALLOWED_BECAUSE):
            empty.append(f"{dashboard} / {title}: {promql}")
    assert errors == []
    assert empty == [], "queries with no data"
