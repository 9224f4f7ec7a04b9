"""The report as one pure model of sections, shared by ``report.md`` and ``report.html``.

A ``Section`` is a title, its Markdown body and the charts that go with it. A ``ChartSpec`` holds
the series a chart draws, or the sentence that stands in for it when the run did not measure
what it needs (no background load, no traffic stage, no database step reached). Markdown prints
the bodies; the page renders the bodies and draws the charts (``golive.report.charts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from golive.journal import RunState
from golive.plan import Plan
from golive.report import series as s


@dataclass(frozen=True)
class ChartSpec:
    kind: str  # weight | load_rate | latency | gate | timings
    title: str
    data: Any = None
    missing: str | None = None  # the sentence shown instead when there is nothing to draw


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    lines: list[str]
    charts: list[ChartSpec] = field(default_factory=list)


@dataclass(frozen=True)
class ReportModel:
    title: str
    run_id: str | None
    outcome: str
    sections: list[Section]
    spans: list[s.StepSpan]
    end_s: float
    footer: str

    def section(self, key: str) -> Section:
        return next(section for section in self.sections if section.key == key)


def section(key: str, lines: list[str], charts: list[ChartSpec] | None = None) -> Section:
    """A section from Markdown lines that start with their ``## Title`` heading."""
    title = lines[0].removeprefix("## ").strip() if lines else key
    body = lines[1:]
    while body and not body[0].strip():
        body = body[1:]
    return Section(key, title, body, charts or [])


@dataclass(frozen=True)
class Charts:
    """Every chart of a run, by the section it belongs to."""

    weight: ChartSpec
    load: list[ChartSpec]
    gates: list[ChartSpec]
    timings: ChartSpec
    spans: list[s.StepSpan]
    end_s: float


def charts(events: list[dict[str, Any]], state: RunState, plan: Plan) -> Charts:
    origin = s.run_origin(events) or 0.0
    end_s = max((s.epoch(e["ts"]) or origin) - origin for e in events) if events else 0.0
    spans = s.step_spans(events, origin)
    points = s.weight_points(events, origin)
    weight = ChartSpec(
        "weight",
        "Traffic weight over time",
        points,
        None if points else "No traffic stage ran in this run, so the weight never changed.",
    )
    windows = s.load_windows(events, origin)
    why_no_load = (
        "No background load ran in this run (it runs in `golive rehearse`), so there are no "
        "per-window request or latency figures to chart."
    )
    load = [
        ChartSpec("load_rate", "Requests per second", windows, None if windows else why_no_load),
        ChartSpec("latency", "Latency per window", windows, None if windows else why_no_load),
    ]
    gate_series = s.gate_series(events, origin, plan)
    gates = [ChartSpec("gate", g.label, g) for g in gate_series] or [
        ChartSpec("gate", "Gates", None, "No gate was judged with a figure in this run.")
    ]
    timings = s.step_timings(state)
    timing = ChartSpec(
        "timings",
        "Backup and migration timings",
        timings,
        None if timings else "The backup and migration steps did not finish in this run.",
    )
    return Charts(weight, load, gates, timing, spans, max(end_s, 1.0))


def markdown(model: ReportModel) -> str:
    """``report.md``: every section's body, without the charts."""
    lines = [f"# {model.title}", ""]
    for part in model.sections:
        lines += [f"## {part.title}", "", *part.lines]
        if lines[-1].strip():
            lines.append("")
    lines += [model.footer, ""]
    return "\n".join(lines)
