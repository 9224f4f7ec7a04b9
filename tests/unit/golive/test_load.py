"""The load generator refuses targets and bounds it must not cross, and measures honestly."""

from __future__ import annotations

import pytest

from golive.rehearsal.load import LoadError, LoadPlan, LoadResult, Outcome


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        (LoadPlan("http://10.0.0.1:80", "/", 10, 1), "loopback"),
        (LoadPlan("http://example.com", "/", 10, 1), "loopback"),
        (LoadPlan("https://127.0.0.1:443", "/", 10, 1), "http://"),
        (LoadPlan("http://127.0.0.1:8080", "/", 0, 1), "rate"),
        (LoadPlan("http://127.0.0.1:8080", "/", 1e9, 1), "rate"),
        (LoadPlan("http://127.0.0.1:8080", "/", 10, 86_400), "duration"),
        (LoadPlan("http://127.0.0.1:8080", "/", 10, 1, connections=0), "connections"),
    ],
)
def test_bad_plans_are_refused(plan: LoadPlan, says: str) -> None:
    with pytest.raises(LoadError, match=says):
        plan.validate()


def test_loopback_forms_are_accepted() -> None:
    for url in (
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://127.9.9.9:1",
    ):
        LoadPlan(url, "/", 10, 1).validate()


def test_percentiles_and_failures() -> None:
    outcomes = [Outcome(i / 100, (i + 1) / 1000, 201) for i in range(99)]
    outcomes.append(Outcome(0.99, 0.5, 0, "ConnectionRefusedError"))
    result = LoadResult(outcomes, elapsed_s=1.0)
    assert result.failed == 1
    assert result.percentile_ms(50) == pytest.approx(50.0)
    assert result.percentile_ms(99) == pytest.approx(99.0)
    assert result.percentile_ms(100) == pytest.approx(500.0)
    assert result.summary()["requests"] == 100
