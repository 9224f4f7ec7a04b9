"""Properties of the judges, and simulated stages: false alarms on clean runs, detection of faults.

The simulations draw whole stages (10 analysis intervals, cumulative windows) from known rates
(``golive.metrics.fake.synthetic_stage``) and run the default gates and limits over them.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.analysis import Analysis, Gates, Histogram, Verdict, error_rate, judge_window, latency
from golive.analysis.stats import group, mann_whitney
from golive.metrics.fake import LATENCY_BUCKETS_S, Traffic, synthetic_stage

latencies = st.lists(
    st.floats(min_value=0.0001, max_value=30.0, allow_nan=False), min_size=1, max_size=300
)


@given(latencies)
def test_identical_samples_never_fail(samples: list[float]) -> None:
    assert latency(samples, list(samples), min_samples=1).verdict is not Verdict.FAIL


@given(latencies)
def test_identical_histograms_never_fail(samples: list[float]) -> None:
    h = Histogram.from_samples(samples, LATENCY_BUCKETS_S)
    assert latency(h, h, min_samples=1).verdict is not Verdict.FAIL


@given(latencies, latencies)
def test_rank_test_p_values_are_probabilities(first: list[float], second: list[float]) -> None:
    for alternative in ("greater", "two-sided"):
        test = mann_whitney(group(first), group(second), alternative)  # type: ignore[arg-type]
        assert 0.0 <= test.p_value <= 1.0


@given(
    st.integers(min_value=1, max_value=20_000),
    st.integers(min_value=1, max_value=20_000),
    st.data(),
)
def test_a_new_path_no_worse_than_legacy_never_fails(n_new: int, n_base: int, data) -> None:
    base_errors = data.draw(st.integers(min_value=0, max_value=n_base))
    # new ratio <= base ratio
    new_errors = data.draw(st.integers(min_value=0, max_value=(base_errors * n_new) // n_base))
    judgement = error_rate(new_errors, n_new, base_errors, n_base, min_samples=1, alpha=0.05)
    assert judgement.verdict is Verdict.PASS, judgement.reason


@given(
    latencies, st.floats(min_value=0.01, max_value=0.99), st.floats(min_value=0.01, max_value=0.99)
)
def test_histogram_quantiles_are_monotone(samples: list[float], q1: float, q2: float) -> None:
    h = Histogram.from_samples(samples, LATENCY_BUCKETS_S)
    low, high = sorted((q1, q2))
    assert h.quantile(low) <= h.quantile(high)
    assert not math.isnan(h.quantile(low))


# --------------------------------------------------------------------------- simulated stages


def run_stage(traffic: Traffic, seed: int, intervals: int = 10, weight: int = 10) -> int | None:
    """The interval (1-based) at which the default analysis FAILs the stage, or None."""
    gates = Gates()
    analysis = Analysis(gates.required(weight), gates.limits)
    for index, window in enumerate(synthetic_stage(traffic, seed, intervals), start=1):
        analysis = analysis.record(*judge_window(gates, window, weight_percent=weight))
        if analysis.verdict().failed:
            return index
    return None


def false_alarms(runs: int) -> int:
    return sum(run_stage(Traffic(), seed) is not None for seed in range(runs))


def test_clean_runs_do_not_roll_back() -> None:
    """10% stage (100 new-path requests per interval), 10 looks each, 150 seeds: no false alarm
    is expected (1 in 1000 measured); at most one is tolerated here."""
    assert false_alarms(150) <= 1


@pytest.mark.slow
def test_clean_runs_false_alarm_rate() -> None:
    """1000 clean stages: the false-alarm rate stays below the error gate's alpha x looks."""
    alarms = false_alarms(1000)
    print(f"false alarms: {alarms} of 1000 clean stages (10 looks each)")
    assert alarms <= 5


def test_clean_runs_pass() -> None:
    gates = Gates()
    analysis = Analysis(gates.required(10), gates.limits)
    for window in synthetic_stage(Traffic(), seed=7, intervals=10):
        analysis = analysis.record(*judge_window(gates, window, weight_percent=10))
    assert analysis.verdict().passed, analysis.verdict().reasons


SMALL = {"new_requests": 20, "legacy_requests": 180}  # one interval: 20 new-path requests


@pytest.mark.parametrize(
    ("fault", "metric", "within"),
    [
        # +5 pp errors (5.2% vs 0.2%): min_samples is 200 new-path requests; caught by 400
        (Traffic(**SMALL, new_error_ratio=0.052), "error_rate", 20),
        # +200 ms on every new-path decision: min_samples 100; caught by 160
        (Traffic(**SMALL, new_extra_latency_s=0.2), "latency", 8),
        # the new engine flips 17% of decisions (tolerance 5%): caught in the first 180
        # shadow comparisons (shadows come from the legacy-decided 90%)
        (Traffic(**SMALL, shadow_mismatch_ratio=0.17), "decision_mismatch", 1),
    ],
)
def test_faults_are_caught(fault: Traffic, metric: str, within: int) -> None:
    """Every seed catches the fault within ``within`` intervals, on the right gate."""
    for seed in range(20):
        failed_at = run_stage(fault, seed, intervals=within)
        assert failed_at is not None, seed
        window = synthetic_stage(fault, seed, failed_at)[-1]
        failing = [
            j.metric
            for j in judge_window(Gates(), window, weight_percent=10)
            if j.verdict is Verdict.FAIL
        ]
        assert failing == [metric], (seed, failing)


@settings(deadline=None, max_examples=25)
@given(st.integers(min_value=0, max_value=10_000))
def test_any_seed_of_a_clean_window_is_not_a_failure_at_full_sample(seed: int) -> None:
    window = synthetic_stage(Traffic(new_requests=500, legacy_requests=500), seed, 1)[-1]
    verdicts = [j.verdict for j in judge_window(Gates(), window, weight_percent=50)]
    assert Verdict.FAIL not in verdicts
