"""The hold's dwell on a scripted metric source and a fake clock: what it judges, journals and
reports, and when it rolls back or pauses for a person."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from tests.unit.golive.test_runner_fake_target import FakeClock, make_plan

from golive import journal as j
from golive.analysis import ApiRequests, Histogram, WindowMetrics
from golive.errors import GateBreached, MetricSourceError
from golive.journal import Control, open_run
from golive.metrics.fake import FakeSource
from golive.metrics.scrape import ScrapeSource
from golive.plan import Gates, Plan
from golive.steps import hold
from golive.steps.base import StepContext
from golive.targets.fake import FakeTarget


class Load:
    """The background load as LiveCounts answers: (requests, failed, p99 ms) since an instant."""

    def __init__(self, requests: int, failed: int, p99_ms: float) -> None:
        self.figures = (requests, failed, p99_ms)

    def window(self, since: float) -> tuple[int, int, float]:
        return self.figures


def hold_plan(tmp_path: Path, **gates: float) -> Plan:
    """The rehearsal plan with a 10 s hold judged every 5 s."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    plan = make_plan(tmp_path)
    limits = {"max_error_ratio": 0.01, "max_p99_ms": 200, "min_requests": 50} | gates
    return plan.model_copy(
        update={
            "hold": plan.hold.model_copy(update={"post_switch_s": 10}),
            "gates": Gates(interval_s=5, **limits),
        }
    )


def api(total: int, errors: int = 0, seconds: float = 0.02) -> WindowMetrics:
    latency = Histogram.from_samples([seconds] * total, (0.01, 0.05, 0.1, 0.5))
    return WindowMetrics(duration_s=5, api=ApiRequests(total, errors, latency))


def context(tmp_path: Path, monkeypatch, script, clock=None, load=None, **gates) -> StepContext:
    source = FakeSource(script)
    monkeypatch.setattr(hold, "metric_source", lambda ctx: source)
    return StepContext(
        plan=hold_plan(tmp_path, **gates),
        target=FakeTarget(),
        journal=open_run(tmp_path / "state", "hold-test"),
        control=Control(tmp_path / "state"),
        clock=clock or FakeClock(lambda clock: None),
        load=load,  # type: ignore[arg-type]
    )


def evaluated(ctx: StepContext) -> list[dict]:
    return [e for e in ctx.journal.events() if e["event"] == j.GATE_EVALUATED]


def test_a_healthy_hold_journals_every_evaluation_and_reports_the_last(tmp_path, monkeypatch):
    ctx = context(tmp_path, monkeypatch, [api(500), api(1000)])
    result = hold.Hold().run(ctx)
    assert result.summary == "10s on green, 2 gate evaluations, last verdict passed"
    assert result.figures == {
        "dwell_s": 10,
        "dwelt_s": 10.0,
        "evaluations": 2,
        "verdict": "passed",
        "green_requests": 1000,
        "green_errors": 0,
        "green_p99_ms": pytest.approx(49.6),  # interpolated in the (10, 50] ms bucket
    }
    events = evaluated(ctx)
    assert [(e["step"], e["verdict"], e["reasons"]) for e in events] == [
        ("hold", "passed", []),
        ("hold", "passed", []),
    ]
    assert events[0]["figures"]["green_requests"] == 500


def test_a_breach_rolls_back_with_its_reason(tmp_path, monkeypatch):
    ctx = context(tmp_path, monkeypatch, [api(1000), api(1000, errors=20)])
    with pytest.raises(GateBreached) as raised:
        hold.Hold().run(ctx)
    assert str(raised.value) == (
        "gate failed during hold: green /metrics: error ratio 2.0000% > 1.0000% (20/1000)"
    )
    last = evaluated(ctx)[-1]
    assert last["verdict"] == "failed"
    assert last["reasons"] == ["green /metrics: error ratio 2.0000% > 1.0000% (20/1000)"]
    assert last["figures"] == {
        "verdict": "failed",
        "green_requests": 1000,
        "green_errors": 20,
        "green_p99_ms": pytest.approx(49.6),
    }


def test_the_background_load_is_judged_beside_green(tmp_path, monkeypatch):
    load = Load(300, 0, 450.0)
    ctx = context(tmp_path, monkeypatch, [api(1000)], load=load)
    with pytest.raises(GateBreached, match=r"clients \(background load\): p99 450.0 ms > 200 ms"):
        hold.Hold().run(ctx)
    figures = evaluated(ctx)[-1]["figures"]
    assert figures["clients_requests"] == 300 and figures["clients_p99_ms"] == 450.0
    load.figures = (0, 0, math.nan)
    ctx = context(tmp_path / "quiet", monkeypatch, [api(1000), api(1000)], load=load)
    assert hold.Hold().run(ctx).figures["clients_p99_ms"] is None


def test_a_source_that_keeps_failing_is_a_breach(tmp_path, monkeypatch):
    down = MetricSourceError("cannot scrape http://fake-green/metrics: HTTP 503")
    ctx = context(tmp_path, monkeypatch, [down, down, api(1000)])
    figures = hold.Hold().run(ctx).figures  # two errors in a row are tolerated
    assert figures["evaluations"] == 1 and figures["verdict"] == "passed"
    ctx = context(tmp_path / "again", monkeypatch, [down, down, down])
    with pytest.raises(GateBreached, match=r"green's /metrics unreachable 3 times: .*HTTP 503"):
        hold.Hold().run(ctx)
    assert evaluated(ctx) == []


def test_an_inconclusive_end_pauses_for_a_person(tmp_path, monkeypatch):
    paused: list[float] = []

    def operator(clock: FakeClock) -> None:  # resumes the run once it has paused
        if ctx.control.read()["pause"]:
            paused.append(clock.monotonic())
            ctx.control.write(pause=False)

    ctx = context(tmp_path, monkeypatch, [api(10), api(20)], clock=FakeClock(operator))
    result = hold.Hold().run(ctx)
    assert [e["verdict"] for e in evaluated(ctx)] == ["inconclusive", "inconclusive"]
    assert evaluated(ctx)[-1]["reasons"] == ["fewer than 50 requests (green /metrics 20)"]
    notes = [e["text"] for e in ctx.journal.events() if e["event"] == j.NOTE]
    assert notes == ["inconclusive: paused for a human"]
    assert paused == [10.5]  # at the end of the dwell, not before
    assert result.figures["verdict"] == "inconclusive"


def test_without_a_minimum_a_quiet_hold_passes(tmp_path, monkeypatch):
    ctx = context(tmp_path, monkeypatch, [api(0), api(0)], min_requests=0)
    result = hold.Hold().run(ctx)
    assert result.figures["verdict"] == "passed" and result.figures["green_p99_ms"] is None


def test_the_hold_scrapes_green_itself(tmp_path):
    ctx = StepContext(
        plan=hold_plan(tmp_path),
        target=FakeTarget(),
        journal=open_run(tmp_path / "state", "hold-test"),
        control=Control(tmp_path / "state"),
    )
    source = hold.metric_source(ctx)
    assert isinstance(source, ScrapeSource)
    assert source.instances() == ["http://fake-green"]
