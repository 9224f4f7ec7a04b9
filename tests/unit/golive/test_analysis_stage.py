"""A stage's analysis: Argo Rollouts' limits over measurements, and the plan's gates."""

from __future__ import annotations

import math

import pytest

from golive.analysis import (
    LEGACY,
    NEW,
    Analysis,
    Gates,
    Histogram,
    Judgement,
    Limits,
    ShadowCounts,
    Verdict,
    WindowMetrics,
    evaluate,
    judge_window,
)

P, F, I, E = Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR  # noqa: E741


def _j(metric: str, verdict: Verdict) -> Judgement:
    return Judgement(verdict, metric, f"{metric} was {verdict.value.lower()}")


@pytest.mark.parametrize(
    ("sequence", "limits", "expected", "held"),
    [
        ([], Limits(), I, False),  # nothing measured yet
        ([P], Limits(), P, False),
        ([I, I, P], Limits(), P, False),  # data arrived: the latest says pass
        ([P, I], Limits(), I, False),  # latest inconclusive: keep measuring
        ([P, F], Limits(), F, False),  # failure_limit 0: the first FAIL
        ([F, P], Limits(failure_limit=1), P, False),  # one FAIL tolerated
        ([F, P, F], Limits(failure_limit=1), F, False),  # failures are cumulative
        ([E, E, E, E], Limits(), I, False),  # 4 consecutive errors: at the limit
        ([E, E, E, E, E], Limits(), F, False),  # 5 > consecutive_error_limit 4
        ([E, E, P, E, E, E], Limits(), I, False),  # a good measurement resets the run
        ([E, E, E, E, P], Limits(), P, False),
        ([E], Limits(consecutive_error_limit=0), F, False),
        ([I, I, I], Limits(inconclusive_limit=2), I, True),  # Argo: pause for a person
        ([I, I], Limits(inconclusive_limit=2), I, False),
    ],
)
def test_one_metric(sequence, limits, expected, held) -> None:
    verdict = evaluate(["error_rate"], [_j("error_rate", v) for v in sequence], limits)
    assert verdict.verdict is expected, verdict.reasons
    assert verdict.inconclusive_limit_reached is held


def test_every_required_metric_must_pass() -> None:
    analysis = Analysis(("error_rate", "latency"))
    analysis = analysis.record(_j("error_rate", P))
    verdict = analysis.verdict()
    assert verdict.verdict is I
    assert verdict.reasons == ("latency: not measured yet",)
    verdict = analysis.record(_j("latency", P)).verdict()
    assert verdict.passed
    assert verdict.reasons == ("error_rate: error_rate was pass", "latency: latency was pass")


def test_failure_reason_and_counts() -> None:
    analysis = Analysis(("error_rate", "latency"), Limits(failure_limit=0))
    analysis = analysis.record(_j("error_rate", P), _j("latency", F))
    verdict = analysis.verdict()
    assert verdict.failed
    assert verdict.reasons == ("latency: 1 failed measurement(s) (limit 0): latency was fail",)
    latency = next(s for s in verdict.metrics if s.metric == "latency")
    assert (latency.measurements, latency.failures) == (1, 1)


def test_errors_from_a_source_fail_after_the_limit() -> None:
    analysis = Analysis(("error_rate", "latency"))
    for _ in range(5):
        analysis = analysis.record_error("Prometheus at http://127.0.0.1:9 unreachable")
    verdict = analysis.verdict()
    assert verdict.failed
    assert "5 consecutive measurement errors (limit 4)" in verdict.reasons[0]
    assert "unreachable" in verdict.reasons[0]


def test_an_error_is_never_a_pass() -> None:
    analysis = Analysis(("error_rate",)).record(_j("error_rate", P)).record_error("down")
    assert analysis.verdict().verdict is I


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limits(failure_limit=-1)
    with pytest.raises(ValueError):
        Limits(inconclusive_limit=-1)


# --------------------------------------------------------------------------- gates


def test_gates_from_the_plan() -> None:
    gates = Gates.from_mapping(
        {
            "error_rate": {"tolerance_pp": 2, "min_samples": 300},
            "latency": None,
            "mismatch": {"tolerance": 0.1, "field": "all"},
            "limits": {"failure_limit": 1, "consecutive_error_limit": 2},
        }
    )
    assert gates.error_rate is not None and gates.error_rate.tolerance_pp == 2.0
    assert gates.error_rate.alpha == 0.001  # default kept
    assert gates.latency is None
    assert gates.mismatch is not None and gates.mismatch.field == "all"
    assert gates.limits == Limits(failure_limit=1, consecutive_error_limit=2)
    assert gates.required(10) == ("error_rate", "decision_mismatch", "bureau_failures")
    assert gates.required(100) == ("error_rate", "bureau_failures")
    assert Gates.from_mapping(None) == Gates()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"latncy": {}}, "unknown analysis field"),
        ({"latency": {"confidance": 0.9}}, r"latency: unknown field\(s\) confidance"),
        ({"error_rate": {"min_samples": 2.5}}, "error_rate.min_samples"),
        ({"error_rate": {"alpha": "high"}}, "error_rate.alpha"),
        ({"latency": {"alternative": "less"}}, "latency.alternative"),
        ({"bureau": [1]}, "bureau: expected a mapping"),
    ],
)
def test_bad_gate_config_names_the_field(document, message) -> None:
    with pytest.raises(ValueError, match=message):
        Gates.from_mapping(document)


BOUNDS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5)


def _window(**overrides) -> WindowMetrics:
    new_fast = Histogram.from_samples([0.004] * 400, BOUNDS)
    legacy_slow = Histogram.from_samples([0.02] * 2000, BOUNDS)
    values = {
        "duration_s": 60.0,
        "decisions": {NEW: 400, LEGACY: 2000},
        "errors": {NEW: 0, LEGACY: 2},
        "latency": {NEW: new_fast, LEGACY: legacy_slow},
        "shadow": {"decision": ShadowCounts(1990, 10)},
        "bureau_calls": {"ok": 2400, "timeout": 3},
        "source": "test",
    }
    return WindowMetrics(**(values | overrides))


def test_a_healthy_window_passes_every_gate() -> None:
    judgements = judge_window(Gates(), _window(), weight_percent=10)
    assert [(j.metric, j.verdict) for j in judgements] == [
        ("error_rate", P),
        ("latency", P),
        ("decision_mismatch", P),
        ("bureau_failures", P),
    ]


def test_faults_fail_their_gate() -> None:
    slow = Histogram.from_samples([0.204] * 400, BOUNDS)
    window = _window(
        errors={NEW: 21, LEGACY: 2},
        latency={NEW: slow, LEGACY: _window().latency[LEGACY]},
        shadow={"decision": ShadowCounts(1700, 300)},
        bureau_calls={"ok": 2000, "error": 200},
    )
    verdicts = {j.metric: j.verdict for j in judge_window(Gates(), window, weight_percent=50)}
    assert verdicts == {
        "error_rate": F,
        "latency": F,
        "decision_mismatch": F,
        "bureau_failures": F,
    }


def test_missing_families_are_errors_not_passes() -> None:
    window = _window(missing=("errors", "shadow"))
    by_metric = {j.metric: j for j in judge_window(Gates(), window, weight_percent=10)}
    assert by_metric["error_rate"].verdict is E
    assert "no instance exposes errors" in by_metric["error_rate"].reason
    assert by_metric["decision_mismatch"].verdict is E
    assert by_metric["latency"].verdict is P


def test_at_full_weight_the_legacy_side_comes_from_the_baseline() -> None:
    full = _window(decisions={NEW: 3000}, errors={NEW: 1}, latency={NEW: _window().latency[NEW]})
    alone = {j.metric: j for j in judge_window(Gates(), full, weight_percent=100)}
    assert alone["error_rate"].verdict is I  # no legacy requests at 100%
    assert "decision_mismatch" not in alone
    judged = {
        j.metric: j
        for j in judge_window(
            Gates(), full, weight_percent=100, baseline=_window(source="shift-50")
        )
    }
    assert judged["error_rate"].verdict is P
    assert judged["error_rate"].reason.endswith(
        "[legacy baseline from an earlier window (shift-50)]"
    )
    assert judged["latency"].verdict is P


def test_window_request_counts() -> None:
    window = _window()
    assert window.requests(NEW) == 400
    assert window.requests(LEGACY) == 2002
    assert window.requests("other") == 0
    assert math.isinf(window.latency[NEW].buckets[-1][0])
