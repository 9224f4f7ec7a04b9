"""Pure judges: measured numbers in, PASS / FAIL / INCONCLUSIVE with a reason out.

No I/O here (import-linter holds it): metric sources in ``golive.metrics`` fetch the numbers,
the runner records the judgements, these functions only decide. docs/analysis.md explains each
judge's maths and defaults.

    error_rate       two-proportion z-test (new worse than legacy) + absolute tolerance (pp)
    latency          Mann-Whitney U + median-ratio effect size (Kayenta), p99 as a figure
    mismatch_rate    Wilson bounds of the shadow mismatch share against a tolerance
    threshold        a plain bound; ratio_threshold for failure shares (bureau)
    judge_thresholds absolute limits on each source's error ratio and p99 (the hold)
    Analysis         measurements over a stage -> stage verdict (Argo Rollouts' limits)
    judge_window     a stage window's metrics + the plan's gates -> one judgement per gate
"""

from golive.analysis.aggregate import Analysis, Limits, MetricSummary, StageVerdict, evaluate
from golive.analysis.gates import (
    LEGACY,
    NEW,
    ApiRequests,
    BureauGate,
    ErrorRateGate,
    Gates,
    LatencyGate,
    MismatchGate,
    ShadowCounts,
    WindowMetrics,
    judge_window,
)
from golive.analysis.histogram import Histogram
from golive.analysis.judges import error_rate, latency, mismatch_rate, ratio_threshold, threshold
from golive.analysis.thresholds import SourceWindow, Thresholds, ThresholdVerdict, judge_thresholds
from golive.analysis.verdict import Judgement, Verdict

__all__ = [
    "LEGACY",
    "NEW",
    "Analysis",
    "ApiRequests",
    "BureauGate",
    "ErrorRateGate",
    "Gates",
    "Histogram",
    "Judgement",
    "LatencyGate",
    "Limits",
    "MetricSummary",
    "MismatchGate",
    "ShadowCounts",
    "SourceWindow",
    "StageVerdict",
    "ThresholdVerdict",
    "Thresholds",
    "Verdict",
    "WindowMetrics",
    "error_rate",
    "evaluate",
    "judge_thresholds",
    "judge_window",
    "latency",
    "mismatch_rate",
    "ratio_threshold",
    "threshold",
]
