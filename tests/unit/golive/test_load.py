"""The load generator refuses targets and bounds it must not cross, and measures honestly."""

from __future__ import annotations

import pytest

from golive.load import LoadError, LoadPlan, LoadResult, Outcome


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        (LoadPlan("http://10.0.0.1:80", "/", 10, 1), "loopback"),
        (LoadPlan("http://example.com", "/", 10, 1), "loopback"),
        (LoadPlan("https://127.0.0.1:443", "/", 10, 1), "must be http URLs"),
        (LoadPlan("http://127.0.0.1:8080", "/", 0, 1), "rate"),
        (LoadPlan("http://127.0.0.1:8080", "/", 1e9, 1), "rate"),
        (LoadPlan("http://127.0.0.1:8080", "/", 10, 86_400), "duration"),
        (LoadPlan("http://127.0.0.1:8080", "/", 10, 1, connections=0), "connections"),
        (LoadPlan("http://127.0.0.1:8080", "/", 10, 1, requests_per_connection=-1), "0 .unlimited"),
    ],
)
def test_bad_plans_are_refused(plan: LoadPlan, says: str) -> None:
    with pytest.raises(LoadError, match=says):
        plan.validate()


def test_a_remote_plan_may_name_a_production_https_url() -> None:
    assert LoadPlan("https://green.internal", "/", 10, 1, remote=True).validate() == (
        "green.internal",
        443,
    )
    with pytest.raises(LoadError, match="http or https"):
        LoadPlan("ftp://green.internal", "/", 10, 1, remote=True).validate()


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


def test_windows_charge_each_request_to_the_window_it_was_due_in() -> None:
    # 3 s at 10 req/s; the second second stalls: its requests wait 2.5 s from their schedule.
    outcomes = []
    for i in range(30):
        scheduled = i / 10
        latency = 2.5 if 1 <= scheduled < 2 else 0.004
        tag = "green/new" if i % 2 else "blue/legacy"
        outcomes.append(Outcome(scheduled, latency, 201, tag=tag))
    outcomes.append(Outcome(2.5, 0.01, 0, "TimeoutError", "green/new"))
    result = LoadResult(outcomes, elapsed_s=3.0, started_at=1_000.0)
    windows = result.windows(1.0)
    assert [w.started_at for w in windows] == [1_000.0, 1_001.0, 1_002.0]
    assert [w.total.requests for w in windows] == [10, 10, 11]
    assert [w.total.failed for w in windows] == [0, 0, 1]
    assert windows[0].total.p99_ms == pytest.approx(4.0)
    assert windows[1].total.p99_ms == pytest.approx(2500.0)
    assert windows[1].total.p50_ms == pytest.approx(2500.0)
    assert set(windows[2].by_tag) == {"blue/legacy", "green/new"}
    assert windows[2].by_tag["green/new"].failed == 1
    assert windows[2].as_dict()["by_tag"]["blue/legacy"]["requests"] == 5


def test_a_window_with_no_request_is_kept_and_says_so() -> None:
    result = LoadResult([Outcome(0.1, 0.002, 200)], elapsed_s=2.5, started_at=0.0)
    windows = result.windows(1.0)
    assert len(windows) == 3
    assert windows[1].total.requests == 0
    assert windows[1].as_dict()["p99_ms"] is None
    with pytest.raises(LoadError, match="longer than 0"):
        result.windows(0)


def test_each_request_can_carry_headers_of_its_own() -> None:
    plan = LoadPlan(
        "http://127.0.0.1:8080",
        "/",
        10,
        1,
        headers={"Content-Type": "application/json", "Authorization": "Bearer shared"},
        headers_of=lambda index: {"Authorization": f"Bearer token-{index}"},
    )
    assert plan.headers_for(7) == {
        "Content-Type": "application/json",
        "Authorization": "Bearer token-7",
    }
    assert plan.headers_for(8)["Authorization"] == "Bearer token-8"
    fixed = LoadPlan("http://127.0.0.1:8080", "/", 10, 1, headers={"Authorization": "Bearer a"})
    assert fixed.headers_for(0) == fixed.headers_for(99) == {"Authorization": "Bearer a"}
