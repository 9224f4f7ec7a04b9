"""The report's charts as inline SVG, drawn with matplotlib's Agg backend from ``series``.

Text stays text (``svg.fonttype: none``): the page names no font file and fetches nothing, and a
reader (or a test) finds the tick labels and annotations in the markup. The XML prologue, DOCTYPE
and metadata are dropped so the SVG sits inside the HTML as it is. Each function returns the SVG
markup, or None when there is nothing to draw (the report then says why in a sentence).
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from golive.report.series import GateSeries, LoadWindowPoint, StepSpan

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "golive-report",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_VERDICT_COLOURS = {"pass": "tab:green", "passed": "tab:green", "fail": "tab:red"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


# pyplot and rc_context are process-wide: the live page draws in the exporter's threads while
# the runner may write the report, so one figure at a time.
_DRAWING = threading.RLock()


@contextmanager
def _figure(width: float = 9.0, height: float = 3.2) -> Iterator[tuple[Any, Any]]:
    plt = _pyplot()
    import matplotlib

    with _DRAWING, matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)


def scoped(svg: str, prefix: str) -> str:
    """The SVG with every id (and every reference to one) prefixed, so several charts on one
    page never share an id."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    if not ids:
        return svg
    pattern = re.compile(r'(\bid="|"#|\(#)(' + "|".join(map(re.escape, ids)) + r')(?=[")])')
    return pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)


def time_unit(span_s: float) -> tuple[float, str]:
    """Seconds, minutes or hours since the run started, whichever reads best."""
    if span_s <= 600:
        return 1.0, "s"
    if span_s <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _mark_steps(ax: Any, spans: list[StepSpan], scale: float) -> None:
    """Step boundaries: a dotted line at each step's start, labelled with its name."""
    top = ax.get_ylim()[1]
    for index, span in enumerate(spans):
        ax.axvline(span.start_s / scale, color="grey", linestyle=":", linewidth=0.8)
        if index % 2 == 0 and span.end_s is not None:
            ax.axvspan(span.start_s / scale, span.end_s / scale, color="grey", alpha=0.06)
        ax.text(
            span.start_s / scale,
            top,
            span.name,
            rotation=90,
            fontsize=6,
            va="top",
            ha="right",
            color="dimgrey",
        )


def _legend_below(ax: Any) -> None:
    """The legend under the axes, where it hides neither a line nor a step's name."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncols=4, frameon=False)


def _x_axis(ax: Any, unit: str) -> None:
    ax.set_xlabel(f"time since the run started ({unit})")


def weight_chart(points: list[tuple[float, int]], spans: list[StepSpan], end_s: float) -> str:
    scale, unit = time_unit(end_s)
    with _figure() as (fig, ax):
        xs = [t / scale for t, _ in points] + [end_s / scale]
        ys = [w for _, w in points] + [points[-1][1]]
        ax.step(xs, ys, where="post", color="tab:blue", linewidth=2, label="weight")
        for t, w in points[1:]:
            ax.annotate(f"{w}%", (t / scale, w), textcoords="offset points", xytext=(3, 4))
        ax.set_ylim(0, 115)
        ax.set_yticks([0, 10, 50, 100])
        ax.set_ylabel("requests to the new engine (%)")
        ax.set_title("Traffic weight (legacy → new engine)")
        _x_axis(ax, unit)
        _mark_steps(ax, spans, scale)
        return _svg(fig)


def _tags(windows: list[LoadWindowPoint]) -> list[str]:
    return sorted({tag for w in windows for tag in w.by_tag})


def load_rate_chart(windows: list[LoadWindowPoint], spans: list[StepSpan], end_s: float) -> str:
    scale, unit = time_unit(end_s)
    with _figure(height=3.8) as (fig, ax):
        xs = [w.start_s / scale for w in windows]
        for tag in _tags(windows):
            per_s = [(w.by_tag.get(tag) or {}).get("requests", 0) / w.width_s for w in windows]
            failed = [(w.by_tag.get(tag) or {}).get("failed", 0) / w.width_s for w in windows]
            ax.plot(xs, per_s, marker=".", label=f"{tag} requests")
            if any(failed):
                ax.plot(xs, failed, marker="x", linestyle="--", label=f"{tag} failed")
        ax.set_ylabel("requests per second (req/s)")
        ax.set_title("Background load by slot/engine: requests and failed requests per second")
        _x_axis(ax, unit)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # headroom for the steps' names
        _mark_steps(ax, spans, scale)
        _legend_below(ax)
        return _svg(fig)


def latency_chart(windows: list[LoadWindowPoint], spans: list[StepSpan], end_s: float) -> str:
    scale, unit = time_unit(end_s)
    with _figure(height=3.8) as (fig, ax):
        xs = [w.start_s / scale for w in windows]
        for tag in _tags(windows):
            for quantile, style in (("p50_ms", "-"), ("p99_ms", "--")):
                ys = [(w.by_tag.get(tag) or {}).get(quantile) for w in windows]
                values = [float("nan") if y is None else y for y in ys]
                ax.plot(xs, values, linestyle=style, marker=".", label=f"{tag} {quantile[:3]}")
        ax.set_ylabel("latency (ms)")
        ax.set_title("Background load latency per window: p50 and p99 by slot/engine")
        _x_axis(ax, unit)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # headroom for the steps' names
        _mark_steps(ax, spans, scale)
        _legend_below(ax)
        return _svg(fig)


def gate_chart(series: GateSeries, spans: list[StepSpan], end_s: float) -> str:
    scale, unit = time_unit(end_s)
    with _figure(width=6.0, height=2.6) as (fig, ax):
        xs = [t / scale for t, _, _ in series.points]
        ys = [v for _, v, _ in series.points]
        ax.plot(xs, ys, color="tab:blue", linewidth=1, label="figure")
        colours = [_VERDICT_COLOURS.get(v.lower(), "tab:orange") for _, _, v in series.points]
        ax.scatter(xs, ys, c=colours, s=14, zorder=3)
        if series.threshold is not None:
            ax.axhline(series.threshold, color="tab:red", linestyle="--", label="threshold")
            ax.annotate(
                f"threshold {series.threshold:g} {series.unit}",
                (xs[0] if xs else 0, series.threshold),
                textcoords="offset points",
                xytext=(0, 3),
                color="tab:red",
                fontsize=7,
            )
        ax.set_ylabel(f"{series.label} ({series.unit or 'value'})", fontsize=7)
        ax.set_title(f"Gate: {series.label} at each judgement", fontsize=9)
        _x_axis(ax, unit)
        _mark_steps(ax, spans, scale)
        return _svg(fig)


def timings_chart(timings: list[tuple[str, float]]) -> str:
    with _figure(height=max(1.8, 0.45 * len(timings) + 0.8)) as (fig, ax):
        names = [name for name, _ in timings][::-1]
        seconds = [s for _, s in timings][::-1]
        bars = ax.barh(names, seconds, color="tab:purple")
        ax.bar_label(bars, labels=[f"{s:.2f} s" for s in seconds], fontsize=7, padding=2)
        ax.set_xlabel("duration (s)")
        ax.set_title("Backup and migration: how long each took")
        ax.set_xlim(0, max(seconds) * 1.25 if seconds and max(seconds) > 0 else 1)
        return _svg(fig)
