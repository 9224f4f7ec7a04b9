"""The report and the review pack as self-contained pages: one HTML file each, nothing fetched.

Section bodies are the same Markdown as ``report.md`` (rendered with markdown-it, raw HTML off,
links to the network shown as text); charts are inline SVG (``golive.report.charts``). The page
carries its own styles, no script and no link to anything outside itself, so it opens the same
from a file share, an e-mail attachment or an air-gapped laptop.
"""

from __future__ import annotations

from typing import Any

from golive.report import charts
from golive.report.model import ChartSpec, ReportModel

EXTERNAL = ("http:", "https:", "//", "ftp:")


def _local_link(url: str) -> bool:
    """Links inside the page only: a network address is shown as text, never followed."""
    return not url.strip().lower().startswith(EXTERNAL)


def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.validateLink = _local_link  # type: ignore[method-assign]
    return md


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader("golive.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def draw(spec: ChartSpec, report: ReportModel) -> str | None:
    """The chart's SVG, or None when the spec carries the sentence that replaces it."""
    if spec.missing is not None or spec.data is None:
        return None
    if spec.kind == "weight":
        return charts.weight_chart(spec.data, report.spans, report.end_s)
    if spec.kind == "load_rate":
        return charts.load_rate_chart(spec.data, report.spans, report.end_s)
    if spec.kind == "latency":
        return charts.latency_chart(spec.data, report.spans, report.end_s)
    if spec.kind == "gate":
        return charts.gate_chart(spec.data, report.spans, report.end_s)
    if spec.kind == "timings":
        return charts.timings_chart(spec.data)
    raise ValueError(f"no chart of kind {spec.kind!r}")


def markdown_html(lines: list[str]) -> str:
    return str(_markdown().render("\n".join(lines)))


def _chart(spec: ChartSpec, report: ReportModel, index: int) -> dict[str, Any]:
    svg = draw(spec, report)
    return {
        "kind": spec.kind,
        "title": spec.title,
        "svg": charts.scoped(svg, f"chart{index}") if svg else None,
        "missing": spec.missing,
    }


def render_report(report: ReportModel) -> str:
    md = _markdown()
    count = iter(range(1_000_000))
    sections = [
        {
            "key": part.key,
            "title": part.title,
            "body": md.render("\n".join(part.lines)),
            "charts": [_chart(spec, report, next(count)) for spec in part.charts],
        }
        for part in report.sections
    ]
    template = _environment().get_template("report.html.j2")
    return str(
        template.render(
            title=report.title,
            outcome=report.outcome,
            sections=sections,
            footer=md.render(report.footer),
        )
    )


def render_page(template: str, **values: Any) -> str:
    """Any other page of the pack (the review), from its template."""
    return str(_environment().get_template(template).render(**values))
