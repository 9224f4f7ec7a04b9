"""A traffic stage's gates: which judges run on a window's numbers, with which settings.

``WindowMetrics`` is what a metric source measured over one stage window (summed over every
serving instance); ``Gates`` is the plan's gate configuration; ``judge_window`` applies one to
the other and returns one :class:`Judgement` per gate, ready for :class:`Analysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from golive.analysis.aggregate import Limits
from golive.analysis.histogram import EMPTY, Histogram
from golive.analysis.judges import error_rate, latency, mismatch_rate, ratio_threshold
from golive.analysis.stats import Alternative
from golive.analysis.verdict import Judgement

NEW = "new"
LEGACY = "legacy"

# Logical names of the measured families (``WindowMetrics.missing`` lists absent ones).
DECISIONS, ERRORS, LATENCY, SHADOW, LEGACY_CALLS, BUREAU_CALLS, API_REQUESTS = (
    "decisions",
    "errors",
    "latency",
    "shadow",
    "legacy_calls",
    "bureau_calls",
    "api_requests",
)


@dataclass(frozen=True, slots=True)
class ShadowCounts:
    match: int = 0
    mismatch: int = 0

    @property
    def total(self) -> int:
        return self.match + self.mismatch


@dataclass(frozen=True, slots=True)
class ApiRequests:
    """HTTP requests to the service's API routes: how many, how many answered 5xx, how fast."""

    total: int = 0
    server_errors: int = 0
    latency: Histogram = EMPTY  # all statuses


@dataclass(frozen=True, slots=True)
class WindowMetrics:
    """What one stage window measured, summed over every serving instance."""

    duration_s: float
    decisions: Mapping[str, int] = field(default_factory=dict)  # decided, by engine
    errors: Mapping[str, int] = field(default_factory=dict)  # failed to decide, by engine
    latency: Mapping[str, Histogram] = field(default_factory=dict)  # time to decide, by engine
    shadow: Mapping[str, ShadowCounts] = field(default_factory=dict)  # by compared field
    legacy_calls: Mapping[str, int] = field(default_factory=dict)  # by outcome
    bureau_calls: Mapping[str, int] = field(default_factory=dict)  # by outcome
    api: ApiRequests = ApiRequests()  # HTTP requests to the API routes
    missing: tuple[str, ...] = ()  # logical families no instance exposed
    source: str = ""

    def requests(self, engine: str) -> int:
        return self.decisions.get(engine, 0) + self.errors.get(engine, 0)


@dataclass(frozen=True, slots=True)
class ErrorRateGate:
    tolerance_pp: float = 1.0
    alpha: float = 0.001
    min_samples: int = 200


@dataclass(frozen=True, slots=True)
class LatencyGate:
    confidence: float = 0.98
    tolerance_ratio: float = 1.25
    min_shift_s: float = 0.010
    min_samples: int = 100
    alternative: Alternative = "greater"


@dataclass(frozen=True, slots=True)
class MismatchGate:
    field: str = "decision"
    tolerance: float = 0.05
    alpha: float = 0.05
    min_samples: int = 100


@dataclass(frozen=True, slots=True)
class BureauGate:
    max_failure_ratio: float = 0.05
    min_samples: int = 50
    failure_outcomes: tuple[str, ...] = ("error", "timeout", "circuit_open")


@dataclass(frozen=True, slots=True)
class Gates:
    """The plan's ``analysis`` section. A gate set to None is not judged."""

    error_rate: ErrorRateGate | None = ErrorRateGate()
    latency: LatencyGate | None = LatencyGate()
    mismatch: MismatchGate | None = MismatchGate()
    bureau: BureauGate | None = BureauGate()
    limits: Limits = field(default_factory=Limits)

    def required(self, weight_percent: int | None = None) -> tuple[str, ...]:
        """Metric names judged at this weight (at 100% no legacy decision is shadowed)."""
        names = []
        if self.error_rate is not None:
            names.append("error_rate")
        if self.latency is not None:
            names.append("latency")
        if self.mismatch is not None and weight_percent != 100:
            names.append("decision_mismatch")
        if self.bureau is not None:
            names.append("bureau_failures")
        return tuple(names)

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any] | None) -> Gates:
        """Build from the plan's mapping; unknown or mistyped fields raise ValueError naming them.

        ``{"latency": null}`` turns a gate off; an absent gate keeps its defaults.
        """
        document = dict(document or {})
        kinds: dict[str, type[Any]] = {
            "error_rate": ErrorRateGate,
            "latency": LatencyGate,
            "mismatch": MismatchGate,
            "bureau": BureauGate,
            "limits": Limits,
        }
        unknown = sorted(set(document) - set(kinds))
        if unknown:
            raise ValueError(f"unknown analysis field(s): {', '.join(unknown)}")
        built: dict[str, Any] = {}
        for name, kind in kinds.items():
            if name not in document:
                continue
            value = document[name]
            if value is None and name != "limits":
                built[name] = None
                continue
            built[name] = _build(kind, value or {}, name)
        return replace(cls(), **built)


def _build(kind: type[Any], values: Any, where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    defaults = kind()
    converted: dict[str, Any] = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        try:
            if isinstance(default, bool) or default is None:
                converted[name] = value
            elif isinstance(default, tuple):
                converted[name] = tuple(str(v) for v in value)
            elif isinstance(default, int) and not isinstance(value, bool):
                if int(value) != value:
                    raise ValueError
                converted[name] = int(value)
            elif isinstance(default, float) and not isinstance(value, bool):
                converted[name] = float(value)
            else:
                converted[name] = value
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{name}: {value!r} is not a valid value") from None
    if "alternative" in converted and converted["alternative"] not in ("greater", "two-sided"):
        raise ValueError(f"{where}.alternative: must be 'greater' or 'two-sided'")
    return kind(**converted)


def judge_window(
    gates: Gates,
    window: WindowMetrics,
    *,
    weight_percent: int | None = None,
    baseline: WindowMetrics | None = None,
) -> list[Judgement]:
    """One judgement per required gate.

    The legacy side of the comparisons comes from ``window``; when it holds too few legacy
    requests (at 100% none) and ``baseline`` is given -- the previous stage's window -- the
    legacy side comes from there, and the reason says so.
    """
    results: list[Judgement] = []
    missing = set(window.missing)
    required = set(gates.required(weight_percent))

    def absent(metric: str, *families: str) -> Judgement | None:
        gone = sorted(missing.intersection(families))
        if gone:
            return Judgement.error(metric, f"no instance exposes {', '.join(gone)}")
        return None

    if gates.error_rate is not None and "error_rate" in required:
        gate = gates.error_rate
        judgement = absent("error_rate", DECISIONS, ERRORS)
        if judgement is None:
            legacy_from, note = _legacy_side(
                window, baseline, lambda w: w.requests(LEGACY) >= gate.min_samples
            )
            judgement = _noted(
                error_rate(
                    window.errors.get(NEW, 0),
                    window.requests(NEW),
                    legacy_from.errors.get(LEGACY, 0),
                    legacy_from.requests(LEGACY),
                    tolerance_pp=gate.tolerance_pp,
                    alpha=gate.alpha,
                    min_samples=gate.min_samples,
                ),
                note,
            )
        results.append(judgement)

    if gates.latency is not None and "latency" in required:
        lgate = gates.latency
        judgement = absent("latency", LATENCY)
        if judgement is None:
            legacy_from, note = _legacy_side(
                window, baseline, lambda w: w.latency.get(LEGACY, EMPTY).count >= lgate.min_samples
            )
            judgement = _noted(
                latency(
                    window.latency.get(NEW, EMPTY),
                    legacy_from.latency.get(LEGACY, EMPTY),
                    confidence=lgate.confidence,
                    tolerance_ratio=lgate.tolerance_ratio,
                    min_shift_s=lgate.min_shift_s,
                    min_samples=lgate.min_samples,
                    alternative=lgate.alternative,
                ),
                note,
            )
        results.append(judgement)

    if gates.mismatch is not None and "decision_mismatch" in required:
        mgate = gates.mismatch
        judgement = absent("decision_mismatch", SHADOW)
        if judgement is None:
            counts = window.shadow.get(mgate.field, ShadowCounts())
            judgement = mismatch_rate(
                counts.mismatch,
                counts.total,
                tolerance=mgate.tolerance,
                alpha=mgate.alpha,
                min_samples=mgate.min_samples,
                metric="decision_mismatch",
                subject=f"{mgate.field} mismatch",
            )
        results.append(judgement)

    if gates.bureau is not None and "bureau_failures" in required:
        bgate = gates.bureau
        judgement = absent("bureau_failures", BUREAU_CALLS)
        if judgement is None:
            total = sum(window.bureau_calls.values())
            failed = sum(window.bureau_calls.get(o, 0) for o in bgate.failure_outcomes)
            judgement = ratio_threshold(
                failed,
                total,
                max_ratio=bgate.max_failure_ratio,
                min_samples=bgate.min_samples,
                metric="bureau_failures",
            )
        results.append(judgement)
    return results


def _legacy_side(
    window: WindowMetrics,
    baseline: WindowMetrics | None,
    enough: Callable[[WindowMetrics], bool],
) -> tuple[WindowMetrics, str]:
    if baseline is not None and not enough(window) and enough(baseline):
        return (
            baseline,
            f"legacy baseline from an earlier window ({baseline.source or 'previous stage'})",
        )
    return window, ""


def _noted(judgement: Judgement, note: str) -> Judgement:
    if not note:
        return judgement
    return replace(judgement, reason=f"{judgement.reason} [{note}]")
