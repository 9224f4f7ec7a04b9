"""Zero downtime is judged on failed requests *and* the latency of every 10 s window."""

from __future__ import annotations

from datetime import UTC, datetime

from golive import journal as j
from golive.load import LoadResult, Outcome
from golive.rehearsal.rehearse import load_figures, step_spans, zero_downtime_error

T0 = 1_800_000_000.0  # the load's start, wall clock


def _iso(offset_s: float) -> str:
    return datetime.fromtimestamp(T0 + offset_s, UTC).isoformat(timespec="milliseconds")


EVENTS = [
    {"ts": _iso(0), "event": j.STEP_STARTED, "step": "backup"},
    {"ts": _iso(12), "event": j.STEP_FINISHED, "step": "backup"},
    {"ts": _iso(12), "event": j.STEP_STARTED, "step": "switch-to-green"},
    {"ts": _iso(13), "event": j.ROUTER_SWITCHED, "to": "green"},
    {"ts": _iso(14), "event": j.STEP_FAILED, "step": "switch-to-green"},
    {"ts": _iso(14), "event": j.UNDO_STARTED, "step": "switch-to-green"},
    {"ts": _iso(25), "event": j.UNDO_FINISHED, "step": "switch-to-green"},
    {"ts": _iso(26), "event": j.STEP_STARTED, "step": "hold"},
]


def _result(slow_from_s: float | None = None) -> LoadResult:
    outcomes = []
    for i in range(300):  # 30 s at 10 req/s
        at = i / 10
        slow = slow_from_s is not None and slow_from_s <= at < slow_from_s + 3
        outcomes.append(Outcome(at, 2.0 if slow else 0.005, 201, tag="blue/legacy"))
    return LoadResult(outcomes, elapsed_s=30.0, started_at=T0)


def test_steps_and_undos_are_spans_in_time() -> None:
    spans = step_spans(EVENTS)
    assert [name for name, *_ in spans] == [
        "backup",
        "switch-to-green",
        "undo switch-to-green",
        "hold",
    ]
    assert spans[-1][2] is None  # still running when the journal ends


def test_every_window_names_the_steps_that_ran_in_it() -> None:
    figures = load_figures(_result(), EVENTS, 10, 1000)
    assert [w["steps"] for w in figures["windows"]] == [
        ["backup"],
        ["backup", "switch-to-green", "undo switch-to-green"],
        ["undo switch-to-green", "hold"],
    ]
    assert [w["requests"] for w in figures["windows"]] == [100, 100, 100]
    assert figures["slow_windows"] == []
    assert len(figures["switch_windows"]) == 1
    assert zero_downtime_error(figures, None) is None


def test_a_slow_window_fails_the_rehearsal_naming_when_and_during_what() -> None:
    figures = load_figures(_result(slow_from_s=21), EVENTS, 10, 1000)
    assert [w["p99_ms"] for w in figures["slow_windows"]] == [2000.0]
    error = zero_downtime_error(figures, None)
    assert error is not None
    assert "1 of 3 10 s windows" in error.message
    assert "2000.0 ms during undo switch-to-green, hold" in error.message
    assert datetime.fromtimestamp(T0 + 20, UTC).strftime("%H:%M:%S") in error.message


def test_the_limit_is_the_plan_setting() -> None:
    figures = load_figures(_result(slow_from_s=21), EVENTS, 10, 2500)
    assert figures["slow_windows"] == []
    assert figures["max_window_p99_ms"] == 2500


def test_failed_requests_still_fail_first() -> None:
    result = _result()
    result.outcomes.append(Outcome(29.9, 0.01, 0, "ConnectionResetError"))
    error = zero_downtime_error(load_figures(result, EVENTS, 10, 1000), None)
    assert error is not None
    assert "1 of 301 background requests failed" in error.message


def test_the_report_has_a_row_per_window_and_marks_the_slow_one() -> None:
    from golive.report.golive_report import _load

    figures = load_figures(_result(slow_from_s=21), EVENTS, 10, 1000)
    text = "\n".join(_load([{"ts": _iso(30), "event": j.BACKGROUND_LOAD, "figures": figures}]))
    assert "1 10 s windows with p99 over 1000 ms" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "blue/legacy" in line]
    assert len(rows) == 3 + 1  # three windows, and the by-tag table's row
    slow = datetime.fromtimestamp(T0 + 20, UTC).strftime("%H:%M:%S")
    assert f"| **{slow}** | undo switch-to-green, hold | 100 | 0 | 5 | **2000** |" in text


def test_the_report_says_every_window_was_within_the_limit() -> None:
    from golive.report.golive_report import _load

    figures = load_figures(_result(), EVENTS, 10, 1000)
    text = "\n".join(_load([{"ts": _iso(30), "event": j.BACKGROUND_LOAD, "figures": figures}]))
    assert "**0 failed requests**, every 10 s window within p99 1000 ms" in text
