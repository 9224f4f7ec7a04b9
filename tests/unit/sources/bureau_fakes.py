"""Fakes shared by the bureau tests: a clock moved by hand and a metrics recorder."""

from __future__ import annotations

from credit_assessment.sources import LookupOutcome


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingMetrics:
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.circuit: list[bool] = []

    def lookup_finished(self, outcome: LookupOutcome, duration_s: float) -> None:
        assert duration_s >= 0
        self.outcomes.append(str(outcome))

    def circuit_changed(self, is_open: bool) -> None:
        self.circuit.append(is_open)
