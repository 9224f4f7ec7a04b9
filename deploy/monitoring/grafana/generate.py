"""Grafana dashboards as code for the credit assessment service and the go-live.

    python deploy/monitoring/grafana/generate.py          # write dashboards/*.json
    python deploy/monitoring/grafana/generate.py --check  # exit 1 when the JSON is stale

Built with grafana-foundation-sdk (the build for Grafana 11.6). The JSON under
dashboards/ is committed; a test checks it equals this script's output and runs every
panel's PromQL against a real Prometheus. Panels read the recording rules of
deploy/monitoring/prometheus/rules/ where one exists, so dashboards and alerts agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)

PanelT = TypeVar("PanelT", timeseries.Panel, stat.Panel)
DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SERVICE = 'job="credit-assessment"'
SLOT = 'slot=~"$slot"'
API = 'route=~"/api/.*"'
HISTOGRAM = "credit_assessment_http_request_duration_seconds"
IN_FLIGHT = "credit_assessment_http_requests_in_flight"
NEW = 'job="credit-assessment", engine="new"'
TAGS = ["credit-assessment", "generated"]


def of(metric: str, *matchers: str) -> str:
    """`metric{job="credit-assessment", slot=~"$slot", ...}`."""
    return f"{metric}{{{', '.join([SERVICE, SLOT, *matchers])}}}"


def rate(metric: str, *matchers: str) -> str:
    return f"rate({of(metric, *matchers)}[$__rate_interval])"


def query(expr: str, legend: str = "__auto", ref_id: str = "A") -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
    )


def with_queries(panel: PanelT, queries: list[tuple[str, str]]) -> PanelT:
    for index, (expr, legend) in enumerate(queries):
        panel = panel.with_target(query(expr, legend, ref_id=chr(ord("A") + index)))
    return panel


def series(
    title: str,
    queries: list[tuple[str, str]],
    *,
    unit: str = "short",
    description: str = "",
    stacked: bool = False,
    width: int = 12,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .fill_opacity(15 if stacked else 5)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return with_queries(panel, queries)


def single(
    title: str,
    expr: str,
    *,
    legend: str = "__auto",
    unit: str = "short",
    description: str = "",
    width: int = 6,
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(common.BigValueGraphMode.AREA)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr, legend))
    )


def base(
    uid: str, title: str, description: str, *, slot_variable: bool = True
) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )
    if slot_variable:
        board = board.with_variable(
            dashboard.QueryVariable("slot")
            .label("Slot")
            .datasource(DATASOURCE)
            .query(f"label_values(up{{{SERVICE}}}, slot)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    return board


def _quantile(q: str, by: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) "
        f"(rate({of(HISTOGRAM + '_bucket', API)}[$__rate_interval])))"
    )


def _engine_quantile(q: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (engine, le) "
        f"(rate(credit_assessment_decision_duration_seconds_bucket{{{SERVICE}}}[$__rate_interval])))"
    )


def service_overview() -> dashboard.Dashboard:
    requests = f"credit_assessment_http_request_duration_seconds_count{{{SERVICE}, {API}, {SLOT}}}"
    return (
        base(
            "credit-assessment-overview",
            "Credit assessment / Service overview",
            "Traffic, errors and latency of the API by slot; decisions by engine.",
        )
        .with_row(dashboard.Row("Now"))
        .with_panel(
            single(
                "Ready instances",
                f"sum by (slot) (credit_assessment_ready{{{SERVICE}, {SLOT}}})",
                legend="{{slot}}",
                description="Instances whose /ready passes (credit_assessment_ready).",
            )
        )
        .with_panel(
            single(
                "5xx ratio (5m)",
                f"slot:credit_assessment_http_error_ratio:rate5m{{{SLOT}}}",
                legend="{{slot}}",
                unit="percentunit",
                description="Share of API requests answered 5xx. SLO: 99.9% (0.1% budget).",
            )
        )
        .with_panel(
            single(
                "p99 latency (5m)",
                f"slot:credit_assessment_http_request_duration_seconds:p99_rate5m{{{SLOT}}}",
                legend="{{slot}}",
                unit="s",
                description="SLO: p99 under 0.5 s.",
            )
        )
        .with_panel(
            single(
                "Versions",
                f"count by (slot, version) (credit_assessment_build_info{{{SERVICE}, {SLOT}}})",
                legend="{{slot}} {{version}}",
                description="Instances per slot and version.",
            )
        )
        .with_row(dashboard.Row("Traffic and errors"))
        .with_panel(
            series(
                "API requests by slot and status",
                [
                    (
                        f"sum by (slot, status) (rate({requests}[$__rate_interval]))",
                        "{{slot}} {{status}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Assessments by engine and slot",
                [
                    (
                        f"sum by (engine, slot) ({rate('credit_assessments_total')})",
                        "{{engine}} {{slot}}",
                    )
                ],
                unit="reqps",
                stacked=True,
                description="Decisions per second from the new engine and the legacy system.",
            )
        )
        .with_panel(
            series(
                "5xx ratio against the burn-rate thresholds",
                [
                    (f"slot:credit_assessment_http_error_ratio:rate5m{{{SLOT}}}", "{{slot}} 5m"),
                    (f"slot:credit_assessment_http_error_ratio:rate1h{{{SLOT}}}", "{{slot}} 1h"),
                    ("vector(14.4 * 0.001)", "fast burn (14.4x)"),
                    ("vector(6 * 0.001)", "slow burn (6x)"),
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Requests in flight",
                [
                    (
                        f"sum by (slot, instance) ({of(IN_FLIGHT)})",
                        "{{slot}} {{instance}}",
                    )
                ],
            )
        )
        .with_row(dashboard.Row("Latency"))
        .with_panel(
            series(
                "API latency percentiles by slot",
                [
                    (_quantile("0.5", "slot"), "p50 {{slot}}"),
                    (_quantile("0.9", "slot"), "p90 {{slot}}"),
                    (_quantile("0.99", "slot"), "p99 {{slot}}"),
                    ("vector(0.5)", "p99 SLO"),
                ],
                unit="s",
                description="Whole requests as the API answered them, per slot.",
            )
        )
        .with_panel(
            series(
                "Decision latency by engine",
                [
                    (_engine_quantile("0.5"), "p50 {{engine}}"),
                    (_engine_quantile("0.99"), "p99 {{engine}}"),
                ],
                unit="s",
                description=(
                    "Time to decide one application: the legacy system's answer time, or the "
                    "new engine's (credit_assessment_decision_duration_seconds)."
                ),
            )
        )
        .with_panel(
            series(
                "p99 latency by route",
                [(_quantile("0.99", "route"), "{{route}}")],
                unit="s",
            )
        )
    )


def decisions() -> dashboard.Dashboard:
    decided = f"credit_assessments_total{{{SERVICE}, {SLOT}}}"
    return (
        base(
            "credit-assessment-decisions",
            "Credit assessment / Decisions",
            "Approval rate, decision mix, and legacy-against-new agreement.",
        )
        .with_panel(
            single(
                "Approval rate (1h)",
                "job:credit_assessment_approval_ratio:rate1h",
                legend="now",
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            single(
                "Approval rate, same hour last week",
                "job:credit_assessment_approval_ratio:rate1h offset 1w",
                legend="last week",
                unit="percentunit",
                width=8,
                description="The alert CreditAssessmentApprovalRateShift fires beyond 10 points.",
            )
        )
        .with_panel(
            single(
                "Decisions per hour",
                "job:credit_assessments:rate1h * 3600",
                legend="per hour",
                width=8,
            )
        )
        .with_panel(
            series(
                "Approval rate by engine, and last week",
                [
                    ("engine:credit_assessment_approval_ratio:rate1h", "{{engine}}"),
                    ("job:credit_assessment_approval_ratio:rate1h offset 1w", "all, a week ago"),
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Decision mix",
                [(f"sum by (decision) (rate({decided}[$__rate_interval]))", "{{decision}}")],
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Decisions by engine",
                [
                    (
                        f"sum by (engine, decision) (rate({decided}[$__rate_interval]))",
                        "{{engine}} {{decision}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Legacy against new: mismatch ratio by field (15m)",
                [
                    ("job_field:credit_assessment_shadow_mismatch_ratio:rate15m", "{{field}}"),
                    ("vector(0.05)", "alert threshold"),
                ],
                unit="percentunit",
                description="Shadow comparisons of the two engines on the same application.",
            )
        )
        .with_panel(
            series(
                "Shadow comparisons by field and outcome",
                [
                    (
                        "sum by (field, outcome) (rate(credit_assessment_shadow_comparisons_total"
                        f"{{{SERVICE}}}[$__rate_interval]))",
                        "{{field}} {{outcome}}",
                    )
                ],
                unit="reqps",
                width=24,
            )
        )
    )


def golive() -> dashboard.Dashboard:
    current_stage = (
        "golive_stage_started_timestamp_seconds == on (job, instance) group_left () "
        "max by (job, instance) (golive_stage_started_timestamp_seconds)"
    )
    return (
        base(
            "credit-assessment-golive",
            "Credit assessment / Go-live",
            "Traffic weight, stages and evidence of the go-live run (job golive).",
            slot_variable=False,
        )
        .with_panel(
            single(
                "Traffic to the new engine (flag)", "golive_traffic_weight_percent", unit="percent"
            )
        )
        .with_panel(
            single(
                "New engine share (measured)",
                f"sum(rate(credit_assessments_total{{{NEW}}}[$__rate_interval])) "
                f"/ sum(rate(credit_assessments_total{{{SERVICE}}}[$__rate_interval]))",
                legend="measured",
                unit="percentunit",
                description="Decisions actually made by the new engine: should follow the flag.",
            )
        )
        .with_panel(
            single(
                "Current stage (started)",
                current_stage,
                legend="{{stage}}",
                unit="dateTimeFromNow",
            )
        )
        .with_panel(
            single(
                "Critical alerts firing",
                'count(ALERTS{alertstate="firing", severity="critical"}) or vector(0)',
                legend="critical",
            )
        )
        .with_panel(
            series(
                "Traffic weight: flag and measured",
                [
                    ("golive_traffic_weight_percent / 100", "flag"),
                    (
                        f"sum(rate(credit_assessments_total{{{NEW}}}[$__rate_interval])) "
                        f"/ sum(rate(credit_assessments_total{{{SERVICE}}}[$__rate_interval]))",
                        "measured",
                    ),
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Time left before each stage's deadline",
                [("golive_stage_deadline_timestamp_seconds - time()", "{{stage}}")],
                unit="s",
                description="Below zero: past the deadline (GoLiveStageOverdue).",
            )
        )
        .with_panel(
            series(
                "Age of the last verified backup",
                [
                    ("time() - golive_backup_last_verified_timestamp_seconds", "age"),
                    ("vector(26 * 3600)", "warning"),
                ],
                unit="s",
            )
        )
        .with_panel(
            series(
                "Ready instances by slot",
                [(f"sum by (slot) (credit_assessment_ready{{{SERVICE}}})", "{{slot}}")],
            )
        )
        .with_panel(
            series(
                "Step in progress and pauses",
                [
                    ('golive_step_info{job="golive"}', "{{action}} {{step}}"),
                    ('golive_run_paused{job="golive"}', "paused"),
                ],
                description="The step golive runs (or undoes) now, from its own metrics.",
                width=24,
            )
        )
    )


def dependencies() -> dashboard.Dashboard:
    bureau = f"credit_assessment_bureau_requests_total{{{SERVICE}, {SLOT}}}"
    return (
        base(
            "credit-assessment-dependencies",
            "Credit assessment / Dependencies",
            "Database connection pool and credit bureau.",
        )
        .with_row(dashboard.Row("Database"))
        .with_panel(
            series(
                "Database pool utilisation",
                [
                    (
                        f"instance:credit_assessment_db_pool_utilisation:ratio{{{SLOT}}}",
                        "{{slot}} {{instance}}",
                    ),
                    ("vector(0.8)", "warning"),
                ],
                unit="percentunit",
            )
        )
        .with_panel(
            series(
                "Database connections by state",
                [
                    (
                        f"sum by (slot, state) ({of('credit_assessment_db_pool_connections')})",
                        "{{slot}} {{state}}",
                    ),
                    (
                        f"sum by (slot) ({of('credit_assessment_db_pool_max_connections')})",
                        "{{slot}} max",
                    ),
                ],
            )
        )
        .with_row(dashboard.Row("Credit bureau"))
        .with_panel(
            series(
                "Bureau requests by outcome",
                [(f"sum by (outcome) (rate({bureau}[$__rate_interval]))", "{{outcome}}")],
                unit="reqps",
                stacked=True,
                width=8,
            )
        )
        .with_panel(
            series(
                "Bureau failure ratio (5m)",
                [
                    ("job:credit_assessment_bureau_failure_ratio:rate5m", "failures"),
                    ("vector(0.1)", "alert threshold"),
                ],
                unit="percentunit",
                width=8,
            )
        )
        .with_panel(
            series(
                "Bureau circuit open",
                [
                    (
                        f"max by (slot, instance) ({of('credit_assessment_bureau_circuit_open')})",
                        "{{slot}} {{instance}}",
                    )
                ],
                width=8,
            )
        )
        .with_row(dashboard.Row("Scrapes"))
        .with_panel(
            series(
                "Scrape health",
                [
                    (f"up{{{SERVICE}, {SLOT}}}", "{{slot}} {{instance}}"),
                    ('up{job="golive"}', "golive"),
                ],
                width=24,
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "service-overview.json": service_overview,
    "decisions.json": decisions,
    "golive.json": golive,
    "dependencies.json": dependencies,
}


def render_all() -> dict[str, str]:
    """File name -> dashboard JSON text, exactly as committed."""
    return {
        name: json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is stale")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = DASHBOARDS_DIR / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if stale:
        print(f"stale dashboards (run generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
