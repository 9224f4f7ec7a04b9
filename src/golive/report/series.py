"""The series the report's charts draw, folded from a run's journal alone (pure: no I/O).

Times are seconds since the run started. Each series says what it measures and in which unit, so
the chart and the sentence that replaces it when the data is missing come from one place:

- ``step_spans``: when each step ran (the charts mark these boundaries);
- ``weight_points``: the legacy-to-new weight over time (``traffic_shifted``,
  ``traffic_rolled_back``);
- ``load_windows``: the background load per window, by ``slot/engine`` (``background_load``);
- ``gate_series``: each gate's figure against its threshold at every judgement
  (``stage_measured`` for the traffic stages, ``gate_evaluated`` for the hold);
- ``step_timings``: how long the backup and migration steps and each migration took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from golive import journal as j
from golive.journal import RunState
from golive.plan import Plan

TRAFFIC_SHIFTED = "traffic_shifted"
TRAFFIC_ROLLED_BACK = "traffic_rolled_back"
STAGE_MEASURED = "stage_measured"
DATABASE_STEPS = ("backup", "verify-backup", "clone-test", "migrate", "verify-database")


def epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


@dataclass(frozen=True)
class StepSpan:
    name: str
    start_s: float
    end_s: float | None


@dataclass(frozen=True)
class LoadWindowPoint:
    start_s: float
    width_s: float
    by_tag: dict[str, dict[str, Any]]


@dataclass
class GateSeries:
    """One gate metric over the run: ``(time, figure, verdict)`` at each judgement."""

    metric: str
    label: str
    unit: str
    threshold: float | None
    points: list[tuple[float, float, str]] = field(default_factory=list)

    def closest_margin(self) -> float | None:
        """The smallest headroom left under the threshold, as a share of it (0.1: within 10%)."""
        if not self.threshold or not self.points:
            return None
        return min((self.threshold - value) / abs(self.threshold) for _, value, _ in self.points)


def run_origin(events: list[dict[str, Any]]) -> float | None:
    """The first event's time: the zero of every chart's time axis."""
    return epoch(events[0]["ts"]) if events else None


def step_spans(events: list[dict[str, Any]], origin: float) -> list[StepSpan]:
    spans: list[StepSpan] = []
    open_at: dict[str, float] = {}
    for e in events:
        at = epoch(e["ts"])
        if at is None or "step" not in e:
            continue
        if e["event"] == j.STEP_STARTED:
            open_at.setdefault(e["step"], at - origin)
        elif e["event"] in (j.STEP_FINISHED, j.STEP_FAILED) and e["step"] in open_at:
            spans.append(StepSpan(e["step"], open_at.pop(e["step"]), at - origin))
    spans += [StepSpan(name, start, None) for name, start in open_at.items()]
    return sorted(spans, key=lambda s: s.start_s)


def weight_points(events: list[dict[str, Any]], origin: float) -> list[tuple[float, int]]:
    """The weight after each change; starts at 0 when the run starts."""
    points: list[tuple[float, int]] = []
    for e in events:
        at = epoch(e["ts"])
        if at is None:
            continue
        if e["event"] == TRAFFIC_SHIFTED:
            points.append((at - origin, int(e["weight"])))
        elif e["event"] == TRAFFIC_ROLLED_BACK:
            points.append((at - origin, int(e.get("to", 0))))
    return [(0.0, 0), *points] if points else []


def load_windows(events: list[dict[str, Any]], origin: float) -> list[LoadWindowPoint]:
    found = [e for e in events if e["event"] == j.BACKGROUND_LOAD]
    if not found:
        return []
    figures = found[-1].get("figures") or {}
    return [
        LoadWindowPoint(
            float(w["start"]) - origin,
            float(w.get("width_s") or figures.get("window_s") or 10),
            w.get("by_tag") or {},
        )
        for w in figures.get("windows") or []
    ]


def _stage_gate(metric: str, f: dict[str, Any]) -> tuple[str, str, float, float] | None:
    """(label, unit, value, threshold) of one traffic gate's judgement, when it has a figure."""
    if metric == "error_rate" and f.get("difference_pp") is not None:
        return "error rate, new − legacy", "pp", f["difference_pp"], f["tolerance_pp"]
    if metric == "latency" and f.get("median_ratio") is not None:
        return "median latency, new ÷ legacy", "×", f["median_ratio"], f["tolerance_ratio"]
    if metric == "decision_mismatch" and f.get("ratio") is not None:
        return "decision mismatch", "%", 100 * f["ratio"], 100 * f["tolerance"]
    if f.get("value") is not None and f.get("max_value") is not None:
        unit = "%" if "failures" in f else ""
        scale = 100.0 if unit == "%" else 1.0
        return metric.replace("_", " "), unit, scale * f["value"], scale * f["max_value"]
    return None


def _hold_gates(
    figures: dict[str, Any], limits: dict[str, Any], plan: Plan
) -> list[tuple[str, str, str, float, float]]:
    """(metric, label, unit, value, threshold) of one hold judgement; the thresholds journaled
    with it, else (a journal older than them) the plan's."""
    max_p99_ms = float(limits.get("max_p99_ms", plan.gates.max_p99_ms))
    max_error_ratio = float(limits.get("max_error_ratio", plan.gates.max_error_ratio))
    found = []
    for side in ("green", "clients"):
        requests = figures.get(f"{side}_requests")
        if figures.get(f"{side}_p99_ms") is not None:
            found.append(
                (
                    f"hold_{side}_p99",
                    f"hold: {side} p99 latency",
                    "ms",
                    float(figures[f"{side}_p99_ms"]),
                    max_p99_ms,
                )
            )
        if requests:
            ratio = 100 * float(figures.get(f"{side}_errors") or 0) / float(requests)
            found.append(
                (
                    f"hold_{side}_errors",
                    f"hold: {side} error ratio",
                    "%",
                    ratio,
                    100 * max_error_ratio,
                )
            )
    return found


def gate_series(events: list[dict[str, Any]], origin: float, plan: Plan) -> list[GateSeries]:
    series: dict[str, GateSeries] = {}

    def add(metric: str, label: str, unit: str, at: float, value: float, limit: float, v: str):
        entry = series.setdefault(metric, GateSeries(metric, label, unit, limit))
        entry.threshold = limit
        entry.points.append((at, float(value), v))

    for e in events:
        at = epoch(e["ts"])
        if at is None:
            continue
        if e["event"] == STAGE_MEASURED:
            for metric, gate in (e.get("gates") or {}).items():
                found = _stage_gate(metric, gate.get("figures") or {})
                if found is not None:
                    add(metric, *found[:2], at - origin, found[2], found[3], gate["verdict"])
        elif e["event"] == j.GATE_EVALUATED:
            figures, limits = e.get("figures") or {}, e.get("thresholds") or {}
            for metric, label, unit, value, limit in _hold_gates(figures, limits, plan):
                add(metric, label, unit, at - origin, value, limit, e.get("verdict", ""))
    return list(series.values())


def step_timings(state: RunState) -> list[tuple[str, float]]:
    """Seconds each database step took, then each migration applied (``migrate: <rev>``)."""
    timings: list[tuple[str, float]] = []
    for name in DATABASE_STEPS:
        record = state.steps.get(name)
        start, end = (
            epoch(record.started if record else None),
            epoch(record.finished if record else None),
        )
        if start is not None and end is not None:
            timings.append((name, end - start))
    for applied in state.figures("migrate").get("applied") or []:
        if applied.get("duration_ms") is not None:
            timings.append(
                (f"migration {applied.get('revision')}", float(applied["duration_ms"]) / 1000)
            )
    return timings
