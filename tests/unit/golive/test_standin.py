"""What the rehearsal's stand-ins share: their booleans and their fault switches."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from golive.rehearsal.standin import Switch, number_in, parse_boolean, switched, whole_number_in


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("Yes", True), (" 1 ", True), ("FALSE", False), ("no", False)],
)
def test_booleans_in_every_spelling(value: object, expected: bool) -> None:
    assert parse_boolean(value) is expected


def test_a_blank_is_an_error_unless_the_caller_says_what_it_means() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        parse_boolean("")
    assert parse_boolean("", blank=False) is False
    assert parse_boolean("  ", blank=True) is True
    with pytest.raises(ValueError, match="not a boolean: 'maybe'"):
        parse_boolean("maybe", blank=False)


@dataclass(frozen=True)
class _Faults:
    latency_ms: int = 0
    failure_rate: float = 0.0


SWITCHES = {
    "latency_ms": Switch(whole_number_in(0, 1000), "latency_ms must be an integer 0..1000"),
    "failure_rate": Switch(number_in(0, 1), "failure_rate must be 0..1", convert=float),
}


def test_switches_are_applied_and_converted() -> None:
    got = switched(_Faults(), {"failure_rate": 1}, SWITCHES)
    assert got == _Faults(failure_rate=1.0)
    assert isinstance(got.failure_rate, float)


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"speed": 1}, "unknown switch 'speed'"),
        ({"latency_ms": 2.5}, "latency_ms must be an integer"),
        ({"latency_ms": True}, "latency_ms must be an integer"),
        ({"latency_ms": 10, "failure_rate": 2}, "failure_rate must be 0..1"),
    ],
)
def test_a_bad_switch_changes_nothing(doc: dict[str, object], says: str) -> None:
    before = _Faults(latency_ms=5)
    with pytest.raises(ValueError, match=says):
        switched(before, doc, SWITCHES)
    assert before == _Faults(latency_ms=5)
